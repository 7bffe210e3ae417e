"""Watching, evaluating and training a search env from the command line show one search, as training runs it:
watch.py and evaluate.py play their episodes as one search that grows (a seeded reset would start a new one each
episode), evaluate.py's table shows a search's accuracies and counts as such, and train.py names the best
configuration its search met. Every test drives a script's ``main(argv)`` on a run that ``train.py`` wrote."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from helpers import load_script, run_main
from PIL import Image
from stable_baselines3.common.vec_env import DummyVecEnv
from test_search_env import FakeBackend, needs_arch_table

import envs  # noqa: F401
from agents.baselines import RandomPolicy
from agents.evaluation import make_env, plays_one_search, resets_with_seed, run_episode
from agents.recording import frames_for
from agents.search_summary import best_configuration_met
from agents.seeds import TEST_SEED
from trends.automl.backends import make_backend
from trends.automl.space import get_space

ARCH = "trendgym/ArchitectureSearch-v0"
SEARCH_ENVS = (  # every decision env whose history of episodes outlives reset(), drawn by its renderer
    ARCH,
    "trendgym/HyperparamSearch-v0",
    "trendgym/FeatureEngineering-v0",
    "trendgym/Pruning-v0",
    "trendgym/Quantization-v0",
    "trendgym/EnsembleWeighting-v0",
)
BEST_LINE = re.compile(r"best configuration met in training: (\{.*\}) val acc (0\.\d{3}), .*\(episode (\d+) of (\d+)\)")

pytestmark = needs_arch_table


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> tuple[Path, str]:
    """A MaskablePPO run on ArchitectureSearch-v0 that train.py wrote (one update of 256 steps on the table, a few
    seconds), and what train.py printed."""
    root = tmp_path_factory.mktemp("runs")
    argv = ["--algo", "maskableppo", "--env", ARCH, "--timesteps", "256", "--tensorboard-log", str(root)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = load_script("train").main([*argv, "--no-eval", "--quiet"])
    assert code == 0, out.getvalue()
    (run_dir,) = (root / "maskableppo").iterdir()
    return run_dir, out.getvalue()


def gif_frame(path: Path, index: int) -> np.ndarray:
    with Image.open(path) as image:
        image.seek(index)
        return np.asarray(image.convert("RGB"))


def test_train_names_the_best_configuration_its_search_met(search_run):
    _, out = search_run
    match = BEST_LINE.search(out)
    assert match, out
    config, val_accuracy, episode, episodes = ast.literal_eval(match[1]), match[2], int(match[3]), int(match[4])
    space = get_space("mnist1d-arch")
    assert space.is_valid(config) and 1 <= episode <= episodes
    assert episodes >= 256 // 11  # one episode per configuration, at most 11 decisions each
    assert val_accuracy == f"{make_backend(space, 'table').evaluate(config).val_accuracy:.3f}"


def test_watch_records_one_search_that_grows_episode_by_episode(search_run, tmp_path, capsys):
    run_dir, _ = search_run
    gif = tmp_path / "search.gif"
    code, out, err = run_main(load_script("watch"), [str(run_dir), "--episodes", "3", "--record", str(gif)], capsys)
    assert code == 0, err
    assert f"one search of 3 episodes: seed {TEST_SEED} starts it" in out
    lines = [line for line in out.splitlines() if line.startswith("episode ")]
    assert [int(re.search(r"evaluations (\d+)", line)[1]) for line in lines] == [1, 2, 3]
    # Each episode's first frame draws the history so far: empty, then one evaluation, then two. (A new search per
    # episode, as before, drew the same empty history three times.)
    lengths = [int(re.search(r"(\d+) steps", line)[1]) for line in lines]
    starts = np.cumsum([0] + [frames_for(n) for n in lengths])
    assert f"wrote {gif}: {starts[-1]} frames" in out
    first_frames = [gif_frame(gif, int(i)) for i in starts[:-1]]
    assert not np.array_equal(first_frames[0], first_frames[1])
    assert not np.array_equal(first_frames[1], first_frames[2])


def test_evaluate_judges_one_search_against_a_random_search_of_as_many_episodes(search_run, tmp_path, capsys):
    run_dir, _ = search_run
    out_json = tmp_path / "eval.json"
    argv = [str(run_dir), "--episodes", "6", "--json", str(out_json)]
    code, out, err = run_main(load_script("evaluate"), argv, capsys)
    assert code == 0, err
    assert "one search of 6 episodes each" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("policy"))
    header, *rows = lines[start : start + 3]  # the table: header, maskableppo, random
    assert header.split() == ["policy", "return", "val_accuracy", "best_val_accuracy", "parameters", "evaluations"]
    for row, name in zip(rows, ("maskableppo", "random"), strict=True):
        cells = row.split()
        assert cells[0] == name
        assert re.fullmatch(r"\d\.\d{3}", cells[1]) and re.fullmatch(r"\d\.\d{3}", cells[3])  # return mean ± std
        assert re.fullmatch(r"0\.\d{3}", cells[4]) and re.fullmatch(r"0\.\d{3}", cells[5])  # accuracies
        assert re.fullmatch(r"\d+", cells[6]) and cells[7] == "6"  # mean parameters, evaluations at the end
    record = json.loads(out_json.read_text())
    for result in record["results"].values():
        assert result["one_search"] and result["metrics_at_search_end"]["evaluations"] == 6
        assert [e["metrics"]["evaluations"] for e in result["episode_results"]] == [1, 2, 3, 4, 5, 6]
        best = max(e["metrics"]["val_accuracy"] for e in result["episode_results"])
        assert result["metrics_at_search_end"]["best_val_accuracy"] == best


def test_the_window_plays_one_search_too(search_run, monkeypatch):
    from agents import recording
    from agents.runs import load_agent

    monkeypatch.setattr(recording, "END_PAUSE", 0.0)
    agent = load_agent(search_run[0])
    episodes, _ = recording.play_episodes(agent, ARCH, {}, [TEST_SEED, TEST_SEED + 1, TEST_SEED + 2], fps=240)
    assert [e.metrics["evaluations"] for e in episodes] == [1, 2, 3]


# ---- the pieces ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", SEARCH_ENVS)
def test_every_decision_env_with_a_search_history_declares_it(env_id):
    entry_point = gym.spec(env_id).entry_point
    module, name = entry_point.split(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert cls.metadata["search_across_episodes"] is True


def test_envs_with_independent_episodes_reset_every_episode_with_its_seed():
    for env_id in ("trendgym/Ski-v0", "trendgym/LearningRateControl-v0"):  # a course, a training instance each
        env = make_env(env_id)
        assert not plays_one_search(env) and resets_with_seed(env, 1)
        env.close()


def test_the_feature_env_played_as_evaluate_plays_it_keeps_one_search():
    env = make_env("trendgym/FeatureEngineering-v0", {"budget": 2})
    policy = RandomPolicy(env.action_space, seed=0, observation_space=env.observation_space)
    for i in range(3):
        run_episode(policy, env, TEST_SEED + i, reset_seed=resets_with_seed(env, i))
    assert len(env.unwrapped.history) == 3
    env.close()


def test_the_best_configuration_met_is_the_first_best_of_every_training_env():
    space = get_space("mnist1d-arch")
    venv = DummyVecEnv([lambda: gym.make(ARCH, backend=FakeBackend(space))] * 2)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(200):
        masks = np.stack(venv.env_method("action_masks"))
        venv.step(np.array([rng.choice(np.flatnonzero(m)) for m in masks]))

    class Model:
        def get_env(self):
            return venv

    searches = [env.unwrapped for env in venv.envs]
    i = max(range(2), key=lambda k: (searches[k].best.val_accuracy, -k))
    best = searches[i].best
    line = best_configuration_met(Model())
    episode, episodes = searches[i].history.index(best) + 1, len(searches[i].history)
    assert f"{best.config} val acc {best.val_accuracy:.3f}" in line
    assert line.endswith(f"(episode {episode} of {episodes} of training env {i + 1} of 2)")
    assert best_configuration_met(type("NoEnv", (), {"get_env": lambda self: None})()) is None


def test_a_validation_during_training_is_one_search_started_again_at_each_validation():
    from agents.callbacks import SeededEpisodes

    env = SeededEpisodes(gym.make(ARCH, backend=FakeBackend(get_space("mnist1d-arch"))), start=500_000)
    policy = RandomPolicy(env.action_space, seed=0, observation_space=env.observation_space)
    for _ in range(3):
        run_episode(policy, env, 0, reset_seed=False)  # the wrapper chooses the seeds, as SB3's evaluation lets it
    assert len(env.unwrapped.history) == 3
    env.rewind()
    env.reset()
    assert env.unwrapped.history == []
