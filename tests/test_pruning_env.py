"""The pruning env: Gymnasium and SB3 accept it, every episode ends within the budget whatever the agent does, its
costs are those of the pruned network, the reward is AMC's, it is deterministic, and it renders."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.compression.pruning_env import PruningEnv, uniform_heuristic
from trends.compression.zoo import ZOO, load_trained
from trends.models import count_flops, count_parameters

MODELS = tuple(ZOO)  # mnist1d-cnn, digits-mlp


@pytest.fixture(scope="module")
def trained(cache_dir):
    return {name: load_trained(name, cache_dir) for name in MODELS}


def run_episode(env: PruningEnv, actions) -> tuple[list[np.ndarray], float, dict]:
    """Step ``actions`` (a callable of the step index, or a number) to the end; observations, last reward, last
    info with ``any_clipped``: whether the budget lowered any step's ratio."""
    obs, _ = env.reset()
    observations, terminated, t, clipped = [obs], False, 0, False
    while not terminated:
        a = actions(t) if callable(actions) else actions
        obs, reward, terminated, truncated, info = env.step(np.array([a], dtype=np.float32))
        assert not truncated
        observations.append(obs)
        clipped, t = clipped or info["clipped"], t + 1
    return observations, reward, {**info, "any_clipped": clipped}


# ---- API -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.filterwarnings("ignore:.*not having a spec")  # the env is made directly, not by gym.make
@pytest.mark.filterwarnings("ignore:We recommend you to use a symmetric")  # [0, 1] is AMC's preserve ratio
def test_gymnasium_and_sb3_accept_the_env(trained, name):
    gym_check_env(PruningEnv(model=trained[name]), skip_render_check=True)
    sb3_check_env(PruningEnv(model=trained[name]))
    gym_check_env(PruningEnv(model=trained[name], render_mode="rgb_array"))


def test_the_registered_id_makes_the_env(trained, cache_dir):
    if "trendgym/Pruning-v0" not in gym.registry:
        pytest.skip("trendgym/Pruning-v0 is not registered yet")
    env = gym.make("trendgym/Pruning-v0", cache_dir=cache_dir)
    assert isinstance(env.unwrapped, PruningEnv)
    assert env.unwrapped.trained.name == "mnist1d-cnn"


def test_spaces_steps_and_metadata(trained):
    env = PruningEnv(model=trained["mnist1d-cnn"])
    assert env.action_space.shape == (1,) and env.observation_space.shape == (10,)
    assert [g.names for g in env.groups] == [("conv1", "conv2"), ("conv3",), ("dense1",)]  # conv2 is coupled
    assert [g.names for g in PruningEnv(model=trained["digits-mlp"]).groups] == [("dense1",), ("dense2",)]
    assert env.metadata["metrics_namespace"] == "compress"
    assert env.metadata["episode_metrics"] == ("val_accuracy", "flops_ratio")
    observations, _, info = run_episode(env, 1.0)
    assert len(observations) == 4
    assert observations[0][9] == 1.0 and observations[0][7] == 0.0  # nothing pruned yet
    assert [observations[t][0] for t in range(3)] == [0.0, 0.5, 1.0]  # the layer index, scaled
    for key in ("flops_ratio", "params_ratio", "val_accuracy", "test_accuracy", "preserve_ratios"):
        assert key in info
    assert set(info["preserve_ratios"]) == {"conv1", "conv2", "conv3", "dense1"}
    assert info["preserve_ratios"]["conv1"] == info["preserve_ratios"]["conv2"]
    with pytest.raises(ResetNeeded):
        env.step(np.array([0.5], dtype=np.float32))


# ---- the budget ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("target", ["flops", "params"])
def test_every_episode_ends_within_the_budget(trained, name, target):
    env = PruningEnv(model=trained[name], target=target)
    rng = np.random.default_rng(0)
    policies = [1.0, 0.0, 0.5] + [lambda t: rng.random() for _ in range(20)]
    for policy in policies:
        _, _, info = run_episode(env, policy)
        assert info[f"{target}_ratio"] <= 0.5 + 1e-12, policy
    _, _, info = run_episode(env, 1.0)
    assert info[f"{target}_ratio"] > 0.45  # asking for everything ends close to the budget, not far under it


def test_keeping_everything_is_clipped_to_the_budget(trained):
    env = PruningEnv(model=trained["mnist1d-cnn"])
    assert env._cost(env._full) > env.budget  # keeping every layer whole breaks the budget...
    _, _, info = run_episode(env, 1.0)
    assert info["any_clipped"] and info["flops_ratio"] <= 0.5  # ...so the later layers pay for it


def test_the_costs_are_those_of_the_pruned_network(trained):
    env = PruningEnv(model=trained["mnist1d-cnn"], target="params", preserve=0.7)
    original = env.trained.model
    for policy in (1.0, 0.0, 0.4, lambda t: (0.9, 0.2, 0.6)[t]):
        _, _, info = run_episode(env, policy)
        pruned = env.pruned_model()
        assert count_parameters(pruned) == info["parameters"] < count_parameters(original)
        assert count_flops(pruned, env.sample_shape) == info["flops"] < count_flops(original, env.sample_shape)
        assert info["flops_ratio"] == info["flops"] / count_flops(original, env.sample_shape)
        assert info["params_ratio"] == info["parameters"] / count_parameters(original)


def test_uniform_heuristic_keeps_one_share_within_the_budget(trained):
    for name in MODELS:
        env = PruningEnv(model=trained[name])
        _, _, info = run_episode(env, float(uniform_heuristic(env)[0]))
        shares = [g.out_channels * info["preserve_ratios"][g.names[0]] for g in env.groups]
        assert info["flops_ratio"] <= 0.5 and not info["any_clipped"]
        assert max(info["preserve_ratios"].values()) - min(info["preserve_ratios"].values()) < 0.05, shares


# ---- reward and determinism ----------------------------------------------------------------------------------


def test_the_reward_is_amcs(trained):
    error_env = PruningEnv(model=trained["digits-mlp"], reward="error")
    log_env = PruningEnv(model=trained["digits-mlp"], reward="flops-log")
    _, reward, info = run_episode(error_env, 0.7)
    assert reward == pytest.approx(-(1.0 - info["val_accuracy"]))
    _, log_reward, log_info = run_episode(log_env, 0.7)
    assert log_info["val_accuracy"] == info["val_accuracy"]
    assert log_reward == pytest.approx(-(1.0 - info["val_accuracy"]) * math.log(info["flops"]))
    env = PruningEnv(model=trained["digits-mlp"])
    env.reset()
    _, reward, terminated, _, _ = env.step(np.array([0.7], dtype=np.float32))
    assert reward == 0.0 and not terminated  # nothing until the last layer


def test_the_env_is_deterministic_and_caches_scores(trained):
    rng = np.random.default_rng(3)
    actions = rng.random(3).tolist()
    first = run_episode(PruningEnv(model=trained["mnist1d-cnn"]), lambda t: actions[t])
    env = PruningEnv(model=trained["mnist1d-cnn"])
    env.reset(seed=123)
    second = run_episode(env, lambda t: actions[t])
    third = run_episode(env, lambda t: actions[t])
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1] == third[1]
    assert first[2]["preserve_ratios"] == second[2]["preserve_ratios"]
    assert not second[2]["cached"] and third[2]["cached"]
    assert len(env._scores) == 1  # the repeated configuration was scored once
    assert len(env.history) == 2
    env.reset(seed=0)
    assert env.history == []  # a seeded reset starts a new search


# ---- rendering and bad input ---------------------------------------------------------------------------------


def test_rendering_draws_the_network(trained):
    env = PruningEnv(model=trained["mnist1d-cnn"], render_mode="rgb_array")
    run_episode(env, 0.6)
    env.reset()
    env.step(np.array([0.3], dtype=np.float32))
    frame = env.render()
    assert frame.shape == (540, 960, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 10  # not blank
    env.close()
    env.close()
    with pytest.warns(UserWarning, match="render_mode"):
        assert PruningEnv(model=trained["digits-mlp"]).render() is None  # no render_mode: a warning, no frame


@pytest.mark.parametrize(
    ("kwargs", "mentions"),
    [
        ({"model": "resnet50"}, "mnist1d-cnn"),
        ({"target": "latency"}, "target"),
        ({"reward": "accuracy"}, "reward"),
        ({"norm": "l3"}, "norm"),
        ({"preserve": 0.0}, "preserve"),
        ({"preserve": "half"}, "preserve"),
        ({"min_preserve": 1.5}, "min_preserve"),
        ({"preserve": 0.01}, "out of reach"),
        ({"render_mode": "ansi"}, "render_mode"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(trained, kwargs, mentions):
    kwargs.setdefault("model", trained["digits-mlp"])
    with pytest.raises(ValueError, match=mentions) as error:
        PruningEnv(**kwargs)
    assert "\n" not in str(error.value)


def test_bad_actions_raise_invalid_action(trained):
    env = PruningEnv(model=trained["digits-mlp"])
    env.reset()
    for action in (np.array([math.nan]), np.array([0.1, 0.2]), "half"):
        with pytest.raises(InvalidAction):
            env.step(action)
    _, _, _, _, info = env.step(np.array([7.0]))  # outside [0, 1]: clipped, as continuous-control envs do
    assert info["requested"] == 1.0
    with pytest.raises(ValueError, match="option"):
        env.reset(options={"new_search": True})
