"""train.py --optimize (agents/tuning): search spaces, the objective, the shared study and its budget, the report.

Real Optuna and SB3 throughout, on CartPole-v1 with budgets of a few thousand steps (a trial takes a second or
two); every study lives in a SQLite file under tmp_path.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from agents.cli import command
from agents.hyperparams import load_hyperparams, parse_kwargs_string, resolve
from agents.training import ConfigError
from agents.tuning import TuneConfig, plan_study, tune
from agents.tuning.report import BEST_FILE, CURVES_FILE, HISTORY_FILE, IMPORTANCE_FILE, TRIALS_FILE
from agents.tuning.spaces import SPACES, kwargs_string, rollout_size, sample_entry
from agents.tuning.study import open_tuning_study

ROOT = Path(__file__).resolve().parents[1]

DISCRETE, CONTINUOUS = "trendgym/Ski-v0", "trendgym/SkiContinuous-v0"
ENV_OF = {algo: CONTINUOUS if algo in ("sac", "td3", "ddpg", "tqc") else DISCRETE for algo in SPACES}


def train_main(argv: list[str]) -> int:
    """scripts/train.py's main(), in this process."""
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.main(argv)


def cartpole(tmp_path: Path, **changes) -> TuneConfig:
    """A tuning that takes a second or two per trial: 4 envs, 64-step rollouts, 2 epochs, 2 evaluations."""
    settings = dict(
        algo="ppo",
        env="CartPole-v1",
        timesteps=1024,
        n_envs=4,
        hyperparams=["n_steps:64", "n_epochs:2"],
        eval_freq=512,
        eval_episodes=3,
        n_trials=3,
        sampler="random",
        root=tmp_path,
        verbose=0,
    )
    settings.update(changes)
    return TuneConfig(**settings)


def finished_trials(config: TuneConfig) -> list[optuna.trial.FrozenTrial]:
    study = open_tuning_study(plan_study(config), config, heartbeats=False)
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


# ---- spaces ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", sorted(SPACES))
def test_every_space_samples_entries_the_algorithm_accepts(algo):
    entry = load_hyperparams(algo, ENV_OF[algo])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(25):
        raw = sample_entry(algo, study.ask(), entry)
        kwargs, settings = resolve(raw, algo)  # every key is a constructor keyword or a training setting
        for key in ("n_envs", "normalize", "policy"):  # the training's settings are kept
            assert raw.get(key) == entry.get(key)
        rollout = rollout_size(raw)
        if rollout is not None and "batch_size" in raw:
            assert 1 <= raw["batch_size"] <= rollout and rollout % raw["batch_size"] == 0
        assert isinstance(parse_kwargs_string(raw["policy_kwargs"]), dict)
        if isinstance(entry.get("learning_rate"), str):  # lin_5e-4 is tuned as a linear schedule
            assert raw["learning_rate"].startswith("lin_") and callable(kwargs["learning_rate"])
        assert settings.n_envs == entry["n_envs"]


def test_fixed_keys_are_not_sampled():
    entry = {**load_hyperparams("ppo", DISCRETE), "learning_rate": 1e-3, "n_steps": 64}
    study = optuna.create_study()
    trial = study.ask()
    raw = sample_entry("ppo", trial, entry, fixed={"learning_rate", "n_steps"})
    assert raw["learning_rate"] == 1e-3 and raw["n_steps"] == 64
    assert "learning_rate" not in trial.params and "n_steps" not in trial.params
    assert raw["batch_size"] in {entry["n_envs"] * 64 // n for n in (1, 2, 4, 8, 16, 32)} | {64}


def test_policy_kwargs_written_as_the_yaml_reads_them():
    import torch

    kwargs = {"net_arch": {"pi": [64], "vf": [64]}, "activation_fn": torch.nn.ReLU, "log_std_init": -1.0}
    assert parse_kwargs_string(kwargs_string(kwargs)) == kwargs


# ---- a tuning: report, resume, budget --------------------------------------------------------------------------


def test_optimize_writes_a_report_whose_yaml_trains(tmp_path):
    argv = ["--optimize", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "1024", "--n-envs", "4"]
    argv += ["--hyperparams", "n_steps:64", "n_epochs:2", "--eval-freq", "512", "--eval-episodes", "3"]
    argv += ["--n-trials", "3", "--sampler", "random", "--tensorboard-log", str(tmp_path), "--quiet"]
    assert train_main(argv) == 0
    out = tmp_path / "tuning" / "ppo_CartPole-v1"
    for name in (BEST_FILE, TRIALS_FILE, HISTORY_FILE, IMPORTANCE_FILE, CURVES_FILE):
        assert (out / name).is_file(), name
    assert (tmp_path / "tuning" / "ppo_CartPole-v1.db").is_file()
    rows = (out / TRIALS_FILE).read_text().splitlines()
    assert rows[0].startswith("number,state,value,duration_s") and len(rows) == 4

    best = out / BEST_FILE
    table = yaml.safe_load(best.read_text())
    assert list(table) == ["CartPole-v1"]
    raw = load_hyperparams("ppo", "CartPole-v1", best)
    assert raw["n_steps"] == 64 and raw["n_epochs"] == 2 and raw["n_timesteps"] == 1024
    resolve(raw, "ppo")
    best_trial = max(finished_trials(cartpole(tmp_path)), key=lambda t: t.value)
    assert raw["learning_rate"] == best_trial.params["learning_rate"]
    assert best_trial.value == best_trial.intermediate_values[2]  # the value is the last (second) evaluation's

    argv = ["--algo", "ppo", "--env", "CartPole-v1", "--hyperparams-file", str(best), "--timesteps", "512"]
    argv += ["--vec-env", "dummy", "--no-eval", "--quiet", "--tensorboard-log", str(tmp_path)]
    assert train_main(argv) == 0
    config = yaml.safe_load((tmp_path / "ppo" / "CartPole-v1_1" / "config.yml").read_text())
    assert config["hyperparams"]["learning_rate"] == raw["learning_rate"]


def test_the_dashboard_optimize_suggests_is_installed_and_opens_the_study(tmp_path, capsys, monkeypatch):
    """optuna-dashboard is in setup.cfg's install_requires, so the command printed runs as printed."""
    monkeypatch.chdir(tmp_path)
    argv = ["--optimize", "--algo", "ppo", "--env", "CartPole-v1", "--timesteps", "256", "--n-envs", "4"]
    argv += ["--hyperparams", "n_steps:64", "n_epochs:1", "--eval-freq", "256", "--eval-episodes", "1"]
    assert train_main([*argv, "--n-trials", "1", "--sampler", "random", "--quiet"]) == 0
    dashboard = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("dashboard: "))
    program, url = dashboard.split()[1:]
    assert url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")).is_file()
    assert subprocess.run([program, "--version"], capture_output=True).returncode == 0


def test_rerunning_resumes_the_study_up_to_n_trials(tmp_path):
    tune(cartpole(tmp_path, n_trials=1))
    again = tune(cartpole(tmp_path, n_trials=1))  # already complete: nothing to run
    assert again.finished == 1 and again.ran == 0
    more = tune(cartpole(tmp_path, n_trials=2))
    assert more.finished == 2 and more.ran == 1
    assert [t.number for t in finished_trials(cartpole(tmp_path))] == [0, 1]


def test_a_study_made_for_another_budget_is_refused(tmp_path):
    first = cartpole(tmp_path)
    open_tuning_study(plan_study(first), first, heartbeats=False)
    with pytest.raises(ConfigError, match="budget 1024"):
        tune(cartpole(tmp_path, timesteps=2048))


def test_the_median_pruner_stops_a_trial_below_the_median(tmp_path):
    """A finished trial that scored 1e9 at every evaluation: the next trial, far below it at its first evaluation
    (4 evaluations per trial, a warm-up of 4 // 3 = 1 reported step as RL Zoo sets it), is pruned there."""
    config = cartpole(tmp_path, n_trials=2, pruner="median", n_startup_trials=1, timesteps=2048)
    study = open_tuning_study(plan_study(config), config, heartbeats=False)
    study.add_trial(optuna.trial.create_trial(value=1e9, intermediate_values={k: 1e9 for k in range(1, 5)}))
    result = tune(config)
    trial = next(t for t in finished_trials(config) if t.number == 1)
    assert trial.state == TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [1]  # evaluated once of four times, then stopped
    assert trial.user_attrs["timesteps"] < 2048
    assert result.best is None and not (result.out_dir / BEST_FILE).exists()  # no complete trial of its own


def test_a_diverging_trial_is_pruned_not_a_crash(tmp_path):
    config = cartpole(tmp_path, n_trials=1, hyperparams=["n_steps:64", "n_epochs:2", "learning_rate:1e30"])
    result = tune(config)
    (trial,) = finished_trials(config)
    assert trial.state == TrialState.PRUNED and "diverged" in trial.user_attrs
    assert result.finished == 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the dead trial is made by study.ask()
def test_a_dead_workers_trial_is_failed_and_made_up(tmp_path):
    """A RUNNING trial whose heartbeat stopped (its worker was killed) is failed by the next worker, and does not
    count against the budget."""
    config = cartpole(tmp_path, n_trials=1, heartbeat_interval=1, grace_period=1)
    study = open_tuning_study(plan_study(config), config)
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)
    threading.Event().wait(2.5)
    result = tune(config)
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.COMPLETE}
    assert result.finished == 1


@pytest.mark.slow  # two spawned Pythons import torch, SB3 and Optuna: 20-60 s on a busy machine
def test_two_worker_processes_share_one_budget(tmp_path):
    config = cartpole(tmp_path, n_trials=3, n_jobs=2)
    result = tune(config)
    trials = finished_trials(config)
    assert result.finished == 3 and len(trials) == 3
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 3  # no configuration evaluated twice


def test_ctrl_c_fails_the_running_trial_and_still_writes_the_report(tmp_path):
    config = cartpole(tmp_path, n_trials=3, timesteps=200_000, eval_freq=100_000)
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result = tune(config)
    finally:
        timer.cancel()
    assert result.interrupted
    study = open_tuning_study(plan_study(config), config, heartbeats=False)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]
    assert (result.out_dir / TRIALS_FILE).is_file()


# ---- the command line ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimize", "--resume", "runs/ppo/x"], "cannot be combined with --resume"),
        (["--optimize", "--init-from", "runs/ppo/x"], "cannot be combined with --init-from"),
        (["--optimize", "--no-eval"], "cannot be combined with --no-eval"),
        (["--n-trials", "5"], "only work with --optimize"),
        (["--study-name", "s", "--storage", "sqlite:///x.db"], "only work with --optimize"),
        (["--optimize", "--sampler", "cmaes"], "invalid choice"),
    ],
)
def test_bad_combinations_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_user_mistakes_in_a_tuning_exit_2_in_one_line(tmp_path, capsys):
    base = ["--optimize", "--tensorboard-log", str(tmp_path), "--quiet"]
    assert train_main([*base, "--algo", "sac", "--env", "trendgym/Ski-v0"]) == 2
    assert train_main([*base, "--hyperparams-file", str(tmp_path / "missing.yml")]) == 2
    assert train_main([*base, "--storage", "not-a-url"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("train.py: error:") for line in lines)


def test_a_missing_postgres_driver_names_a_pip_command_that_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as when setup.cfg's extra postgres is not installed
    argv = ["--optimize", "--storage", "postgresql://user:pw@127.0.0.1:1/db", "--tensorboard-log", str(tmp_path)]
    assert train_main([*argv, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its database driver psycopg is not installed" in err
    assert err.endswith(f"install it with: {command('python')} -m pip install 'psycopg[binary]'")
