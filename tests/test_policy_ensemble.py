"""agents/ensemble/policies.py, the ensemble options of watch.py and evaluate.py, and the ensemble-agents
benchmark: the vote's arithmetic and tie-break, the Box mean, members refused for good reasons, and loaded runs
acting as one agent through the same evaluation, viewer and report code a single agent goes through."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from helpers import assert_one_line_error, load_script, run_main
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import envs  # noqa: F401
from agents.benchmarks.ensemble_agents import (
    EnsembleAgentsConfig,
    run_ensemble_agents,
    write_ensemble_agents_report,
)
from agents.ensemble.policies import (
    EnsembleError,
    PolicyEnsemble,
    load_ensemble,
    load_policy,
    weighted_vote,
)
from agents.evaluation import OptionNotApplicable, evaluate
from agents.recording import fallback_video_path
from agents.runs import (
    LoadedAgent,
    atomic_save_model,
    atomic_save_vecnormalize,
    load_agent,
    new_run_dir,
    read_config,
    write_config,
)
from agents.seeds import TEST_SEED

SKI = "trendgym/Ski-v0"
SKI_CONTINUOUS = "trendgym/SkiContinuous-v0"
DISCRETE6 = spaces.Discrete(6)
OBS = spaces.Box(-10.0, 10.0, (3,), dtype=np.float32)


class Stub:
    """A policy that maps an observation's first component to an action through ``table``; batches row by row."""

    def __init__(self, table, action_space=DISCRETE6, observation_space=OBS):
        self.table = table
        self.action_space = action_space
        self.observation_space = observation_space

    def predict(self, observation, deterministic=True):
        observation = np.asarray(observation)
        if observation.ndim == 1:
            return np.asarray(self.table[int(observation[0])]), None
        return np.stack([np.asarray(self.table[int(row[0])]) for row in observation]), None


def constant(action, **kwargs) -> Stub:
    return Stub({0: action, 1: action, 2: action}, **kwargs)


def obs(key: int = 0) -> np.ndarray:
    return np.array([key, 0.0, 0.0], dtype=np.float32)


# ---- the vote, the mean, the refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "weights", "expected"),
    [
        ([1, 1, 2], None, 1),  # majority
        ([1, 1, 2], [0.2, 0.2, 0.6], 2),  # one heavy member outvotes two light ones
        ([2, 1, 1, 2], None, 2),  # 2-2 tie: the first member's choice
        ([0, 1, 1, 2, 2], None, 1),  # tie between 1 and 2; member 0 voted for neither, member 1 chose 1
        ([3, 3, 5], [0.1, 0.2, 0.3], 3),  # 0.1 + 0.2 against 0.3 is a tie despite float rounding: first member
        ([3, 4, 5], [0, 0, 1], 5),  # zero weight, zero say
    ],
)
def test_weighted_majority_vote_and_its_tie_break(actions, weights, expected):
    ensemble = PolicyEnsemble([constant(a) for a in actions], weights)
    action, state = ensemble.predict(obs())
    assert int(action) == expected and state is None
    assert np.asarray(action).shape == ()


def test_vote_in_a_discrete_space_that_does_not_start_at_zero():
    space = spaces.Discrete(3, start=-1)
    members = [constant(-1, action_space=space), constant(1, action_space=space), constant(1, action_space=space)]
    assert int(PolicyEnsemble(members).predict(obs())[0]) == 1


def test_vote_on_a_batch_is_the_vote_on_each_row():
    members = [Stub({0: 1, 1: 4, 2: 2}), Stub({0: 1, 1: 3, 2: 5}), Stub({0: 0, 1: 3, 2: 2})]
    ensemble = PolicyEnsemble(members)
    batch = np.stack([obs(0), obs(1), obs(2), obs(1)])
    actions, _ = ensemble.predict(batch)
    assert actions.tolist() == [1, 3, 2, 3]
    assert actions.tolist() == [int(ensemble.predict(row)[0]) for row in batch]


def test_weighted_vote_function_on_members_by_batch():
    actions = np.array([[0, 5], [1, 5], [1, 0]])
    assert weighted_vote(actions, np.full(3, 1 / 3), 6).tolist() == [1, 5]
    assert weighted_vote(actions, np.array([0.5, 0.25, 0.25]), 6).tolist() == [0, 5]  # 0.5 vs 0.5: member 0


def test_box_actions_are_the_weighted_mean_clipped_to_the_space():
    box = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    members = [constant(np.array([0.5, -1.0]), action_space=box), constant(np.array([-0.5, 1.0]), action_space=box)]
    action, _ = PolicyEnsemble(members, weights=[3, 1]).predict(obs())
    np.testing.assert_allclose(action, [0.25, -0.5])
    assert action.dtype == np.float32 and action.shape == (2,)
    wild = [constant(np.array([3.0, 0.0]), action_space=box), constant(np.array([1.0, -3.0]), action_space=box)]
    ensemble = PolicyEnsemble(wild)
    assert ensemble.rule == "mean"
    np.testing.assert_allclose(ensemble.predict(obs())[0], [1.0, -1.0])
    batch, _ = ensemble.predict(np.stack([obs(), obs()]))
    assert batch.shape == (2, 2)


@pytest.mark.parametrize(
    ("members", "kwargs", "mentions"),
    [
        ([constant(1), constant(1, action_space=spaces.Discrete(5))], {}, "acts in Discrete(5)"),
        ([constant(1), constant(1, observation_space=spaces.Box(-1, 1, (4,)))], {}, "observes"),
        ([constant(1), constant(1)], {"weights": [1.0]}, "1 weights for 2 members"),
        ([constant(1), constant(1)], {"weights": [1.0, -1.0]}, "non-negative"),
        ([constant(1), constant(1)], {"weights": [0.0, 0.0]}, "not all zero"),
        ([constant(1), constant(1)], {"rule": "mean"}, "does not apply to Discrete(6)"),
        ([constant(1), constant(1)], {"rule": "soft"}, "actor-critic"),
        ([constant(1), constant(1)], {"rule": "median"}, "unknown ensemble rule"),
        ([constant(1), constant(1, action_space=None)], {}, "declares no action_space"),
        ([], {}, "at least one member"),
    ],
)
def test_members_that_cannot_act_as_one_are_refused_in_one_line(members, kwargs, mentions):
    with pytest.raises(ValueError, match=re.escape(mentions)) as caught:
        PolicyEnsemble(members, **kwargs)
    assert isinstance(caught.value, EnsembleError) and "\n" not in str(caught.value)


def test_a_recurrent_member_is_refused():
    model = RecurrentPPO("MlpLstmPolicy", gym.make(SKI), n_steps=16, batch_size=16, device="cpu")
    member = LoadedAgent(model=model, config={}, path="rppo.zip", vecnormalize=None)
    with pytest.raises(EnsembleError, match="recurrent"):
        PolicyEnsemble([member])


# ---- loaded runs ----------------------------------------------------------------------------------------------


def _save_run(root, env_id: str, seed: int, normalize: bool = False, config_env: str | None = None):
    """An untrained PPO (random weights differ by seed: enough for members that disagree) saved as a run."""
    env = gym.make(env_id)
    model = PPO("MlpPolicy", env, policy_kwargs={"net_arch": [16]}, seed=seed, device="cpu")
    run_dir = new_run_dir("ppo", env_id, root=root)
    write_config(run_dir, {"algo": "ppo", "env": config_env or env_id, "env_kwargs": {}, "seed": seed})
    atomic_save_model(model, run_dir / "model.zip")
    if normalize:  # made-up statistics, so that a member that ignored them would act differently
        vecnormalize = VecNormalize(DummyVecEnv([lambda: gym.make(env_id)]), norm_reward=False)
        rng = np.random.default_rng(seed)
        vecnormalize.obs_rms.mean = rng.normal(size=env.observation_space.shape)
        vecnormalize.obs_rms.var = rng.uniform(0.1, 4.0, size=env.observation_space.shape)
        atomic_save_vecnormalize(vecnormalize, run_dir / "vecnormalize.pkl")
    return run_dir


@pytest.fixture(scope="module")
def ski_runs(tmp_path_factory):
    """Three PPO ski runs of seeds 0, 1, 2, laid out as teachers are (runs/<algo>/Ski-v0_<n>, seed in config.yml);
    the second normalises its observations."""
    root = tmp_path_factory.mktemp("ensemble_runs")
    return [_save_run(root, SKI, seed, normalize=seed == 1) for seed in range(3)]


@pytest.fixture(scope="module")
def continuous_run(tmp_path_factory):
    return _save_run(tmp_path_factory.mktemp("continuous"), SKI_CONTINUOUS, 0)


def _ski_observations(n: int) -> np.ndarray:
    env = gym.make(SKI)
    env.reset(seed=TEST_SEED)
    observations = [env.step(i % 6)[0] for i in range(n)]
    env.close()
    return np.stack(observations)


def test_each_member_acts_on_its_own_statistics_and_the_vote_combines_them(ski_runs):
    ensemble = load_ensemble(ski_runs)
    agents = [load_agent(run) for run in ski_runs]
    assert agents[1].vecnormalize is not None
    batch = _ski_observations(12)
    members, batched = ensemble.member_actions(batch)
    assert batched and members.shape == (3, 12)
    for i, agent in enumerate(agents):
        assert members[i].tolist() == agent.predict(batch)[0].tolist()
    expected = weighted_vote(members, np.full(3, 1 / 3), 6)
    assert ensemble.predict(batch)[0].tolist() == expected.tolist()
    assert [int(ensemble.predict(o)[0]) for o in batch] == expected.tolist()


def test_a_single_member_ensemble_acts_exactly_as_that_member(ski_runs):
    agent = load_agent(ski_runs[1])  # the one with VecNormalize statistics
    batch = _ski_observations(20)
    for rule in ("vote", "soft"):
        ensemble = PolicyEnsemble([agent], rule=rule)
        assert ensemble.predict(batch)[0].tolist() == agent.predict(batch)[0].tolist()
    seeds = [TEST_SEED]
    assert evaluate(PolicyEnsemble([agent]), SKI, {}, seeds).episodes == evaluate(agent, SKI, {}, seeds).episodes


def test_an_ensemble_of_runs_is_judged_by_evaluate_repeatably(ski_runs):
    seeds = [TEST_SEED]
    for rule in ("vote", "soft"):
        ensemble = load_ensemble(ski_runs, rule=rule)
        assert ensemble.config["env"] == SKI and ensemble.rule == rule
        first = evaluate(ensemble, SKI, {}, seeds, name="ensemble")
        assert first.episodes == evaluate(ensemble, SKI, {}, seeds).episodes
        assert "clean" in first.metric_means()


def test_runs_of_different_envs_and_single_run_options_are_refused(ski_runs, continuous_run, tmp_path):
    with pytest.raises(EnsembleError, match="share one env"):
        load_ensemble([ski_runs[0], continuous_run])
    disguised = _save_run(tmp_path, SKI_CONTINUOUS, 0, config_env=SKI)  # the config lies: the spaces still differ
    with pytest.raises(EnsembleError, match="acts in Box"):
        load_ensemble([ski_runs[0], disguised])
    with pytest.raises(OptionNotApplicable, match="two or more runs"):
        load_policy([ski_runs[0]], weights=[1.0])
    assert isinstance(load_policy([ski_runs[0]]), LoadedAgent)


# ---- the scripts ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_script():
    return load_script("evaluate")


@pytest.fixture(scope="module")
def watch_script():
    return load_script("watch")


def test_evaluate_several_runs_as_one_agent_beside_each_member(ski_runs, evaluate_script, capsys, tmp_path):
    out_json = tmp_path / "eval.json"
    argv = [*map(str, ski_runs), "--episodes", "1", "--members", "--no-baselines", "--json", str(out_json)]
    code, out, err = run_main(evaluate_script, argv, capsys)
    assert code == 0, err
    assert "ensemble of 3 by vote" in out and "ensemble (vote)" in out
    assert out.count("run ") >= 3
    record = json.loads(out_json.read_text())
    assert record["ensemble"] == {"rule": "vote", "weights": pytest.approx([1 / 3] * 3)}
    assert len(record["models"]) == 3 and len(record["results"]) == 4


def _copy_run(run_dir: Path, to: Path, **env_kwargs) -> Path:
    """A copy of a run whose config.yml says it trained with ``env_kwargs`` (a blue skier, as far as any script
    reading the config can tell)."""
    shutil.copytree(run_dir, to)
    write_config(to, {**read_config(to), "env_kwargs": env_kwargs})
    return to


def test_evaluate_and_watch_warn_in_one_line_when_a_member_trained_on_another_slope(
    train_py_run, evaluate_script, watch_script, capsys, tmp_path
):
    green = _copy_run(train_py_run, tmp_path / "ppo" / "Ski-v0_1")  # env_kwargs {}: the default slope, green
    explicit_green = _copy_run(train_py_run, tmp_path / "ppo" / "Ski-v0_2", slope="green")
    blue = _copy_run(train_py_run, tmp_path / "ppo" / "Ski-v0_3", slope="blue")
    argv = ["--episodes", "1", "--members", "--no-baselines"]
    code, out, err = run_main(evaluate_script, [str(green), str(explicit_green), str(blue), *argv], capsys)
    assert code == 0, err
    assert err.splitlines() == [
        "evaluate.py: warning: run 3 (Ski-v0_3) trained with slope=blue, judged with slope=green"
    ]
    assert "run 3 (Ski-v0_3)" in out  # still judged: the warning says what its row means
    code, _, err = run_main(evaluate_script, [str(green), str(explicit_green), *argv], capsys)
    assert code == 0 and err == ""  # {} and slope=green are the same env
    code, _, err = run_main(evaluate_script, [str(green), str(blue), *argv, "--slope", "blue"], capsys)
    assert err.splitlines() == [
        "evaluate.py: warning: run 1 (Ski-v0_1) trained with slope=green, judged with slope=blue"
    ]
    gif = tmp_path / "ensemble.gif"
    code, _, err = run_main(watch_script, [str(green), str(blue), "--record", str(gif), "--scale", "0.25"], capsys)
    assert code == 0 and gif.is_file(), err
    assert err.splitlines() == ["watch.py: warning: run 2 (Ski-v0_3) trained with slope=blue, judged with slope=green"]


def test_watch_records_an_ensemble_without_touching_the_first_runs_own_video(ski_runs, watch_script, capsys):
    argv = [str(ski_runs[0]), str(ski_runs[2]), "--ensemble-rule", "soft", "--weights", "2", "1", "--frame-skip", "50"]
    code, out, err = run_main(watch_script, argv, capsys)
    assert code == 0, err
    assert "ensemble of 2 by soft, weights 0.667 0.333" in out
    path = fallback_video_path(ski_runs[0], TEST_SEED)
    ensemble_video = path.with_name(f"{path.stem}_ensemble2.gif")
    assert ensemble_video.is_file() and not path.exists()


@pytest.mark.parametrize(
    ("script", "case", "expected_code", "mentions"),
    [
        ("watch", "different env", 1, "share one env"),
        ("evaluate", "different env", 1, "share one env"),
        ("evaluate", "weights for one run", 2, "two or more runs"),
        ("watch", "wrong number of weights", 1, "1 weights for 2 members"),
        ("evaluate", "mean of Discrete", 1, "does not apply to Discrete(6)"),
        ("evaluate", "members of one run", 2, "--members"),
        ("evaluate", "bad rule", 2, "--ensemble-rule"),
    ],
)
def test_bad_ensemble_input_is_one_line(
    script, case, expected_code, mentions, ski_runs, continuous_run, evaluate_script, watch_script, capsys
):
    a, b = str(ski_runs[0]), str(ski_runs[2])
    argv = {
        "different env": [a, str(continuous_run)],
        "weights for one run": [a, "--weights", "1"],
        "wrong number of weights": [a, b, "--weights", "1"],
        "mean of Discrete": [a, b, "--ensemble-rule", "mean"],
        "members of one run": [a, "--members"],
        "bad rule": [a, b, "--ensemble-rule", "median"],
    }[case]
    module = {"watch": watch_script, "evaluate": evaluate_script}[script]
    code, _, err = run_main(module, [*argv, "--episodes", "1"], capsys)
    assert_one_line_error(code, err, expected_code, mentions)


# ---- the benchmark --------------------------------------------------------------------------------------------


def test_the_benchmark_compares_every_member_with_the_ensembles_on_the_same_courses(ski_runs, tmp_path):
    config = EnsembleAgentsConfig(teacher_seeds=(2, 0), episodes=1, teacher_root=ski_runs[0].parents[1])
    lines = []
    result = run_ensemble_agents(config, progress=lines.append)
    assert len(lines) == 2 and len(result.runs) == 2 * (2 + 2)
    for slope in ("green", "blue"):
        members = result.members(slope)
        assert [m.name for m in members] == ["seed 2", "seed 0"]
        assert all(len(r.returns) == 1 for r in result.runs)
        vote = result.ensemble(slope, "vote")
        assert 0.0 <= vote.unanimous <= 1.0
        mean_gain = vote.return_mean - np.mean([m.return_mean for m in members])
        assert result.gain(slope, "vote")["mean"] == pytest.approx(mean_gain)
    written = write_ensemble_agents_report(result, tmp_path, readme=None)
    markdown = written["markdown"].read_text()
    assert "**How to read it.**" in markdown and "members: mean ± std" in markdown and "soft vote" in markdown
    data = json.loads(written["json"].read_text())
    assert [s["slope"] for s in data["summary"]] == ["green", "blue"]
