"""The ski env as a Gymnasium env: API checks, determinism, spaces, info, invalid actions."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the ids)
from envs.ski.ski_env import SkiEnv

SKI_IDS = ["trendgym/Ski-v0", "trendgym/SkiContinuous-v0", "trendgym/SkiPixels-v0"]


@pytest.mark.parametrize("env_id", SKI_IDS)
@pytest.mark.parametrize("slope", ["green", "blue", "black"])
def test_passes_gymnasium_and_sb3_checkers(env_id, slope):
    env = gym.make(env_id, slope=slope)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)


def test_registered_with_time_limit_and_clean_run_threshold():
    spec = gym.spec("trendgym/Ski-v0")
    assert spec.max_episode_steps == 1000
    assert spec.reward_threshold == 160.0
    env = gym.make("envs:trendgym/Ski-v0")  # the module-prefixed form imports envs itself
    assert isinstance(env.unwrapped, SkiEnv)


def test_the_pixel_id_is_the_same_ski_seen_as_two_frames_with_its_time_limit_in_decisions():
    env = gym.make("trendgym/SkiPixels-v0", slope="blue")
    assert env.observation_space.shape == (84, 84, 6) and env.unwrapped.slope.name == "blue"
    assert env.spec.max_episode_steps == 250 and env.spec.reward_threshold == 160.0  # 250 x 0.4 s = 100 s


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        trace.append(np.append(obs, reward))
        if terminated or truncated:
            break
    return trace


@pytest.mark.parametrize("env_id", SKI_IDS)
def test_same_seed_same_rollout_and_different_seed_different_course(env_id):
    env = gym.make(env_id)
    env.action_space.seed(3)
    actions = [env.action_space.sample() for _ in range(300)]
    first, second = rollout(env, 7, actions), rollout(env, 7, actions)
    assert len(first) == len(second)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    other = rollout(env, 8, actions)
    assert not np.array_equal(first[0], other[0])


def test_course_seed_fixes_the_course_whatever_the_reset_seed():
    env = gym.make("trendgym/Ski-v0", course_seed=42)
    env.reset(seed=1)
    gates_a = env.unwrapped.course.gate_x.copy()
    env.reset(seed=2)
    assert np.array_equal(gates_a, env.unwrapped.course.gate_x)
    env.reset(seed=3, options={"course_seed": 43})
    assert not np.array_equal(gates_a, env.unwrapped.course.gate_x)
    free = gym.make("trendgym/Ski-v0")
    free.reset(seed=1)
    first = free.unwrapped.course.gate_x.copy()
    free.reset()
    assert not np.array_equal(first, free.unwrapped.course.gate_x), "unfixed courses change between episodes"


def test_slopes_differ_in_difficulty():
    env = {name: SkiEnv(slope=name) for name in ("green", "blue", "black")}
    green, blue, black = (env[n].slope for n in ("green", "blue", "black"))
    assert green.angle_deg < blue.angle_deg < black.angle_deg
    assert green.gate_width > blue.gate_width > black.gate_width
    assert green.trees_per_gate < blue.trees_per_gate < black.trees_per_gate


def test_info_reports_the_run():
    env = gym.make("trendgym/Ski-v0")
    _, info = env.reset(seed=0)
    keys = {"gates_passed", "gates_missed", "falls", "tree_hits", "time", "speed", "finished", "clean"}
    assert keys <= set(info)
    _, _, _, _, info = env.step(2)
    assert info["time"] == pytest.approx(0.1)
    assert info["speed"] > 0


@pytest.mark.parametrize("bad", [6, -1, 2.5, np.float32(1.0), np.array([1, 2]), "left", None, True, np.array(7)])
def test_invalid_discrete_action_raises_clear_error(bad):
    env = gym.make("trendgym/Ski-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"integer in 0\.\.5"):
        env.unwrapped.step(bad)


@pytest.mark.parametrize(
    "bad", [np.array([1.5, 0.0]), np.array([np.nan, 0.0]), np.array([0.0]), np.zeros((2, 2)), 0.5, "x"]
)
def test_invalid_continuous_action_raises_clear_error(bad):
    env = gym.make("trendgym/SkiContinuous-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"\[turn, brake\] in \[-1, 1\]"):
        env.unwrapped.step(bad)


def test_valid_action_forms_are_accepted():
    env = gym.make("trendgym/Ski-v0")
    env.reset(seed=0)
    for action in (2, np.int64(3), np.array(4)):
        env.step(action)
    cont = gym.make("trendgym/SkiContinuous-v0")
    cont.reset(seed=0)
    cont.step(np.array([1.0, -1.0], dtype=np.float32))
    cont.step([0.5, 0.5])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"slope": "red"}, "slope must be one of green, blue, black, got 'red'"),
        ({"obs_type": "rgb"}, "obs_type must be one of vector, pixels"),
        ({"course_seed": -1}, "course_seed must be a whole number >= 0 or None"),
        ({"render_mode": "window"}, "render_mode must be one of"),
        ({"frame_skip": 0}, "frame_skip must be a whole number in 1..1000"),
        ({"frame_skip": 2.0}, "frame_skip must be a whole number in 1..1000"),
        ({"obs_type": "pixels", "frame_stack": 0}, "frame_stack must be a whole number in 1..64"),
        ({"frame_stack": 2}, "frame_stack stacks pixel frames; it needs obs_type='pixels'"),
        ({"trees_per_gate": -1.0}, "trees_per_gate must be a finite number in [0, 10]"),
        ({"trees_per_gate": "many"}, "trees_per_gate must be a finite number in [0, 10]"),
    ],
)
def test_bad_constructor_arguments_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SkiEnv(**kwargs)


def test_a_frame_skip_step_is_that_many_steps_with_the_rewards_added_up():
    single, skipping = SkiEnv(), SkiEnv(frame_skip=4)
    single.reset(seed=3)
    obs, _ = skipping.reset(seed=3)
    for action in [2, 0, 0, 5, 4, 2]:
        rewards = [single.step(action)[1] for _ in range(4)]
        obs, reward, *_ = skipping.step(action)
        np.testing.assert_array_equal(obs, single._observation())
        assert reward == pytest.approx(sum(rewards))
    check_env(SkiEnv(frame_skip=4), skip_render_check=True)


def test_a_frame_stack_shows_the_last_frames_newest_last_and_the_first_one_everywhere_at_reset():
    single, stacked = SkiEnv(obs_type="pixels"), SkiEnv(obs_type="pixels", frame_stack=3)
    assert stacked.observation_space.shape == (84, 84, 9)
    frames = [single.reset(seed=5)[0]]
    obs, _ = stacked.reset(seed=5)
    np.testing.assert_array_equal(obs, np.concatenate(frames * 3, axis=-1))
    for action in [2, 0, 0, 4]:
        frames.append(single.step(action)[0])
        obs, *_ = stacked.step(action)
        last_three = ([frames[0]] * 2 + frames)[-3:]
        np.testing.assert_array_equal(obs, np.concatenate(last_three, axis=-1))
    obs, _ = stacked.reset(seed=6)  # a new episode forgets the old frames
    np.testing.assert_array_equal(obs[..., :3], obs[..., 6:])
    check_env(SkiEnv(obs_type="pixels", frame_skip=4, frame_stack=2), skip_render_check=True)
    sb3_check_env(SkiEnv(obs_type="pixels", frame_skip=4, frame_stack=2), warn=True)


def test_a_frame_skip_episode_still_lasts_100_seconds_at_most():
    env = gym.make("trendgym/Ski-v0", frame_skip=4)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(5)  # brake: the skier never reaches the finish
        steps += 1
        assert not terminated
    assert steps == 250 and info["time"] == pytest.approx(100.0)


def test_step_before_reset_is_refused():
    with pytest.raises(gym.error.ResetNeeded):
        SkiEnv().step(2)


def test_action_masks_leave_only_glide_while_the_skier_lies_in_the_snow():
    env = gym.make("trendgym/Ski-v0", course_seed=3)
    env.reset(seed=0)
    assert env.unwrapped.action_masks().tolist() == [True] * 6
    env.unwrapped._state.down = 1.0  # as after a fall
    assert env.unwrapped.action_masks().tolist() == [False, False, True, False, False, False]
    with pytest.raises(gym.error.Error, match="Discrete"):
        gym.make("trendgym/SkiContinuous-v0").unwrapped.action_masks()


def test_trees_per_gate_changes_only_the_number_of_trees_and_the_default_is_the_slope():
    def course(**kwargs):
        env = gym.make("trendgym/Ski-v0", **kwargs)
        env.reset(seed=5)
        return env.unwrapped.course

    plain, dense = course(), course(trees_per_gate=2.0)
    assert len(plain.tree_x) == 4 and len(dense.tree_x) == 16  # green: 0.5 per gate, 8 gates
    assert np.array_equal(course(trees_per_gate=0.5).tree_x, plain.tree_x)  # the slope's own density: the same
    assert np.array_equal(dense.gate_x, plain.gate_x)  # the gates come first in a course's draw: the same gates
    assert len(course(slope="black", trees_per_gate=10.0).tree_x) == 38  # at most one tree per 8 m slot
    assert len(course(trees_per_gate=0).tree_x) == 0
    vector = gym.make_vec("trendgym/Ski-v0", num_envs=2, vectorization_mode="vector_entry_point", trees_per_gate=2.0)
    single = gym.make("trendgym/Ski-v0", trees_per_gate=2.0)
    assert np.allclose(vector.reset(seed=9)[0][1], single.reset(seed=10)[0])
