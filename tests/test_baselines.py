"""The non-learning baselines: the heuristic skier skis the green slope cleanly, the random policy does not."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.baselines import HeuristicSkier, RandomPolicy

UNSEEN_SEEDS = range(10_000, 10_020)


def run(policy, env, seed):
    obs, _ = env.reset(seed=seed)
    total = 0.0
    while True:
        action, _ = policy.predict(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            return total, info


@pytest.mark.parametrize("env_id", ["trendgym/Ski-v0", "trendgym/SkiContinuous-v0"])
def test_heuristic_skis_the_green_slope_cleanly_on_most_courses_and_random_does_not(env_id):
    env = gym.make(env_id, slope="green")
    heuristic = [run(HeuristicSkier(env.action_space), env, s) for s in UNSEEN_SEEDS]
    random = [run(RandomPolicy(env.action_space, seed=0), env, s) for s in UNSEEN_SEEDS]
    clean_rate = np.mean([info["clean"] for _, info in heuristic])
    assert clean_rate >= 0.8
    assert np.mean([info["clean"] for _, info in random]) == 0.0
    assert np.mean([r for r, _ in heuristic]) >= gym.spec(env_id).reward_threshold
    assert np.mean([r for r, _ in random]) < 0.0


def test_policies_answer_batches_like_sb3_models():
    vec = gym.make_vec("trendgym/Ski-v0", num_envs=4, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=0)
    for policy in (HeuristicSkier(vec.single_action_space), RandomPolicy(vec.single_action_space, seed=1)):
        actions, state = policy.predict(obs)
        assert actions.shape == (4,) and state is None
        vec.step(actions)
