"""Run folders: numbering, the latest run, atomic files, and loading agents back with one clear error."""

import copy
import os
import shutil

import gymnasium as gym
import numpy as np
import pytest
from helpers import assert_one_line_error, load_script, run_main
from sb3_contrib import TQC, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import envs  # noqa: F401
from agents.runs import (
    LoadedAgent,
    RunError,
    atomic_save_model,
    atomic_save_vecnormalize,
    env_folder_name,
    latest_run,
    load_agent,
    load_vecnormalize,
    new_run_dir,
    read_config,
    resolve_model_path,
    staged_run_dir,
    write_config,
)

SKI = "trendgym/Ski-v0"


def small(cls, env_id=SKI, **kwargs):
    env = gym.make(env_id)
    if cls in (DQN, SAC, TQC):
        kwargs.setdefault("buffer_size", 100)
    policy = "MlpLstmPolicy" if cls is RecurrentPPO else "MlpPolicy"
    return cls(policy, env, **kwargs)


def test_env_folder_name():
    assert env_folder_name("trendgym/Ski-v0") == "Ski-v0"
    assert env_folder_name("envs:trendgym/Ski-v0") == "Ski-v0"
    assert env_folder_name("CartPole-v1") == "CartPole-v1"


def test_new_run_dir_counts_up(tmp_path):
    assert new_run_dir("ppo", SKI, tmp_path) == tmp_path / "ppo" / "Ski-v0_1"
    (tmp_path / "ppo" / "Ski-v0_7").mkdir()
    (tmp_path / "ppo" / "SkiContinuous-v0_9").mkdir()  # another env's runs do not count
    run = new_run_dir("PPO", SKI, tmp_path)
    assert run == tmp_path / "ppo" / "Ski-v0_8" and run.is_dir()


def test_latest_run(tmp_path):
    with pytest.raises(RunError, match="no runs under"):
        latest_run(tmp_path)
    first, second = new_run_dir("ppo", SKI, tmp_path), new_run_dir("a2c", SKI, tmp_path)
    new_run_dir("ppo", SKI, tmp_path)  # no model: not a candidate
    (second / "best_model.zip").write_bytes(b"x")
    (first / "model.zip").write_bytes(b"x")
    os.utime(second / "best_model.zip", (1, 1))
    assert latest_run(tmp_path) == first


def test_config_round_trip_and_errors(tmp_path):
    config = {"algo": "ppo", "env": SKI, "env_kwargs": {"slope": "blue"}, "hyperparams": {"learning_rate": "lin_3e-4"}}
    write_config(tmp_path, config)
    assert read_config(tmp_path) == config
    assert [p.name for p in tmp_path.iterdir()] == ["config.yml"]  # no temporary file left behind
    with pytest.raises(RunError, match="does not exist"):
        read_config(tmp_path / "nowhere")
    (tmp_path / "config.yml").write_text("algo: [ppo\n")
    with pytest.raises(RunError, match="not valid YAML"):
        read_config(tmp_path)


def test_atomic_save_keeps_the_old_file_when_the_save_fails(tmp_path):
    model = small(PPO, n_steps=64)
    path = tmp_path / "model.zip"
    atomic_save_model(model, path)
    before = path.read_bytes()

    class Broken:
        def save(self, f):
            f.write(b"half a zip")
            raise RuntimeError("killed mid-save")

    with pytest.raises(RuntimeError):
        atomic_save_model(Broken(), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


def test_load_agent_from_run_zip_and_checkpoint(tmp_path, monkeypatch):
    run = new_run_dir("ppo", SKI, tmp_path / "runs")
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(SKI)]))
    obs = venv.reset()
    final, best = PPO("MlpPolicy", venv, n_steps=64, seed=1), PPO("MlpPolicy", venv, n_steps=64, seed=2)
    atomic_save_model(final, run / "model.zip")
    atomic_save_model(best, run / "best_model.zip")
    atomic_save_vecnormalize(venv, run / "vecnormalize.pkl")
    (run / "checkpoints").mkdir()
    atomic_save_model(final, run / "checkpoints" / "rl_model_64_steps.zip")
    write_config(run, {"algo": "ppo", "env": SKI})

    agent = load_agent(run)
    assert isinstance(agent, LoadedAgent) and agent.path == run / "best_model.zip"
    assert agent.config["algo"] == "ppo" and agent.vecnormalize is None  # no best_vecnormalize.pkl saved
    agent = load_agent(run, prefer_best=False)
    assert agent.path == run / "model.zip" and agent.vecnormalize is not None
    raw = venv.get_original_obs()
    action, _ = agent.predict(raw)
    expected, _ = final.predict(venv.normalize_obs(raw), deterministic=True)
    assert np.array_equal(action, expected) and np.allclose(venv.normalize_obs(raw), obs)
    checkpoint = load_agent(run / "checkpoints" / "rl_model_64_steps.zip")
    assert checkpoint.config["algo"] == "ppo"  # found in the run folder above checkpoints/
    monkeypatch.chdir(tmp_path)
    assert load_agent(None).path.resolve() == run / "best_model.zip"  # None: the latest run under ./runs
    monkeypatch.chdir(run)
    with pytest.raises(RunError, match="no runs under runs/"):
        load_agent(None)


@pytest.mark.parametrize(
    ("cls", "env_id"),
    [
        (PPO, SKI),
        (A2C, SKI),
        (DQN, SKI),
        (RecurrentPPO, SKI),
        (SAC, "trendgym/SkiContinuous-v0"),
        (TQC, "trendgym/SkiContinuous-v0"),
    ],
)
def test_a_bare_zip_loads_as_the_algorithm_that_saved_it(tmp_path, cls, env_id):
    small(cls, env_id).save(tmp_path / "agent.zip")
    agent = load_agent(tmp_path / "agent.zip")
    assert type(agent.model) is cls and agent.config == {}


def test_load_errors_are_run_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_agent(tmp_path / "missing.zip")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(RunError, match="not a model zip"):
        load_agent(tmp_path / "corrupt.zip")
    small(DQN).save(tmp_path / "dqn.zip")
    write_config(tmp_path, {"algo": "ppo"})  # the config says PPO, the zip is a DQN
    with pytest.raises(RunError, match="not a PPO model"):
        load_agent(tmp_path / "dqn.zip")
    empty = new_run_dir("ppo", SKI, tmp_path)
    with pytest.raises(RunError, match="holds no model"):
        load_agent(empty)


def test_loaded_statistics_save_and_copy_again(tmp_path):
    """SB3 2.9 pickles VecNormalize without class_attributes and returns; statistics unpickled without an env
    raised KeyError: 'class_attributes' when a distilled student saved them again."""
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(SKI)] * 2))
    venv.reset()
    for _ in range(5):
        venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    atomic_save_vecnormalize(venv, tmp_path / "vecnormalize.pkl")
    loaded = load_vecnormalize(tmp_path / "vecnormalize.pkl")
    atomic_save_vecnormalize(loaded, tmp_path / "again.pkl")
    again = load_vecnormalize(tmp_path / "again.pkl")
    np.testing.assert_array_equal(again.obs_rms.mean, venv.obs_rms.mean)
    np.testing.assert_array_equal(again.obs_rms.var, venv.obs_rms.var)
    obs = venv.get_original_obs()
    np.testing.assert_array_equal(copy.deepcopy(again).normalize_obs(obs), venv.normalize_obs(obs))
    assert not again.training and again.returns.shape == (2,)


def test_a_run_trained_on_normalised_observations_is_refused_without_its_statistics(tmp_path):
    run = new_run_dir("ppo", SKI, tmp_path)
    atomic_save_model(small(PPO, n_steps=64), run / "model.zip")
    write_config(run, {"algo": "ppo", "env": SKI, "normalize": True})
    with pytest.raises(RunError, match=r"normalize: true\) but vecnormalize.pkl is missing"):
        load_agent(run)
    write_config(run, {"algo": "ppo", "env": SKI, "normalize": "dict(norm_obs=True, norm_reward=False)"})
    with pytest.raises(RunError, match="trained on normalised observations"):
        load_agent(run)
    write_config(run, {"algo": "ppo", "env": SKI, "normalize": "dict(norm_obs=False, norm_reward=True)"})
    assert load_agent(run).vecnormalize is None  # rewards only (pixel entries): the agent acts on raw frames
    write_config(run, {"algo": "ppo", "env": SKI, "normalize": False})
    assert load_agent(run).vecnormalize is None
    write_config(run, {"algo": "ppo", "env": SKI, "normalize": True})
    atomic_save_model(small(PPO, n_steps=64), run / "best_model.zip")  # the best model's statistics are gone
    venv = VecNormalize(DummyVecEnv([lambda: gym.make(SKI)]))
    atomic_save_vecnormalize(venv, run / "vecnormalize.pkl")
    with pytest.raises(RunError, match=r"best_vecnormalize.pkl is missing .*; model.zip has its statistics \(--last"):
        load_agent(run)
    assert load_agent(run, prefer_best=False).vecnormalize is not None


def test_only_a_name_without_a_suffix_gets_zip_added(tmp_path):
    atomic_save_model(small(PPO, n_steps=64), tmp_path / "model.zip")
    assert resolve_model_path(tmp_path / "model") == tmp_path / "model.zip"  # as SB3's load accepts it
    with pytest.raises(RunError, match=r"model.zp does not exist .*; did you mean .*model.zip\?$"):
        resolve_model_path(tmp_path / "model.zp")
    with pytest.raises(RunError, match=r"other.zp does not exist \(give a run folder"):
        resolve_model_path(tmp_path / "other.zp")


def test_a_staged_run_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError, match="crash"), staged_run_dir("ppo", SKI, tmp_path) as staged:
        (staged.folder / "model.zip").write_bytes(b"half")
        assert staged.run_dir == tmp_path / "ppo" / "Ski-v0_1" and not any(staged.run_dir.iterdir())
        raise RuntimeError("crash before the statistics")
    assert list((tmp_path / "ppo").iterdir()) == []  # neither the hidden folder nor the claimed number is left
    with staged_run_dir("ppo", SKI, tmp_path) as staged:
        (staged.folder / "model.zip").write_bytes(b"whole")
        assert new_run_dir("ppo", SKI, tmp_path).name == "Ski-v0_2"  # the number is taken while it is written
    assert (tmp_path / "ppo" / "Ski-v0_1" / "model.zip").read_bytes() == b"whole"
    assert sorted(p.name for p in (tmp_path / "ppo").iterdir()) == ["Ski-v0_1", "Ski-v0_2"]


def test_a_run_still_being_written_is_not_the_latest(tmp_path):
    run = new_run_dir("ppo", SKI, tmp_path)
    (run / "model.zip").write_bytes(b"x")
    with staged_run_dir("ppo", SKI, tmp_path) as staged:
        (staged.folder / "model.zip").write_bytes(b"y")
        assert latest_run(tmp_path) == run


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        ("evaluate", ["{run}", "--episodes", "1"]),
        ("watch", ["{run}", "--record", "{tmp}/run.gif"]),
        ("compress", ["quantize", "--run", "{run}", "--eval-episodes", "1", "--out", "{tmp}"]),
        ("compress", ["distill", "--teacher", "{run}", "--iterations", "1", "--out", "{tmp}"]),
        ("gan", ["gail", "--expert", "{run}", "--timesteps", "64", "--out", "{tmp}", "--tensorboard-log", "{tmp}"]),
        ("transfer", ["curriculum", "--teacher", "{run}", "--budget", "64", "--out", "{tmp}/out"]),
        ("ensemble", ["agents", "--runs", "{run}", "{run}", "--episodes", "1", "--out", "{tmp}/out"]),
    ],
)
def test_every_script_refuses_a_train_py_run_whose_statistics_are_gone(script, argv, train_py_run, tmp_path, capsys):
    run = tmp_path / "Ski-v0_1"
    shutil.copytree(train_py_run, run)
    for statistics in run.rglob("*vecnormalize*.pkl"):
        statistics.unlink()
    argv = [a.format(run=run, tmp=tmp_path) for a in argv]
    code, _, err = run_main(load_script(script), argv, capsys)
    assert_one_line_error(code, err, 1, "was trained on normalised observations (config.yml: normalize: true)")
    written = [p for p in tmp_path.rglob("*") if p.is_file() and run not in p.parents]
    assert written == []  # refused before any work was written


def test_a_student_distilled_before_the_fix_is_refused_not_scored(train_py_run, trained_run, tmp_path, capsys):
    """Such a student's folder (runs/compression/distilled/ppo/Ski-v0_1) holds model.zip and a config.yml without
    normalize: distil's save raised KeyError before the statistics. evaluate.py scored it at 88 (its teacher 162)."""
    student = new_run_dir("ppo", SKI, tmp_path)
    atomic_save_model(small(PPO, n_steps=64), student / "model.zip")
    config = {"algo": "ppo", "env": SKI, "env_kwargs": {}, "distilled_from": str(train_py_run / "best_model.zip")}
    write_config(student, {**config, "distillation": {"student_net_arch": [16]}})
    code, out, err = run_main(load_script("evaluate"), [str(student), "--episodes", "1"], capsys)
    assert_one_line_error(code, err, 1, f"was distilled from {train_py_run / 'best_model.zip'}, which acts on normal")
    assert out == "" and "distil it again" in err
    write_config(student, {**config, "distilled_from": str(trained_run / "model.zip")})  # a raw-observation teacher
    assert load_agent(student).vecnormalize is None
