"""The native vector env runs the single env's physics: same seeds, same trajectories, step by step."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401
from envs.ski.vector_env import SkiVectorEnv


@pytest.mark.parametrize("env_id", ["trendgym/Ski-v0", "trendgym/SkiContinuous-v0"])
def test_vector_env_agrees_with_single_envs_step_by_step_through_autoresets(env_id):
    n, seed = 6, 11
    vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", max_episode_steps=120)
    singles = [gym.make(env_id, max_episode_steps=120) for _ in range(n)]
    obs, _ = vec.reset(seed=seed)
    single_obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(singles)])
    np.testing.assert_array_equal(obs, single_obs)

    vec.action_space.seed(0)
    needs_reset = np.zeros(n, dtype=bool)
    episodes_ended = 0
    for _ in range(300):
        actions = vec.action_space.sample()
        obs, rewards, terminated, truncated, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if needs_reset[i]:  # next-step autoreset: this step only resets skier i
                expected, _ = env.reset()
                np.testing.assert_array_equal(obs[i], expected)
                assert rewards[i] == 0 and not terminated[i] and not truncated[i]
                continue
            expected, reward, term, trunc, _ = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], expected)
            assert rewards[i] == np.float32(reward)
            assert (terminated[i], truncated[i]) == (term, trunc)
        needs_reset = terminated | truncated
        episodes_ended += needs_reset.sum()
    assert episodes_ended >= n, "the comparison went through autoresets"


def test_vector_info_holds_each_skiers_counters():
    vec = gym.make_vec("trendgym/Ski-v0", num_envs=3, vectorization_mode="vector_entry_point")
    _, info = vec.reset(seed=0)
    for _ in range(5):
        _, _, _, _, info = vec.step(np.array([2, 2, 2]))
    for key in ("gates_passed", "gates_missed", "falls", "tree_hits", "time", "speed", "finished", "clean"):
        assert info[key].shape == (3,) and info[f"_{key}"].all()
    np.testing.assert_allclose(info["time"], 0.5)


def test_vector_env_passes_the_gymnasium_checks_of_its_single_env_and_has_batched_spaces():
    vec = SkiVectorEnv(num_envs=4)
    assert vec.observation_space.shape == (4, 19)
    assert vec.action_space.shape == (4,)
    obs, _ = vec.reset(seed=0)
    assert vec.observation_space.contains(obs)
    check_env(gym.make("trendgym/Ski-v0").unwrapped, skip_render_check=True)


@pytest.mark.parametrize(
    "bad", [np.array([0, 1, 6]), np.array([0, 1]), np.array([0.0, 1.0, 2.0]), np.array([-1, 0, 0])]
)
def test_vector_env_refuses_invalid_actions(bad):
    vec = SkiVectorEnv(num_envs=3)
    vec.reset(seed=0)
    with pytest.raises(InvalidAction):
        vec.step(bad)


def test_vector_env_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="pixels"):
        SkiVectorEnv(num_envs=2, obs_type="pixels")
    with pytest.raises(ValueError, match="slope must be one of"):
        SkiVectorEnv(num_envs=2, slope="red")
    with pytest.raises(ValueError, match="2 seeds for 3 envs"):
        SkiVectorEnv(num_envs=3).reset(seed=[1, 2])


@pytest.mark.parametrize("course_seed", [None, 4])
def test_reset_rows_starts_those_skiers_next_episodes_as_single_envs_reset_and_leaves_the_rest(course_seed):
    n, seed = 4, 21
    vec = SkiVectorEnv(num_envs=n, course_seed=course_seed)
    singles = [gym.make("trendgym/Ski-v0", course_seed=course_seed) for _ in range(n)]
    vec.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(0)
    for t in range(60):
        actions = rng.integers(0, 6, n)
        obs, _, _, _, info = vec.step(actions)
        expected = np.stack([env.step(a)[0] for env, a in zip(singles, actions, strict=True)])
        np.testing.assert_array_equal(obs, expected)
        if t % 20 == 19:  # the same skiers again and again: each needs a fresh episode drawn every time
            time_before = info["time"].copy()
            obs = vec.reset_rows(np.array([1, 3]))
            expected[[1, 3]] = [singles[1].reset()[0], singles[3].reset()[0]]
            np.testing.assert_array_equal(obs, expected)
            np.testing.assert_array_equal(info["time"], time_before)  # the info already returned stays as it was


def test_reset_without_a_seed_continues_each_skiers_generator_and_a_list_reseeds_only_some():
    n = 3
    vec = SkiVectorEnv(num_envs=n)
    singles = [gym.make("trendgym/Ski-v0") for _ in range(n)]
    vec.reset(seed=8)
    for i, env in enumerate(singles):
        env.reset(seed=8 + i)
    obs, _ = vec.reset()
    np.testing.assert_array_equal(obs, np.stack([env.reset()[0] for env in singles]))
    obs, _ = vec.reset(seed=[None, 50, None])
    expected = [singles[0].reset()[0], singles[1].reset(seed=50)[0], singles[2].reset()[0]]
    np.testing.assert_array_equal(obs, np.stack(expected))


def test_info_arrays_shared_between_steps_are_read_only():
    vec = SkiVectorEnv(num_envs=2)
    _, info = vec.reset(seed=0)
    with pytest.raises(ValueError):
        info["_speed"][0] = False
    _, _, _, _, info = vec.step(np.array([2, 2]))
    assert info["clean"].tolist() == [False, False] and info["_clean"].all()


def test_vector_action_masks_match_the_single_envs():
    n = 8
    vec = SkiVectorEnv(num_envs=n, slope="black")
    singles = [gym.make("trendgym/Ski-v0", slope="black") for _ in range(n)]
    vec.reset(seed=4)
    for i, env in enumerate(singles):
        env.reset(seed=4 + i)
    rng, seen_down = np.random.default_rng(1), False
    for _ in range(200):
        actions = rng.integers(0, 6, n)
        vec.step(actions)
        for env, action in zip(singles, actions, strict=True):
            env.step(action)  # no episode ends within 200 steps of random skiing on black
        masks = vec.action_masks()
        np.testing.assert_array_equal(masks, np.stack([env.unwrapped.action_masks() for env in singles]))
        seen_down |= not masks.all()
    assert seen_down, "some skier fell or crashed, so some masks held glide only"
