"""LearningRateControl-v0: the Gymnasium contract, rewards that add up to the fall of the validation loss, crashes,
instance sets, the baseline schedules and the renderer."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401
from envs.automl.lr_control_env import (
    INSTANCE_SETS,
    LOG_LR_MAX,
    LOG_LR_MIN,
    LR_GRID,
    PROGRESS,
    Instance,
    LearningRateControlEnv,
    action_to_learning_rate,
    learning_rate_to_action,
)
from envs.automl.lr_schedules import ConstantSchedule, CosineSchedule, StepDecaySchedule
from trends.models import LayerSpec, NetworkSpec

ENV_ID = "trendgym/LearningRateControl-v0"
# Fast instances: an epoch of these takes a few milliseconds.
FAST = Instance("digits", NetworkSpec((LayerSpec("dense", 64),)), batch_size=128, seed=0)
FAST_OTHER = Instance("digits", NetworkSpec((LayerSpec("dense", 32),)), batch_size=128, seed=1)
# This one crashes (the loss goes past 100 x chance level's) in its first epoch at a learning rate of 10;
CRASHES = Instance("digits", NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64))), batch_size=64, seed=0)
# this one's validation loss explodes to about 20 nats in its first epoch at 3, without a crash.
EXPLODES = Instance("digits", NetworkSpec((LayerSpec("dense", 256),)), batch_size=128, seed=0)
CEILING = 4 * math.log(10)  # the highest loss the env tells apart, in nats


def fast_env(**kwargs) -> LearningRateControlEnv:
    return LearningRateControlEnv(instance_set=[FAST, FAST_OTHER], **kwargs)


def rate(learning_rate: float) -> np.ndarray:
    """The Box action that asks for ``learning_rate``."""
    return np.array([learning_rate_to_action(learning_rate)], dtype=np.float32)


def run_episode(env, policy, **reset_kwargs):
    """(rewards, infos, observations) of one episode of ``policy`` (``predict`` interface)."""
    obs, info = env.reset(**reset_kwargs)
    rewards, infos, observations = [], [info], [obs]
    done = False
    while not done:
        action, _ = policy.predict(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert not truncated
        rewards.append(reward)
        infos.append(info)
        observations.append(obs)
        done = terminated
    return rewards, infos, observations


@pytest.mark.parametrize("discrete", [False, True])
def test_passes_gymnasium_and_sb3_checks(discrete):
    env = fast_env(discrete=discrete)
    check_env(env, skip_render_check=True)
    sb3_check_env(env)
    if discrete:
        assert env.action_space == gym.spaces.Discrete(len(LR_GRID))
    else:
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)


def test_box_actions_map_linearly_onto_log10_of_the_learning_rate():
    assert action_to_learning_rate(-1.0) == pytest.approx(10**LOG_LR_MIN)
    assert action_to_learning_rate(0.0) == pytest.approx(10 ** ((LOG_LR_MIN + LOG_LR_MAX) / 2))  # about 0.03
    assert action_to_learning_rate(1.0) == pytest.approx(10**LOG_LR_MAX)
    assert action_to_learning_rate(-0.6) == pytest.approx(10 * action_to_learning_rate(-1.0))  # 0.4 per decade
    assert action_to_learning_rate(-7.0) == action_to_learning_rate(-1.0)  # clipped
    assert action_to_learning_rate(3.0) == action_to_learning_rate(1.0)
    for lr in (1e-4, 3e-3, 0.1, 1.0, 10.0):
        assert action_to_learning_rate(learning_rate_to_action(lr)) == pytest.approx(lr)
    assert learning_rate_to_action(1e-9) == -1.0 and learning_rate_to_action(1e3) == 1.0
    with pytest.raises(ValueError):
        learning_rate_to_action(0.0)


def test_registered_and_declares_its_metrics():
    env = gym.make(ENV_ID)
    assert env.unwrapped.metadata["metrics_namespace"] == "lr_control"
    assert env.unwrapped.metadata["episode_metrics"] == ("final_val_loss", "final_val_accuracy", "diverged")
    assert env.unwrapped.instances == INSTANCE_SETS["train"]
    env.close()


def test_deterministic_under_a_seed():
    env = LearningRateControlEnv()  # the default training set: the seed picks the instance
    schedule = CosineSchedule(env.action_space)
    first = run_episode(env, schedule, seed=3)
    second = run_episode(env, schedule, seed=3)
    assert first[1][0]["instance"] == second[1][0]["instance"]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(np.stack(first[2]), np.stack(second[2]))
    drawn = {env.reset(seed=s)[1]["instance"] for s in range(6)}
    assert len(drawn) > 3  # different seeds train different instances


def test_rewards_sum_to_the_fall_of_the_validation_loss():
    env = fast_env(epochs=6)
    rewards, infos, observations = run_episode(env, ConstantSchedule(env.action_space, 0.1), options={"instance": 0})
    assert len(rewards) == 6 and not infos[-1]["diverged"]
    assert sum(rewards) == pytest.approx(infos[0]["val_loss"] - infos[-1]["final_val_loss"], abs=1e-9)
    assert sum(rewards) > 1.0  # an MLP on digits learns most of the way in six epochs at 0.1
    assert [info["epoch"] for info in infos] == list(range(7))
    assert [o[PROGRESS] for o in observations] == pytest.approx(np.arange(7) / 6)
    assert all(info["learning_rate"] == pytest.approx(0.1, rel=1e-6) for info in infos[1:])
    assert 0.0 <= infos[-1]["test_accuracy"] <= 1.0 and infos[-1]["final_val_accuracy"] > 0.8


def test_a_huge_learning_rate_crashes_with_the_penalty():
    env = LearningRateControlEnv(instance_set=[CRASHES])
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(rate(10.0))
    assert info["diverged"] and terminated and not truncated
    assert reward == pytest.approx(-CEILING)  # worse than any training without a crash can do
    assert env.observation_space.contains(obs)
    # The episode metrics stay finite, so that TensorBoard's averages do.
    assert info["final_val_loss"] == pytest.approx(CEILING)
    assert math.isfinite(info["final_val_accuracy"]) and math.isfinite(info["test_accuracy"])
    with pytest.raises(gym.error.ResetNeeded):
        env.step(rate(0.01))

    env = LearningRateControlEnv(instance_set=[CRASHES], crash_penalty=-5.0)
    env.reset(seed=0)
    assert env.step(rate(10.0))[1] == -5.0


def test_an_exploding_loss_costs_at_most_the_ceiling():
    env = LearningRateControlEnv(instance_set=[EXPLODES], epochs=2)
    _, start = env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(rate(3.0))
    assert info["val_loss"] > CEILING and not info["diverged"] and not terminated
    assert reward == pytest.approx(start["val_loss"] - CEILING)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, _, info = env.step(rate(0.01))
    assert terminated and info["final_val_loss"] == pytest.approx(min(info["val_loss"], CEILING))


def test_a_sensible_constant_rate_beats_a_tiny_one():
    env = fast_env()
    sensible = sum(run_episode(env, ConstantSchedule(env.action_space), options={"instance": 0})[0])
    tiny = sum(run_episode(env, ConstantSchedule(env.action_space, 1e-4), options={"instance": 0})[0])
    assert sensible > tiny + 1.0
    assert abs(tiny) < 0.1  # 1e-4 barely moves the network


@pytest.mark.parametrize("discrete", [False, True])
def test_decaying_schedules_run_and_decay(discrete):
    env = fast_env(discrete=discrete)
    for schedule in (StepDecaySchedule(env.action_space), CosineSchedule(env.action_space)):
        rewards, infos, _ = run_episode(env, schedule, options={"instance": 1})
        rates = [info["learning_rate"] for info in infos[1:]]
        assert len(rates) == env.epochs and all(np.isfinite(rewards))
        assert rates == sorted(rates, reverse=True) and rates[0] > 10 * rates[-1]
        if discrete:
            assert set(rates) <= set(LR_GRID)
    step_rates = [StepDecaySchedule(env.action_space).learning_rate(p) for p in (0.0, 0.49, 0.5, 0.75, 0.9)]
    assert step_rates == pytest.approx([0.3, 0.3, 0.03, 0.003, 0.003])


def test_schedules_answer_batches_of_observations():
    env = fast_env()
    obs = np.stack([env.observation_space.sample() for _ in range(4)])
    actions, state = CosineSchedule(env.action_space).predict(obs)
    assert actions.shape == (4, 1) and state is None
    assert all(env.action_space.contains(a) for a in actions)


def test_discrete_actions_are_the_grid_and_box_actions_are_clipped():
    env = fast_env(discrete=True)
    env.reset(seed=0)
    assert env.step(2)[4]["learning_rate"] == pytest.approx(1e-3)
    env = fast_env()
    env.reset(seed=0)
    assert env.step(np.array([-3.0]))[4]["learning_rate"] == pytest.approx(10**LOG_LR_MIN)
    env.reset(seed=0)
    assert env.step(np.array([0.2], dtype=np.float32))[4]["learning_rate"] == pytest.approx(0.1, rel=1e-6)


@pytest.mark.parametrize(
    ("discrete", "action"),
    [
        (False, np.array([np.nan], dtype=np.float32)),
        (False, np.array([-1.0, -2.0], dtype=np.float32)),
        (False, "fast"),
        (True, len(LR_GRID)),
        (True, -1),
        (True, 1.5),
    ],
)
def test_invalid_actions_raise(discrete, action):
    env = fast_env(discrete=discrete)
    env.reset(seed=0)
    with pytest.raises(InvalidAction):
        env.step(action)


def test_instance_sets_are_disjoint_and_named():
    train, test = INSTANCE_SETS["train"], INSTANCE_SETS["test"]
    assert train and test and not set(train) & set(test)
    assert {i.problem for i in test} > {i.problem for i in train}  # held-out seeds, and problems never trained on
    assert len({i.name for i in train + test}) == len(train) + len(test)
    env = LearningRateControlEnv(instance_set="test")
    assert env.reset(options={"instance": 0})[1]["instance"] == test[0].name


def test_rendering_draws_the_training():
    env = fast_env(render_mode="rgb_array")
    env.reset(seed=0, options={"instance": 0})
    before = env.render()
    assert before.shape == (400, 600, 3) and before.dtype == np.uint8
    assert before.std() > 10  # not a blank frame
    for _ in range(3):
        env.step(rate(0.1))
    after = env.render()
    assert (after != before).any()
    env.close()
    env.close()

    crashed = LearningRateControlEnv(instance_set=[CRASHES], render_mode="rgb_array")
    crashed.reset(seed=0)
    crashed.step(rate(10.0))
    frame = crashed.render()
    red = (frame[..., 0] > 180) & (frame[..., 1] < 80) & (frame[..., 2] < 80)
    assert red.sum() > 50  # the crash marker
    crashed.close()


def test_human_rendering_opens_and_closes_a_window():
    env = fast_env(render_mode="human", epochs=1)
    env.metadata = {**env.metadata, "render_fps": 1000}  # no waiting between frames in a test
    env.reset(seed=0)
    env.step(rate(0.1))
    env.close()
    env.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"epochs": 2.5},
        {"instance_set": "validation"},
        {"instance_set": []},
        {"instance_set": ["digits"]},
        {"crash_penalty": 1.0},
        {"crash_penalty": math.nan},
        {"render_mode": "ascii"},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        LearningRateControlEnv(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset": "cifar10"},
        {"optimizer": "lbfgs"},
        {"batch_size": 0},
        {"seed": -1},
        {"network": "mlp"},
    ],
)
def test_bad_instances_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        Instance(**{"dataset": "digits", "network": NetworkSpec(), **kwargs})


def test_bad_reset_options_and_schedule_arguments_raise_value_error():
    env = fast_env()
    with pytest.raises(ValueError, match="instance"):
        env.reset(options={"instance": 2})
    with pytest.raises(ValueError):
        ConstantSchedule(env.action_space, 0.0)
    with pytest.raises(ValueError):
        StepDecaySchedule(env.action_space, factor=2.0)
    with pytest.raises(ValueError):
        CosineSchedule(gym.spaces.MultiDiscrete([2, 2]))
