"""agents/evaluation.py and scripts/evaluate.py: episodes on their own seeds, baselines beside the agent, and one
clear line (never a traceback) for every user mistake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from helpers import assert_one_line_error, load_script, run_main
from stable_baselines3 import PPO

import envs  # noqa: F401
from agents.baselines import HeuristicSkier, RandomPolicy
from agents.evaluation import (
    EnvConfigError,
    OptionNotApplicable,
    baseline_policies,
    check_policy_fits,
    compare_with_baselines,
    comparison_dict,
    env_of_run,
    evaluate,
    format_table,
    make_env,
)
from agents.runs import atomic_save_model, new_run_dir, write_config
from agents.seeds import test_seeds as unseen_seeds  # not test_*: pytest would collect it

SKI = "trendgym/Ski-v0"
SEEDS = unseen_seeds(4)


@pytest.fixture(scope="module")
def evaluate_script():
    return load_script("evaluate")


# ---- the library -----------------------------------------------------------------------------------------------


def test_the_heuristic_skier_beats_the_random_policy_and_the_metrics_come_from_the_last_info():
    env = gym.make(SKI)
    heuristic = evaluate(HeuristicSkier(env.action_space), SKI, {"slope": "green"}, SEEDS, name="heuristic")
    random = evaluate(RandomPolicy(env.action_space, seed=0), SKI, {"slope": "green"}, SEEDS, name="random")
    assert heuristic.mean_return > random.mean_return + 100
    assert heuristic.metric_means()["clean"] > random.metric_means()["clean"]
    assert heuristic.seeds == random.seeds == SEEDS
    assert heuristic.n_gates == 8
    for episode in heuristic.episodes:
        assert set(episode.metrics) == set(env.unwrapped.metadata["episode_metrics"])
        assert episode.metrics["time"] == pytest.approx(episode.length * 0.1)


def test_each_episode_runs_on_its_own_seed_and_the_same_seeds_give_the_same_results():
    env = gym.make(SKI)
    skier = HeuristicSkier(env.action_space)
    together = evaluate(skier, SKI, {}, SEEDS)
    alone = evaluate(skier, SKI, {}, [SEEDS[2]])
    assert together.episodes[2] == alone.episodes[0]  # episode i is the course of seeds[i], whatever came before
    assert len({e.length for e in together.episodes}) > 1  # different seeds, different courses
    again = evaluate(skier, SKI, {}, SEEDS)
    assert again.episodes == together.episodes
    first = evaluate(RandomPolicy(env.action_space, seed=3), SKI, {}, SEEDS[:2])
    second = evaluate(RandomPolicy(env.action_space, seed=3), SKI, {}, SEEDS[:2])
    assert first.returns == second.returns


def test_a_comparison_has_the_baselines_on_the_same_seeds_as_a_table_and_as_json():
    results = compare_with_baselines(None, SKI, {"slope": "green"}, SEEDS[:2])
    assert [r.name for r in results] == ["random", "heuristic"]
    plain, markdown = format_table(results), format_table(results, "markdown")
    assert "heuristic" in plain and "clean runs" in plain and "±" in plain
    assert markdown.splitlines()[1].startswith("| --- |")
    record = json.loads(json.dumps(comparison_dict(results, model="x.zip")))
    assert record["seeds"] == SEEDS[:2] and record["model"] == "x.zip"
    assert set(record["results"]["heuristic"]) >= {"return_mean", "return_std", "metrics_mean", "episode_results"}


def test_the_heuristic_baseline_is_only_offered_where_it_can_read_the_observation():
    assert set(baseline_policies(SKI, {})) == {"random", "heuristic"}
    assert set(baseline_policies(SKI, {"obs_type": "pixels"})) == {"random"}
    assert set(baseline_policies("CartPole-v1", {})) == {"random"}


def test_the_env_comes_from_the_run_config_and_slope_overrides_only_ski_envs():
    config = {"env": SKI, "env_kwargs": {"slope": "green", "obs_type": "vector"}}
    assert env_of_run(config) == (SKI, {"slope": "green", "obs_type": "vector"})
    assert env_of_run(config, slope="blue") == (SKI, {"slope": "blue", "obs_type": "vector"})
    with pytest.raises(OptionNotApplicable):
        env_of_run({"env": "CartPole-v1"}, slope="blue")
    with pytest.raises(EnvConfigError, match="--env"):
        env_of_run({})
    with pytest.raises(EnvConfigError, match="unknown env"):
        make_env("trendgym/Nope-v0")
    with pytest.raises(EnvConfigError, match="slope"):
        make_env(SKI, {"slope": "red"})


# ---- the script ------------------------------------------------------------------------------------------------


def test_evaluate_script_prints_the_comparison_and_writes_json(trained_run, evaluate_script, capsys, tmp_path):
    out_json = tmp_path / "eval.json"
    code, out, err = run_main(evaluate_script, [str(trained_run), "--episodes", "2", "--json", str(out_json)], capsys)
    assert code == 0, err
    assert "heuristic" in out and "random" in out and "ppo" in out
    record = json.loads(out_json.read_text())
    assert set(record) >= {"env", "env_kwargs", "deterministic", "seeds", "model", "config", "results"}
    assert record["seeds"] == unseen_seeds(2) and record["env_kwargs"] == {"slope": "green"}
    assert set(record["results"]) == {"ppo", "random", "heuristic"}
    assert len(record["results"]["ppo"]["episode_results"]) == 2


def test_evaluate_script_slope_override_and_no_baselines(trained_run, evaluate_script, capsys, tmp_path):
    out_json = tmp_path / "eval.json"
    argv = [str(trained_run), "--seeds", "5", "--slope", "blue", "--no-baselines", "--json", str(out_json)]
    code, _, err = run_main(evaluate_script, argv, capsys)
    assert code == 0, err
    record = json.loads(out_json.read_text())
    assert record["env_kwargs"] == {"slope": "blue"} and record["seeds"] == [5]
    assert list(record["results"]) == ["ppo"] and record["results"]["ppo"]["n_gates"] == 12


def test_help_has_examples(evaluate_script, capsys):
    code, out, _ = run_main(evaluate_script, ["--help"], capsys)
    assert code == 0 and "Examples:" in out and "--slope" in out


def _bad_run(tmp_path: Path, trained_run: Path, env_id: str, model_text: str | None) -> Path:
    run_dir = tmp_path / "ppo" / "Ski-v0_1"
    run_dir.mkdir(parents=True)
    write_config(run_dir, {"algo": "ppo", "env": env_id, "env_kwargs": {}})
    if model_text is None:
        shutil.copy(trained_run / "model.zip", run_dir / "model.zip")
    else:
        (run_dir / "model.zip").write_text(model_text)
    return run_dir


@pytest.mark.parametrize(
    ("case", "expected_code", "mentions"),
    [
        ("missing model", 1, "does not exist"),
        ("corrupt model", 1, "not a model zip"),
        ("unknown env", 1, "unknown env"),
        ("no runs", 1, "no runs"),
        ("bad slope", 2, "--slope"),
        ("no episodes", 2, "--episodes"),
        ("slope on cartpole", 2, "ski envs only"),
        ("unknown --env", 2, "unknown env"),
    ],
)
def test_evaluate_script_bad_input_is_one_line(
    case, expected_code, mentions, trained_run, evaluate_script, capsys, tmp_path, monkeypatch
):
    argv = {
        "missing model": [str(tmp_path / "nowhere" / "model.zip")],
        "bad slope": [str(trained_run), "--slope", "red"],
        "no episodes": [str(trained_run), "--episodes", "0"],
        "no runs": [],
        "unknown --env": [str(trained_run), "--env", "trendgym/Nope-v0"],
    }.get(case)
    if case == "no runs":
        monkeypatch.chdir(tmp_path)
    if case == "corrupt model":
        argv = [str(_bad_run(tmp_path, trained_run, SKI, "this is not a zip"))]
    if case == "unknown env":
        argv = [str(_bad_run(tmp_path, trained_run, "trendgym/Nope-v0", None))]
    if case == "slope on cartpole":
        argv = [str(_bad_run(tmp_path, trained_run, "CartPole-v1", None)), "--slope", "blue"]
    code, _, err = run_main(evaluate_script, argv, capsys)
    assert_one_line_error(code, err, expected_code, mentions)


def test_a_model_for_another_observation_space_is_refused_in_one_line(tmp_path, evaluate_script, capsys):
    env = gym.make("CartPole-v1")
    run_dir = new_run_dir("ppo", "CartPole-v1", root=tmp_path)
    write_config(run_dir, {"algo": "ppo", "env": "CartPole-v1", "env_kwargs": {}})
    atomic_save_model(PPO("MlpPolicy", env, n_steps=64, batch_size=64, device="cpu"), run_dir / "model.zip")
    code, _, err = run_main(evaluate_script, [str(run_dir), "--env", SKI], capsys)
    assert_one_line_error(code, err, 1, "observation space")


def test_a_cnn_model_fits_the_pixel_env_it_was_trained_on_and_not_the_vector_one():
    # SB3 keeps a CNN's observation space channel-first, (3, 84, 84), and transposes the env's frames itself.
    model = SimpleNamespace(
        observation_space=gym.spaces.Box(0, 255, (3, 84, 84), np.uint8), action_space=gym.spaces.Discrete(6)
    )
    check_policy_fits(model, gym.make(SKI, obs_type="pixels"))
    with pytest.raises(EnvConfigError, match=r"Box\(3, 84, 84\)"):
        check_policy_fits(model, gym.make(SKI))
