"""GAIL and behaviour cloning (agents.imitation): the agent's reward is the discriminator's, the discriminator learns,
the reward swap keeps the env's reward for logging, BC imitates, and a tiny GAIL run goes end to end."""

import dataclasses

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from agents.baselines import HeuristicSkier, RandomPolicy
from agents.evaluation import evaluate, make_env
from agents.imitation import (
    Demonstrations,
    GailConfig,
    GailRewardVecEnv,
    behaviour_cloning,
    collect_demonstrations,
    gail_reward,
    make_discriminator,
    train_discriminator,
    train_gail,
)
from agents.seeds import test_seeds as unseen_seeds  # not test_*: pytest would collect it
from agents.vec_env import make_vec_env

ENV_ID = "trendgym/Ski-v0"
GREEN = {"slope": "green"}
# A GAIL run of two PPO rollouts of 4 envs x 64 steps: seconds, enough to see every part run.
TINY_PPO = ("n_steps:64", "batch_size:64", "n_epochs:1")


@pytest.fixture(scope="module")
def spaces():
    env = make_env(ENV_ID, GREEN)
    yield env.observation_space, env.action_space
    env.close()


@pytest.fixture(scope="module")
def expert_demos(spaces):
    return collect_demonstrations(HeuristicSkier(spaces[1]), ENV_ID, GREEN, n_episodes=2, seed=0)


@pytest.fixture(scope="module")
def random_pairs(spaces):
    random_policy = RandomPolicy(spaces[1], seed=0, observation_space=spaces[0])
    return collect_demonstrations(random_policy, ENV_ID, GREEN, n_episodes=1, seed=1)


def test_demonstrations_are_the_experts_episodes(expert_demos, spaces):
    assert expert_demos.observations.shape == (sum(expert_demos.episode_lengths), *spaces[0].shape)
    assert expert_demos.actions.shape == (len(expert_demos.observations),)
    assert expert_demos.n_episodes == 2 and min(expert_demos.episode_returns) > 160  # clean green runs
    first = expert_demos.first(1)
    assert len(first.observations) == expert_demos.episode_lengths[0]
    np.testing.assert_array_equal(first.actions, expert_demos.actions[: len(first.actions)])


def test_demonstrations_survive_a_save_and_load(expert_demos, tmp_path):
    path = tmp_path / "demos.npz"
    expert_demos.save(path)
    loaded = Demonstrations.load(path)
    np.testing.assert_array_equal(loaded.observations, expert_demos.observations)
    np.testing.assert_array_equal(loaded.actions, expert_demos.actions)
    assert (loaded.episode_returns, loaded.episode_lengths) == (
        expert_demos.episode_returns,
        expert_demos.episode_lengths,
    )
    assert (loaded.env_id, loaded.env_kwargs) == (ENV_ID, GREEN)


@pytest.mark.parametrize("form", ["logit", "gail"])
def test_the_reward_is_the_discriminators_formula_and_monotone_in_d(form, expert_demos, spaces):
    discriminator = make_discriminator(expert_demos, *spaces, reward_form=form)
    obs, actions = expert_demos.observations[:200], expert_demos.actions[:200]
    d = discriminator.probability(obs, actions).astype(np.float64)
    expected = np.log(d) - np.log(1 - d) if form == "logit" else -np.log(1 - d)
    np.testing.assert_allclose(discriminator.reward(obs, actions), expected, rtol=1e-4, atol=1e-5)
    logits = torch.linspace(-8, 8, 101)
    assert torch.all(torch.diff(gail_reward(logits, form)) > 0)  # more expert-like, more reward


def test_the_discriminator_learns_to_tell_expert_from_random_pairs(expert_demos, random_pairs, spaces):
    torch.manual_seed(0)
    discriminator = make_discriminator(expert_demos, *spaces)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=3e-3)
    expert = (expert_demos.observations, expert_demos.actions)
    agent = (random_pairs.observations, random_pairs.actions)
    stats = train_discriminator(discriminator, optimizer, expert, agent, 4, 128, torch.Generator().manual_seed(0))
    d_expert = discriminator.probability(*expert)
    d_random = discriminator.probability(*agent)
    accuracy = ((d_expert > 0.5).mean() + (d_random < 0.5).mean()) / 2
    assert accuracy > 0.9, accuracy
    assert stats.loss < 2 * np.log(2)  # below the loss of a discriminator that cannot tell them apart


def test_the_reward_wrapper_swaps_the_reward_and_keeps_the_true_one_in_info(spaces):
    def reward_fn(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return obs[:, 0] + 10.0 * actions  # depends on the pair that earned it

    wrapped = GailRewardVecEnv(make_vec_env(ENV_ID, 2, seed=3, env_kwargs=GREEN, kind="dummy"), reward_fn)
    plain = make_vec_env(ENV_ID, 2, seed=3, env_kwargs=GREEN, kind="dummy")
    obs = wrapped.reset()
    plain.reset()
    for step in range(5):
        actions = np.array([step % 6, 5 - step % 6])
        expected = reward_fn(obs, actions)
        obs, rewards, _, infos = wrapped.step(actions)
        _, true_rewards, _, _ = plain.step(actions)
        np.testing.assert_allclose(rewards, expected, rtol=1e-6)
        np.testing.assert_allclose([i["true_reward"] for i in infos], true_rewards, rtol=1e-6)
    pair_obs, pair_actions, pair_rewards = wrapped.pop_pairs()
    assert pair_obs.shape == (10, *spaces[0].shape) and pair_actions.shape == (10,) and pair_rewards.shape == (10,)
    wrapped.close()
    plain.close()


def test_behaviour_cloning_beats_the_random_policy(expert_demos, spaces):
    policy = behaviour_cloning(expert_demos, ENV_ID, GREEN, seed=0, epochs=10)
    seeds = unseen_seeds(5)
    cloned = evaluate(policy, ENV_ID, GREEN, seeds)
    random = evaluate(RandomPolicy(spaces[1], seed=0, observation_space=spaces[0]), ENV_ID, GREEN, seeds)
    assert cloned.mean_return > random.mean_return + 100, (cloned.mean_return, random.mean_return)


def test_a_tiny_gail_run_writes_its_tensorboard_scalars(expert_demos, tmp_path):
    config = GailConfig(n_envs=4, disc_batch_size=64, bc_epochs=1, ppo_hyperparams=TINY_PPO)  # with the BC warm start
    result = train_gail(expert_demos, ENV_ID, GREEN, timesteps=512, seed=0, config=config, log_dir=tmp_path)
    assert result.num_timesteps == 512 and len(result.history) == 2
    action, _ = result.predict(expert_demos.observations[0])
    assert result.model.action_space.contains(int(action))
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    wanted = {
        "losses/discriminator",
        "charts/discriminator_accuracy_expert",
        "charts/discriminator_accuracy_agent",
        "charts/gail_reward",
    }
    assert wanted <= tags, tags
    assert len(events.Scalars("charts/gail_reward")) == 2


def test_bad_inputs_give_one_line_value_errors(expert_demos, spaces, tmp_path):
    wrong_shape = dataclasses.replace(expert_demos, observations=expert_demos.observations[:, :3])
    calls = [
        lambda: collect_demonstrations(HeuristicSkier(spaces[1]), ENV_ID, GREEN, n_episodes=0),
        lambda: expert_demos.first(3),
        lambda: Demonstrations.load(tmp_path / "missing.npz"),
        lambda: GailConfig(reward_form="wasserstein"),
        lambda: GailConfig(disc_batch_size=0),
        lambda: GailConfig(bc_epochs=-1),
        lambda: gail_reward(torch.zeros(3), "wasserstein"),
        lambda: train_gail(expert_demos, ENV_ID, GREEN, timesteps=0),
        lambda: train_gail(wrong_shape, ENV_ID, GREEN, timesteps=64),
    ]
    for call in calls:
        with pytest.raises(ValueError) as error:
            call()
        assert "\n" not in str(error.value)


def test_the_reward_wrapper_needs_a_step_before_pairs_are_taken():
    wrapped = GailRewardVecEnv(DummyVecEnv([lambda: make_env(ENV_ID, GREEN)]), lambda o, a: np.zeros(len(o)))
    wrapped.reset()
    with pytest.raises(RuntimeError):
        wrapped.pop_pairs()
    wrapped.close()


def test_the_imitation_benchmark_reports_both_methods_against_expert_and_random(tmp_path):
    from agents.benchmarks.imitation import ImitationBenchConfig, run_imitation_bench, write_imitation_bench_report

    gail = GailConfig(n_envs=4, disc_batch_size=64, ppo_hyperparams=TINY_PPO)
    config = ImitationBenchConfig(
        seeds=(0,), demo_episodes=(1, 2), gail_timesteps=256, bc_epochs=2, eval_episodes=2, gail=gail
    )
    result = run_imitation_bench(config)
    assert [(r.method, r.demo_episodes) for r in result.runs] == [("bc", 1), ("gail", 1), ("bc", 2), ("gail", 2)]
    assert result.normalised(result.expert.mean_return) == 1 and result.normalised(result.random.mean_return) == 0
    written = write_imitation_bench_report(result, tmp_path)
    markdown = written["markdown"].read_text()
    assert "How to read it" in markdown and "GAIL" in markdown and "behaviour cloning" in markdown
    with pytest.raises(ValueError):
        ImitationBenchConfig(demo_episodes=(0,))
