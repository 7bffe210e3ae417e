"""The feature-engineering env: Gymnasium and SB3 accept it, a seed fixes a trajectory, masks forbid exactly the
actions that cannot apply, rewards are score differences minus the feature cost, the synthetic dataset's known
features are one step each and worth it, no observation or score is ever non-finite, and the renderer draws."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from envs.features.feature_env import FeatureEngineeringEnv, greedy_action
from trends.features import FEATURE_DATASETS, KNOWN_FEATURES, FeatureScorer, load_tabular
from trends.features.transforms import UNARY

ENV_ID = "trendgym/FeatureEngineering-v0"


def masked_choice(env: gym.Env, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))


def test_gymnasium_and_sb3_accept_the_env():
    gym_check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(ENV_ID, max_features=8, budget=3).unwrapped)
    gym_check_env(gym.make(ENV_ID, render_mode="rgb_array", budget=3).unwrapped)


def test_spaces_and_start():
    env = gym.make(ENV_ID).unwrapped
    s = 16
    assert env.action_space.n == 1 + 9 * s + 2 * s * (s - 1) // 2 + 3 * s * (s - 1) + 2 == 1107
    assert env.observation_space.shape == (7 * s + 5,)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["expressions"] == ("x0", "x1", "x2", "x3", "x4", "x5") and info["n_features"] == 6
    assert info["score"] == info["raw_score"] == info["best_score"] < 0.55
    np.testing.assert_array_equal(obs[: 7 * 6 : 7], 1.0)  # the six raw slots are active
    np.testing.assert_array_equal(obs[7 * 6 : 7 * s], 0.0)  # the other ten are empty
    assert obs[-1] == 1.0  # the whole budget left
    assert env.metadata["metrics_namespace"] == "features"


def test_a_dataset_wider_than_the_slots_starts_with_its_most_informative_half():
    env = FeatureEngineeringEnv(dataset="breast_cancer")
    _, info = env.reset(seed=0)
    assert info["n_features"] == 8 and len(env.slots) == 16
    data = load_tabular("breast_cancer")
    assert [data.feature_names.index(e) for e in info["expressions"]] == sorted(
        data.feature_names.index(e) for e in info["expressions"]
    )
    assert FeatureEngineeringEnv(dataset="wine").start == load_tabular("wine").feature_names


def test_same_seed_same_trajectory():
    def rollout() -> tuple[list, list]:
        env = gym.make(ENV_ID)
        rng = np.random.default_rng(7)
        observations, rewards = [env.reset(seed=3)[0]], []
        for action in rng.integers(0, env.action_space.n, 24).tolist():  # masked actions included
            obs, reward, terminated, _, _ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
            if terminated:
                observations.append(env.reset()[0])
        return observations, rewards

    (obs_a, rew_a), (obs_b, rew_b) = rollout(), rollout()
    np.testing.assert_array_equal(np.array(obs_a), np.array(obs_b))
    assert rew_a == rew_b


# ---- masks and actions ------------------------------------------------------------------------------------------


def test_masks_empty_slots_duplicates_and_a_full_set():
    env = FeatureEngineeringEnv(max_features=8)
    env.reset(seed=0)
    mask = env.action_masks()
    assert mask[0]  # stop
    assert mask[env.action_index("log", 5)] and not mask[env.action_index("log", 6)]  # slot 6 is empty
    assert not mask[env.action_index("mul", 0, 6)] and not mask[env.action_index("div", 7, 1)]
    assert mask[env.action_index("drop_weakest")] and mask[env.action_index("keep_top_half")]
    env.step(env.action_index("mul", 1, 0))
    assert env.slots[6] == "mul(x0,x1)"
    mask = env.action_masks()
    assert not mask[env.action_index("mul", 0, 1)]  # a duplicate, in either order
    assert mask[env.action_index("div", 0, 1)] and mask[env.action_index("div", 1, 0)]
    assert mask[env.action_index("log", 6)]  # the new feature can be transformed
    env.step(env.action_index("log", 6))  # the 8th feature: the set is full
    mask = env.action_masks()
    adding = [k for k, a in enumerate(env.actions) if a.kind in ("unary", "pair")]
    assert not mask[adding].any()
    assert mask[0] and mask[env.action_index("drop_weakest")]
    env.step(env.action_index("drop_weakest"))
    assert len(env.expressions) == 7 and env.action_masks()[adding].any()


def test_the_depth_limit_is_masked():
    env = FeatureEngineeringEnv(budget=8)
    env.reset(seed=0)
    env.step(env.action_index("log", 0))  # slot 6: depth 1
    env.step(env.action_index("sqrt", 6))  # slot 7: depth 2
    env.step(env.action_index("square", 7))  # slot 8: depth 3
    mask = env.action_masks()
    assert env.slots[8] == "square(sqrt(log(x0)))"
    assert not mask[env.action_index("log", 8)] and not mask[env.action_index("add", 1, 8)]
    assert mask[env.action_index("log", 7)] and mask[env.action_index("add", 1, 7)]


def test_a_random_masked_agent_takes_only_allowed_actions():
    env = FeatureEngineeringEnv(max_features=10, budget=6)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(30):
        mask = env.action_masks()
        action = masked_choice(env, rng)
        before = set(env.expressions)
        _, _, terminated, _, info = env.step(action)
        assert not info["invalid_action"]
        kind = env.actions[action].kind
        if kind in ("unary", "pair"):
            assert len(env.expressions) == len(before) + 1 and set(env.expressions) > before
        if terminated:
            assert not env.action_masks().any()
            env.reset()
        else:
            assert mask[0]


def test_masked_actions_map_to_allowed_ones():
    env = FeatureEngineeringEnv()
    env.reset(seed=0)
    action = env.action_index("log", 9)  # slot 9 is empty
    allowed = np.flatnonzero(env.action_masks())
    expected = env.describe_action(int(allowed[action % len(allowed)]))
    _, _, _, _, info = env.step(action)
    assert info["invalid_action"] and info["action"] == expected
    _, _, _, _, info = env.step(np.int64(env.action_index("mul", 0, 1)))
    assert not info["invalid_action"] and "mul(x0,x1)" in env.expressions


@pytest.mark.parametrize("action", [-1, 1107, 1.0, True, "1", None, np.array([1, 2]), np.array(0.5)])
def test_actions_outside_the_action_space_raise(action):
    env = FeatureEngineeringEnv()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=r"integer in 0\.\.1106"):
        env.step(action)


def test_stepping_needs_a_reset():
    env = FeatureEngineeringEnv()
    with pytest.raises(ResetNeeded):
        env.step(0)
    with pytest.raises(ResetNeeded):
        env.action_masks()
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["stopped"]
    with pytest.raises(ResetNeeded):
        env.step(0)


# ---- rewards ----------------------------------------------------------------------------------------------------


def test_rewards_are_score_gains_minus_the_feature_cost():
    cost = 0.01
    env = FeatureEngineeringEnv(max_features=9, budget=6, feature_cost=cost)
    scorer = FeatureScorer(load_tabular("synthetic"))  # an independent scorer
    rng = np.random.default_rng(2)
    for episode in range(4):
        _, info = env.reset(seed=episode)
        previous, n_before, total = info["score"], info["n_features"], 0.0
        terminated = False
        while not terminated:
            _, reward, terminated, truncated, info = env.step(masked_choice(env, rng))
            assert not truncated
            score = scorer.score(info["expressions"])
            assert info["score"] == score
            assert reward == pytest.approx(score - previous - cost * (info["n_features"] - n_before), abs=1e-12)
            previous, n_before, total = score, info["n_features"], total + reward
        assert total == pytest.approx(info["score"] - info["raw_score"] - cost * (info["n_features"] - 6))
        assert set(env.metadata["episode_metrics"]) <= set(info)
        assert info["test_score"] == scorer.test_score(info["expressions"])
        assert env.history[-1].episode_return == pytest.approx(total)


def test_the_known_synthetic_features_are_two_steps_worth_taking():
    env = gym.make(ENV_ID)
    _, info = env.reset(seed=0)
    u = env.unwrapped
    _, r1, _, _, _ = env.step(u.action_index("mul", 0, 1))
    _, r2, _, _, info = env.step(u.action_index("div", 2, 3))
    assert info["raw_score"] < 0.55 and info["score"] > 0.93
    assert r1 > 0.3 and r2 > 0.03
    assert set(KNOWN_FEATURES["synthetic"]) <= set(info["expressions"])
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["best_expressions"] == info["expressions"] and info["test_score"] > 0.93


def test_the_greedy_baseline_finds_the_known_features():
    env = FeatureEngineeringEnv(budget=3)
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(greedy_action(env))
    assert set(KNOWN_FEATURES["synthetic"]) <= set(info["expressions"]) and info["score"] > 0.93


@pytest.mark.parametrize("dataset", FEATURE_DATASETS)
def test_a_random_masked_agent_never_sees_a_non_finite_number(dataset):
    env = FeatureEngineeringEnv(dataset=dataset, budget=5, max_features=12)
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        terminated = False
        while not terminated:
            assert np.isfinite(obs).all() and env.observation_space.contains(obs)
            mask = env.action_masks()
            mask[0] = False  # no early stop: more transformations
            action = int(rng.choice(np.flatnonzero(mask))) if mask.any() else 0
            obs, reward, terminated, _, info = env.step(action)
            assert math.isfinite(reward) and math.isfinite(info["score"]) and -1.0 <= info["score"] <= 1.0
            assert np.isfinite(env.scorer.matrix(info["expressions"])).all()
        assert np.isfinite(obs).all() and math.isfinite(info["test_score"])


def test_the_gbm_model_plays_too():
    env = FeatureEngineeringEnv(model="gbm", budget=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_index("mul", 0, 1))
    assert reward > 0.1 and info["score"] > 0.85


# ---- arguments and rendering -------------------------------------------------------------------------------------


def test_bad_arguments_raise_one_line_errors():
    cases = [
        ({"dataset": "iris"}, "dataset must be"),
        ({"model": "svm"}, "model must be"),
        ({"max_features": 1}, "max_features"),
        ({"budget": 0}, "budget"),
        ({"budget": 2.5}, "budget"),
        ({"folds": 1}, "folds"),
        ({"feature_cost": -0.1}, "feature_cost"),
        ({"feature_cost": math.inf}, "feature_cost"),
        ({"feature_cost": "cheap"}, "feature_cost"),
        ({"render_mode": "ascii"}, "render_mode"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            FeatureEngineeringEnv(**kwargs)
        assert len(str(error.value).splitlines()) == 1
    with pytest.raises(ValueError, match="reset option"):
        FeatureEngineeringEnv().reset(options={"start": "empty"})
    with pytest.raises(ValueError, match="no action applies"):
        FeatureEngineeringEnv().action_index("mul", 0, 0)


def test_rgb_array_frames_show_the_features_as_they_grow():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (540, 960, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 20
    env.step(env.unwrapped.action_index("mul", 0, 1))
    second = env.render()
    assert not np.array_equal(first, second)
    env.step(env.unwrapped.action_index(UNARY[0], 6))
    assert not np.array_equal(second, env.render())
    env.close()
    env.close()


def test_human_mode_and_render_without_a_mode():
    env = gym.make(ENV_ID, render_mode="human", budget=2)
    env.reset(seed=0)
    env.step(1)
    env.close()
    env.close()
    plain = FeatureEngineeringEnv()
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert plain.render() is None


def test_scores_persist_in_the_envs_storage(tmp_path):
    storage = tmp_path / "features.db"
    env = gym.make("envs:trendgym/FeatureEngineering-v0", storage=storage, budget=2)
    env.reset(seed=0)
    env.step(env.unwrapped.action_index("mul", 0, 1))
    again = FeatureEngineeringEnv(storage=storage, budget=2)
    again.reset(seed=0)
    again.step(again.action_index("mul", 0, 1))
    assert again.scorer.misses == 0 and again.scorer.hits == 2  # the raw set and the grown one, both stored
