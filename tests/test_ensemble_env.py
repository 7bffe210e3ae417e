"""The ensemble-weighting env and RL ensemble selection, on synthetic pools built here: Gymnasium and SB3 accept the
env in both variants, its weights are an ensemble's, its rewards add up to the accuracy (or log-loss) gained, the
stop and the size budget end an episode, the masks, the test split stays out of what the agent sees, it is
deterministic and renders; and an RL agent trained for a few seconds selects far better than a random policy."""

import math

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agents.ensemble.selection import rl_selection
from envs.ensemble.weighting_env import EnsembleWeightingEnv, greedy_action
from trends.ensemble.combine import best_single
from trends.ensemble.metrics import evaluate_weights, member_accuracies
from trends.ensemble.pool import MemberPool

ENV_ID = "trendgym/EnsembleWeighting-v0"
ACCURACIES = (0.7, 0.68, 0.65, 0.6, 0.4, 0.35, 0.3, 0.3)  # four useful members, four weak ones
N_CLASSES = 5


def synthetic_split(
    rng: np.random.Generator, accuracies: tuple[float, ...], n: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels, and members that predict the label with probability ``accuracy`` (else a random other class),
    independently of each other, so that averaging them helps; probabilities half Dirichlet noise, half the
    predicted class."""
    y = rng.integers(0, n_classes, n)
    proba = []
    for a in accuracies:
        wrong = (y + rng.integers(1, n_classes, n)) % n_classes
        predicted = np.where(rng.random(n) < a, y, wrong)
        proba.append(0.5 * rng.dirichlet(np.ones(n_classes), n) + 0.5 * np.eye(n_classes)[predicted])
    return np.stack(proba).astype(np.float32), y


def synthetic_pool(accuracies=ACCURACIES, n_val=300, n_test=300, n_classes=N_CLASSES, seed=0) -> MemberPool:
    rng = np.random.default_rng(seed)
    val_proba, y_val = synthetic_split(rng, accuracies, n_val, n_classes)
    test_proba, y_test = synthetic_split(rng, accuracies, n_test, n_classes)
    names = tuple(f"member-{i}" for i in range(len(accuracies)))
    return MemberPool("synthetic", names, val_proba, test_proba, y_val, y_test)


@pytest.fixture(scope="module")
def pool():
    return synthetic_pool()


def play(env: EnsembleWeightingEnv, actions) -> tuple[list[np.ndarray], list[float], list[dict], bool, bool]:
    """Reset, then step ``actions`` until the episode ends (they must end it): observations, rewards, infos and the
    last step's terminated and truncated."""
    obs, info = env.reset()
    observations, rewards, infos = [obs], [], [info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return observations, rewards, infos, terminated, truncated
    raise AssertionError("the actions did not end the episode")


def random_members(seed: int, n: int, members: int = len(ACCURACIES)) -> list[int]:
    return np.random.default_rng(seed).integers(0, members, n).tolist()


def random_policy_mean(pool: MemberPool, episodes: int, seed: int) -> float:
    """Mean final validation accuracy of the uniformly random policy over the allowed actions."""
    env, rng, finals = EnsembleWeightingEnv(pool=pool), np.random.default_rng(seed), []
    for _ in range(episodes):
        env.reset()
        terminated = False
        while not terminated:
            _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        finals.append(info["val_accuracy"])
    return float(np.mean(finals))


# ---- API -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"start": "best", "reward": "log-loss"}, {"continuous": True}])
@pytest.mark.filterwarnings("ignore:.*not having a spec")  # the env is made directly, not by gym.make
@pytest.mark.filterwarnings("ignore:We recommend you to use a symmetric")  # weights are in [0, 1]
def test_gymnasium_and_sb3_accept_the_env(pool, kwargs):
    gym_check_env(EnsembleWeightingEnv(pool=pool, **kwargs), skip_render_check=True)
    sb3_check_env(EnsembleWeightingEnv(pool=pool, **kwargs))
    gym_check_env(EnsembleWeightingEnv(pool=pool, render_mode="rgb_array", **kwargs))


def test_the_registered_id_makes_the_env(pool):
    env = gym.make(ENV_ID, pool=pool, max_members=5)
    assert isinstance(env.unwrapped, EnsembleWeightingEnv) and env.unwrapped.max_members == 5
    assert env.spec.max_episode_steps is None  # the env ends its episodes itself (Episode End)


def test_the_named_pools_are_the_datasets_members_has():
    from envs.ensemble.weighting_env import POOLS
    from trends.ensemble.members import MEMBERS

    assert set(POOLS) == set(MEMBERS)


def test_spaces_and_the_starting_observation(pool):
    m = pool.n_members
    env = EnsembleWeightingEnv(pool=pool)
    assert env.action_space == gym.spaces.Discrete(m + 1) and env.stop_action == m
    assert env.observation_space.shape == (3 + 3 * m,)
    obs, info = env.reset(seed=0)
    chance = 1 / N_CLASSES
    assert obs[:3] == pytest.approx([chance, chance, 0.0])  # exp(-ln C) = 1/C
    np.testing.assert_array_equal(obs[3 : 3 + m], 0.0)
    np.testing.assert_allclose(obs[3 + m : 3 + 2 * m], member_accuracies(pool), atol=1e-6)
    np.testing.assert_allclose(obs[3 + 2 * m :], 1 - chance, atol=1e-6)
    assert info["val_accuracy"] == chance and info["val_log_loss"] == pytest.approx(math.log(N_CLASSES))
    assert info["size"] == 0 and "test_accuracy" not in info

    best = EnsembleWeightingEnv(pool=pool, start="best")
    obs, info = best.reset()
    assert obs[3] == 1.0 and info["size"] == 1  # member 0 has the best validation accuracy
    assert info["val_accuracy"] == pytest.approx(member_accuracies(pool)[0])
    assert obs[3 + 2 * m] == 0.0  # a member does not disagree with itself


def test_weights_sum_to_one_and_score_as_the_combination_rules_do(pool):
    env = EnsembleWeightingEnv(pool=pool, max_members=12)
    actions = random_members(1, 12)
    observations, _, infos, terminated, _ = play(env, actions)
    assert terminated
    counts = np.zeros(pool.n_members)
    for t, (obs, info) in enumerate(zip(observations[1:], infos[1:], strict=True), start=1):
        counts[actions[t - 1]] += 1
        np.testing.assert_allclose(info["weights"], counts / t)
        assert info["weights"].sum() == pytest.approx(1.0) and info["size"] == t
        np.testing.assert_allclose(obs[3 : 3 + pool.n_members], counts / t, atol=1e-6)
        expected = evaluate_weights(pool, counts)
        assert info["val_accuracy"] == pytest.approx(expected.val_accuracy)
        assert info["val_log_loss"] == pytest.approx(expected.val_log_loss)
        assert obs[2] == pytest.approx(t / 12)
    assert infos[-1]["test_accuracy"] == pytest.approx(expected.test_accuracy)
    assert infos[-1]["test_log_loss"] == pytest.approx(expected.test_log_loss)
    assert infos[-1]["distinct_members"] == np.count_nonzero(counts)


# ---- episode end -----------------------------------------------------------------------------------------------


def test_the_stop_action_ends_the_episode(pool):
    env = EnsembleWeightingEnv(pool=pool)
    _, rewards, infos, terminated, truncated = play(env, [0, 2, env.stop_action])
    assert terminated and not truncated and rewards[-1] == 0.0
    assert infos[-1]["stopped"] and infos[-1]["size"] == 2
    np.testing.assert_allclose(infos[-1]["weights"], [0.5, 0, 0.5, 0, 0, 0, 0, 0])
    assert len(env.history) == 1 and env.history[0].size == 2
    with pytest.raises(ResetNeeded):
        env.step(0)
    assert not env.action_masks().any()


def test_max_members_ends_the_episode_as_a_termination(pool):
    """The size budget is part of the task and its use is observed (index 2): termination, not truncation."""
    for start, size in (("empty", 3), ("best", 4)):
        env = EnsembleWeightingEnv(pool=pool, max_members=3, start=start)
        observations, _, infos, terminated, truncated = play(env, [1, 1, 1, 1])
        assert terminated and not truncated and len(observations) == 4
        assert not infos[-1]["stopped"] and infos[-1]["size"] == size and observations[-1][2] == 1.0


def test_an_unmasked_stop_of_the_empty_ensemble_ends_with_it(pool):
    env = EnsembleWeightingEnv(pool=pool)
    _, rewards, infos, terminated, _ = play(env, [env.stop_action])
    assert terminated and rewards == [0.0]
    assert infos[-1]["size"] == 0 and not infos[-1]["weights"].any()
    assert infos[-1]["val_accuracy"] == infos[-1]["test_accuracy"] == 1 / N_CLASSES


# ---- rewards ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["empty", "best"])
def test_accuracy_rewards_sum_to_the_accuracy_gained(pool, start):
    env = EnsembleWeightingEnv(pool=pool, start=start)
    for seed in range(5):
        actions = [*random_members(seed, seed + 2), env.stop_action]
        _, rewards, infos, _, _ = play(env, actions)
        assert sum(rewards) == pytest.approx(infos[-1]["val_accuracy"] - infos[0]["val_accuracy"])
        assert env.history[-1].episode_return == pytest.approx(sum(rewards))
        assert all(-1 <= r <= 1 for r in rewards)


def test_log_loss_rewards_sum_to_the_log_loss_lost(pool):
    env = EnsembleWeightingEnv(pool=pool, reward="log-loss")
    _, rewards, infos, _, _ = play(env, [0, *random_members(7, 6), env.stop_action])
    assert infos[0]["val_log_loss"] == pytest.approx(math.log(N_CLASSES))
    assert sum(rewards) == pytest.approx(infos[0]["val_log_loss"] - infos[-1]["val_log_loss"])
    assert rewards[0] > 0  # the best member predicts better than the uniform prior


def test_the_test_split_never_reaches_the_observation_or_the_reward(pool):
    shuffled = MemberPool(
        pool.dataset, pool.names, pool.val_proba, pool.test_proba[::-1].copy(), pool.y_val, pool.y_test
    )
    actions = random_members(3, 9)
    first, second = (play(EnsembleWeightingEnv(pool=p, max_members=9), actions) for p in (pool, shuffled))
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    assert first[2][-1]["test_accuracy"] != second[2][-1]["test_accuracy"]


# ---- masks -----------------------------------------------------------------------------------------------------


def test_masks_forbid_only_stopping_an_empty_ensemble(pool):
    m = pool.n_members
    env = EnsembleWeightingEnv(pool=pool)
    with pytest.raises(ResetNeeded):
        env.action_masks()
    env.reset()
    assert env.action_masks().tolist() == [True] * m + [False]
    env.step(4)
    assert env.action_masks().tolist() == [True] * (m + 1)
    best = EnsembleWeightingEnv(pool=pool, start="best")
    best.reset()
    assert best.action_masks().all()
    with pytest.raises(AttributeError):
        EnsembleWeightingEnv(pool=pool, continuous=True).action_masks()


# ---- continuous ------------------------------------------------------------------------------------------------


def test_continuous_weights_are_normalised_and_rewarded_by_the_ensemble(pool):
    env = EnsembleWeightingEnv(pool=pool, continuous=True)
    assert env.action_space.shape == (pool.n_members,)
    raw = np.array([0.8, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4], dtype=np.float32)
    _, rewards, infos, terminated, truncated = play(env, [raw])
    assert terminated and not truncated and len(rewards) == 1
    np.testing.assert_allclose(infos[-1]["weights"], raw / raw.sum(), rtol=1e-6)
    expected = evaluate_weights(pool, raw)
    assert rewards[0] == pytest.approx(expected.val_accuracy) == infos[-1]["val_accuracy"]
    assert infos[-1]["test_accuracy"] == pytest.approx(expected.test_accuracy) and infos[-1]["size"] == 3

    _, rewards, infos, _, _ = play(env, [np.zeros(pool.n_members, dtype=np.float32)])  # no preference: the average
    np.testing.assert_allclose(infos[-1]["weights"], 1 / pool.n_members)
    clipped = np.array([2.0, -1.0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    _, _, infos, _, _ = play(env, [clipped])
    np.testing.assert_allclose(infos[-1]["weights"], np.eye(pool.n_members)[0])

    log_loss_env = EnsembleWeightingEnv(pool=pool, continuous=True, reward="log-loss")
    _, rewards, _, _, _ = play(log_loss_env, [raw])
    assert rewards[0] == pytest.approx(-expected.val_log_loss)


# ---- the greedy heuristic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"start": "best"}, {"reward": "log-loss"}])
def test_the_greedy_heuristic_never_loses_and_beats_the_best_member(pool, kwargs):
    env = gym.make(ENV_ID, pool=pool, **kwargs)
    env.reset()
    terminated, rewards = False, []
    while not terminated:
        _, reward, terminated, _, info = env.step(greedy_action(env))
        rewards.append(reward)
    assert min(rewards) >= 0.0 and info["stopped"] and rewards[-1] == 0.0
    single = best_single(pool).scores
    if kwargs.get("reward") == "log-loss":
        assert info["val_log_loss"] < single.val_log_loss
    else:
        assert info["val_accuracy"] > single.val_accuracy + 0.1  # independent errors: averaging helps a lot
    with pytest.raises(ValueError, match="discrete"):
        greedy_action(EnsembleWeightingEnv(pool=pool, continuous=True))


# ---- determinism, invalid input --------------------------------------------------------------------------------


def test_deterministic_and_reset_with_a_seed_clears_the_history(pool):
    actions = [*random_members(11, 15), pool.n_members]
    first, second = (play(EnsembleWeightingEnv(pool=pool), actions) for _ in range(2))
    for a, b in zip(first[0], second[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    env = EnsembleWeightingEnv(pool=pool)
    play(env, actions)
    env.reset()
    assert len(env.history) == 1  # an unseeded reset keeps the search's history
    env.reset(seed=3)
    assert env.history == []


@pytest.mark.parametrize("action", [-1, 9, 1.5, "1", True, None, np.array([1, 2])])
def test_invalid_discrete_actions_raise(pool, action):
    env = EnsembleWeightingEnv(pool=pool)
    env.reset()
    with pytest.raises(InvalidAction, match=r"0\.\.8"):
        env.step(action)


@pytest.mark.parametrize("action", [np.ones(3), np.full(8, np.nan), "weights", 1.0])
def test_invalid_continuous_actions_raise(pool, action):
    env = EnsembleWeightingEnv(pool=pool, continuous=True)
    env.reset()
    with pytest.raises(InvalidAction, match="8 finite weights"):
        env.step(action)


def test_step_before_reset_and_reset_options_refused(pool):
    env = EnsembleWeightingEnv(pool=pool)
    with pytest.raises(ResetNeeded):
        env.step(0)
    with pytest.raises(ValueError, match="reset option"):
        env.reset(options={"start": "best"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pool": "cifar10"}, "pool must be one of digits, mnist1d or a MemberPool"),
        ({"reward": "f1"}, "reward must be one of accuracy, log-loss"),
        ({"start": "worst"}, "start must be one of empty, best"),
        ({"max_members": 0}, "max_members must be a whole number in 1..10000"),
        ({"max_members": 2.5}, "max_members"),
        ({"continuous": "yes"}, "continuous must be True or False"),
        ({"render_mode": "ascii"}, "render_mode must be one of"),
    ],
)
def test_bad_arguments_give_one_line_errors(pool, kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        EnsembleWeightingEnv(**{"pool": pool, **kwargs})
    assert "\n" not in str(error.value)


# ---- rendering ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("continuous", [False, True])
def test_rgb_array_frames_show_the_ensemble_growing(pool, continuous):
    env = EnsembleWeightingEnv(pool=pool, render_mode="rgb_array", continuous=continuous)
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (540, 960, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 20  # not blank
    env.step(np.full(pool.n_members, 0.5, dtype=np.float32) if continuous else 2)
    second = env.render()
    assert not np.array_equal(first, second)
    env.close()
    env.close()


def test_human_mode_opens_a_window_and_closes_twice(pool):
    env = EnsembleWeightingEnv(pool=pool, render_mode="human")
    env.reset(seed=0)
    env.step(0)
    env.close()
    env.close()


def test_render_without_a_mode_warns(pool):
    env = EnsembleWeightingEnv(pool=pool)
    env.reset()
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


# ---- RL selection ----------------------------------------------------------------------------------------------


def test_rl_selection_learns_to_select_far_better_than_a_random_policy(pool):
    """3000 steps (about 2 s): MaskablePPO's deterministic policy, not only the best episode met, must beat the
    random policy's mean final accuracy by 0.1 (measured: 0.83 against 0.60 with seed 0)."""
    result = rl_selection(pool, timesteps=3000, seed=0)
    random_mean = random_policy_mean(pool, episodes=200, seed=0)
    assert result.policy.val_accuracy > random_mean + 0.1
    assert result.val_accuracy >= result.policy.val_accuracy  # the choice includes the policy's episode
    assert result.weights.sum() == pytest.approx(1.0) and result.timesteps >= 3000 and result.episodes > 50
    expected = evaluate_weights(pool, result.weights)
    assert (result.val_accuracy, result.test_accuracy) == pytest.approx((expected.val_accuracy, expected.test_accuracy))


def test_rl_selection_is_deterministic_under_a_seed(pool):
    first, second = (rl_selection(pool, algo="ppo", timesteps=256, seed=1) for _ in range(2))
    np.testing.assert_array_equal(first.weights, second.weights)
    assert first.source == second.source and first.policy.val_accuracy == second.policy.val_accuracy


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_rl_selection_writes_a_run_folder(pool, tmp_path, algo):
    result = rl_selection(pool, algo=algo, timesteps=256, seed=0, reward="log-loss", tensorboard_log=tmp_path)
    assert result.run_dir == tmp_path / algo / "EnsembleWeighting-v0_1"
    config = yaml.safe_load((result.run_dir / "config.yml").read_text())
    assert config["algo"] == algo and config["env_kwargs"]["reward"] == "log-loss" and config["n_timesteps"] == 256
    assert config["chosen"]["val_accuracy"] == pytest.approx(result.val_accuracy)
    assert sum(config["chosen"]["weights"].values()) == pytest.approx(1.0)
    assert list(result.run_dir.glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"algo": "sac"}, "unknown algorithm 'sac'; choose one of maskableppo, ppo, dqn"),
        ({"timesteps": 0}, "timesteps must be a whole number >= 1"),
        ({"reward": "f1"}, "reward must be one of"),
    ],
)
def test_rl_selection_refuses_bad_arguments(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rl_selection(pool, **kwargs)
