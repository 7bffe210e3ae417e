"""The quantization env: Gymnasium and SB3 accept it, every episode meets the size budget whatever the actions,
fixed layers stay at 8 bits, the reward is HAQ's formula, 8 bits keep the accuracy and 2 bits lose it, the same
actions give the same episode, and the renderer draws."""

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.compression.quantization_env import QuantizationEnv
from trends.compression.quantize import fake_quantize, quantized_size_bytes
from trends.compression.zoo import ZOO

ENV_ID = "trendgym/Quantization-v0"
MODELS = tuple(ZOO)


@pytest.fixture(scope="module")
def make(cache_dir):
    def make(**kwargs) -> QuantizationEnv:
        return QuantizationEnv(cache_dir=cache_dir, **kwargs)

    return make


def run_episode(env: QuantizationEnv, actions) -> tuple[list[np.ndarray], float, dict]:
    """Step ``actions`` (an iterable, cycled if short) until the episode ends."""
    observations = [env.reset()[0]]
    for action in itertools.cycle(actions):
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        assert not truncated
        if terminated:
            return observations, float(reward), info
        assert reward == 0.0
    raise AssertionError("unreachable")


@pytest.mark.filterwarnings("ignore:.*not having a spec")  # the env is made directly, not by gym.make
@pytest.mark.filterwarnings("ignore:We recommend you to use a symmetric")  # [0, 1] is HAQ's action range
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("continuous", [False, True])
def test_gymnasium_and_sb3_accept_the_env(make, model, continuous):
    gym_check_env(make(model=model, continuous=continuous), skip_render_check=True)
    sb3_check_env(make(model=model, continuous=continuous))
    gym_check_env(make(model=model, render_mode="rgb_array"))


def test_gym_make_builds_the_registered_env(cache_dir):
    import envs  # noqa: F401  registers the trendgym ids

    if ENV_ID not in gym.registry:
        pytest.skip(f"{ENV_ID} is not registered yet")
    env = gym.make(ENV_ID, cache_dir=cache_dir)
    assert isinstance(env.unwrapped, QuantizationEnv)
    env.reset(seed=0)
    env.close()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("budget", [0.05, 0.1, 0.2])
def test_every_episode_meets_the_budget(make, model, budget):
    env = make(model=model, size_budget=budget)
    rng = np.random.default_rng(0)
    random_actions = [rng.integers(0, 8, size=len(env.free)).tolist() for _ in range(10)]
    for actions in [[7], [0], *random_actions]:
        _, _, info = run_episode(env, actions)
        assert info["size_bytes"] <= budget * env.float_bytes
        assert info["size_ratio"] == pytest.approx(info["size_bytes"] / env.float_bytes)
        assert info["size_bytes"] == quantized_size_bytes(env.network, info["bits"])  # the zoo's own count
        assert all(1 <= b <= 8 for b in info["bits"])
        assert all(b <= r for b, r in zip(info["bits"], info["requested_bits"], strict=True))  # only lowered


def test_a_policy_that_fits_is_kept_and_one_that_does_not_loses_bits_from_the_last_layer(make):
    env = make(model="digits-mlp", size_budget=0.1)  # 3.2 bits a weight on average
    assert run_episode(env, [2])[2]["bits"] == [3, 3, 3]  # fits: unchanged
    assert run_episode(env, [7])[2]["bits"] == [3, 3, 3]  # 8 bits everywhere: lowered round-robin from the end
    assert run_episode(env, [7, 0, 0])[2]["bits"] == [5, 1, 1]  # the 1-bit layers cannot go lower: the first pays


def test_fix_first_last_keeps_them_at_8_bits_and_skips_them(make):
    env = make(model="mnist1d-cnn", fix_first_last=True, size_budget=0.1)
    assert env.free == [1, 2, 3, 4]
    for actions in ([0], [7], [3, 5, 1, 7]):
        observations, _, info = run_episode(env, actions)
        assert len(observations) == 1 + 4
        assert info["bits"][0] == info["bits"][-1] == 8
        assert info["size_bytes"] <= 0.1 * env.float_bytes
    with pytest.raises(ValueError, match="fix_first_last"):
        make(model="digits-mlp", fix_first_last=True, size_budget=0.1)  # its first layer alone is over


def test_the_reward_is_lambda_times_the_accuracy_change(make):
    env = make(model="mnist1d-cnn", size_budget=0.25, reward_scale=0.5)
    _, reward, info = run_episode(env, [4, 2, 6, 1, 3, 5])
    assert info["bits"] == [5, 3, 7, 2, 4, 6]
    assert reward == pytest.approx(0.5 * (info["val_accuracy"] - env.original_val_accuracy))
    quantized = fake_quantize(env.network, info["bits"])
    with torch.no_grad():
        predictions = quantized(torch.tensor(env.dataset.x_val)).argmax(1).numpy()
    assert info["val_accuracy"] == pytest.approx(np.mean(predictions == env.dataset.y_val))


@pytest.mark.parametrize("model", MODELS)
def test_eight_bits_keep_the_accuracy_and_two_bits_lose_it(make, model):
    env = make(model=model, size_budget=0.25)
    _, reward8, info8 = run_episode(env, [7])
    _, reward2, info2 = run_episode(env, [1])
    assert abs(info8["val_accuracy"] - env.original_val_accuracy) <= 0.01
    assert abs(reward8) <= 0.001
    assert info2["val_accuracy"] < env.original_val_accuracy - 0.03
    assert reward2 < reward8


def test_the_same_actions_give_the_same_episode(make):
    first, second = make(), make()
    rng = np.random.default_rng(1)
    for _ in range(3):
        actions = rng.integers(0, 8, size=len(first.free)).tolist()
        a, b = run_episode(first, actions), run_episode(second, actions)
        assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
        assert a[1] == b[1] and a[2] == b[2]


def test_the_observation_describes_the_layer_and_the_budget(make):
    env = make(model="mnist1d-cnn", size_budget=0.1)
    obs, _ = env.reset(seed=0)
    assert obs[0] == 0.0 and obs[1] == 1.0 and obs[8] == 1.0 and obs[9] == 0.0  # first layer, a convolution
    obs, *_ = env.step(1)  # 2 bits for conv1
    assert obs[0] == pytest.approx(0.2) and obs[8] == pytest.approx(1 / 7)
    assert obs[9] == pytest.approx(math.ceil(env.layers[0].weights * 2 / 8) / env.budget_bytes, rel=1e-3)
    assert np.all((obs >= 0) & (obs <= 1))


def test_continuous_actions_map_to_eight_equal_intervals(make):
    env = make(model="digits-mlp", size_budget=0.25, continuous=True)
    info = run_episode(env, [np.array([0.0], np.float32), np.array([0.5], np.float32), np.array([1.0], np.float32)])[2]
    assert info["requested_bits"] == [1, 5, 8]


def test_the_search_history_persists_until_a_seeded_reset(make):
    env = make(model="digits-mlp")
    run_episode(env, [3])
    run_episode(env, [2])
    assert len(env.history) == 2
    env.reset(seed=0)
    assert env.history == []


def test_invalid_input_raises_with_a_hint(make):
    env = make(model="digits-mlp")
    with pytest.raises(ResetNeeded):
        env.step(0)
    env.reset()
    for action in (8, -1, 2.0, True, np.array([1])):
        with pytest.raises(InvalidAction, match=r"0\.\.7"):
            env.step(action)
    continuous = make(model="digits-mlp", continuous=True)
    continuous.reset()
    for action in (np.array([1.5]), np.array([np.nan]), 0.5, np.array([0.1, 0.2])):
        with pytest.raises(InvalidAction, match=r"\[0, 1\]"):
            continuous.step(action)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"budget": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "resnet50"}, "digits-mlp"),
        ({"size_budget": 0.0}, "size_budget"),
        ({"size_budget": 1.5}, "size_budget"),
        ({"size_budget": "big"}, "size_budget"),
        ({"size_budget": 0.01}, "below"),  # under 1 bit a weight
        ({"reward_scale": -0.1}, "reward_scale"),
        ({"render_mode": "ascii"}, "render_mode"),
    ],
)
def test_bad_arguments_raise_a_one_line_value_error(make, kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        make(**kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("model", MODELS)
def test_rendering_draws_the_layers_the_size_and_the_history(make, model):
    env = make(model=model, render_mode="rgb_array")
    env.reset(seed=0)
    start = env.render()
    assert start.shape == (540, 960, 3) and start.dtype == np.uint8
    assert start.std() > 10
    run_episode(env, [2])
    end = env.render()
    assert not np.array_equal(start, end)
    env.close()
    env.close()  # twice is fine


def test_human_rendering_opens_a_window(make):
    env = make(model="digits-mlp", render_mode="human")
    run_episode(env, [5])
    assert env.render() is None
    env.close()
