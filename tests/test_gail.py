"""GAIL and behaviour cloning (agents.imitation): the agent's reward is the discriminator's, the discriminator learns,
its gradient penalty and absorbing state do what DAC says, the reward swap keeps the env's reward for logging, BC
imitates, and a tiny GAIL run goes end to end."""

import dataclasses

import gymnasium as gym
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
from agents.imitation.discriminator import gradient_penalty, with_absorbing
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
    assert expert_demos.episode_terminated == [True, True] and expert_demos.n_terminated == 2  # at the finish
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
    assert loaded.episode_terminated == expert_demos.episode_terminated


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


def test_the_gradient_penalty_is_zero_for_unit_slopes_and_keeps_the_discriminator_smooth(expert_demos, spaces):
    linear = make_discriminator(expert_demos, *spaces, hidden=())  # logit = w . x + b: its gradient is w everywhere
    weight = linear.net[0].weight
    with torch.no_grad():
        weight.copy_(torch.randn_like(weight))
    x_e, x_a = torch.randn(32, weight.shape[1]), torch.randn(32, weight.shape[1])
    expected = (weight.norm() - 1) ** 2
    torch.testing.assert_close(gradient_penalty(linear, x_e, x_a), expected)
    with torch.no_grad():
        weight.div_(weight.norm())
    assert gradient_penalty(linear, x_e, x_a).item() < 1e-10

    def trained_logits(penalty: float) -> torch.Tensor:
        torch.manual_seed(0)
        discriminator = make_discriminator(expert_demos, *spaces)
        optimizer = torch.optim.Adam(discriminator.parameters(), lr=3e-3)
        expert = (expert_demos.observations, expert_demos.actions)
        agent = (expert_demos.observations, (expert_demos.actions + 1) % 6)  # the expert's states, other actions
        train_discriminator(discriminator, optimizer, expert, agent, 30, 128, torch.Generator().manual_seed(0), penalty)
        return discriminator(*expert).detach()

    # Without the penalty the discriminator grows sure of itself; with it, its logits stay moderate.
    assert trained_logits(10.0).abs().mean() < 0.5 * trained_logits(0.0).abs().mean()


def test_the_absorbing_state_is_one_input_whatever_its_placeholder_values(expert_demos, spaces):
    discriminator = make_discriminator(expert_demos, *spaces, absorbing=True)
    obs, actions = expert_demos.observations[:5], expert_demos.actions[:5]
    flags = np.ones(5, dtype=bool)
    absorbing_logits = discriminator(obs, actions, flags).detach()
    torch.testing.assert_close(absorbing_logits, absorbing_logits[:1].expand(5))
    assert discriminator.absorbing_reward() == pytest.approx(absorbing_logits[0].item(), rel=1e-5)
    assert not torch.allclose(discriminator(obs, actions).detach(), absorbing_logits)
    pairs = with_absorbing((obs, actions), 2, spaces[1])
    assert [len(x) for x in pairs] == [7, 7, 7] and pairs[2].tolist() == [False] * 5 + [True] * 2
    with pytest.raises(ValueError):
        make_discriminator(expert_demos, *spaces)(obs, actions, flags)  # made without an absorbing state


class _Corridor(gym.Env):
    """Three steps to the end of a corridor (a termination) unless the time limit of two steps comes first."""

    observation_space = gym.spaces.Box(0.0, 3.0, (1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.position += 1
        return np.full(1, self.position, dtype=np.float32), 0.0, self.position == 3, False, {}


@pytest.mark.parametrize("max_steps, bonus", [(3, 9.0 * 2.0), (2, 0.0)])
def test_a_termination_earns_the_absorbing_states_discounted_reward_a_truncation_nothing(max_steps, bonus):
    venv = DummyVecEnv([lambda: gym.wrappers.TimeLimit(_Corridor(), max_steps)])
    wrapped = GailRewardVecEnv(venv, lambda o, a: np.ones(len(o)), absorbing_reward_fn=lambda: 2.0, gamma=0.9)
    wrapped.reset()
    rewards = [wrapped.step(np.zeros(1, dtype=np.int64))[1][0] for _ in range(max_steps)]
    assert rewards == [1.0] * (max_steps - 1) + [1.0 + bonus]  # gamma / (1 - gamma) = 9 steps of 2.0
    assert wrapped.terminations == (1 if bonus else 0)
    _, _, pair_rewards = wrapped.pop_pairs()
    assert pair_rewards.tolist() == [1.0] * max_steps and wrapped.terminations == 0
    wrapped.close()


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
        lambda: GailConfig(disc_grad_penalty=-1.0),
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
