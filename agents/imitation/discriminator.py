"""GAIL's police: a discriminator ``D(s, a)`` between the expert's pairs and the agent's, the reward it gives the
agent, and the two pieces that put it into an SB3 training: a VecEnv wrapper that swaps the env's reward for the
discriminator's, and a callback that trains the discriminator on each rollout (see :mod:`agents.imitation.gail`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn
from torch.nn import functional as F

from agents.imitation.demonstrations import Demonstrations

# BC is DAgger's first iteration on given states; distill.py's student and its supervised loop are reused as is.

REWARD_FORMS = ("logit", "gail")
TORCH_THREADS = 1


def gail_reward(logits: torch.Tensor, form: str = "logit") -> torch.Tensor:
    """The agent's reward from the discriminator's logits, ``D = sigmoid(logits)`` (see the module docstring):
    ``"logit"``: ``log D - log(1 - D)``; ``"gail"``: ``-log(1 - D)``."""
    if form == "logit":
        return logits
    if form == "gail":
        return F.softplus(logits)
    raise ValueError(f"unknown reward form {form!r}; choose one of {', '.join(REWARD_FORMS)}")


class Discriminator(nn.Module):
    """``D(s, a)``, the probability that a state-action pair is the expert's: an MLP on the standardised
    observation and the action (one-hot for ``Discrete``, as is for ``Box``).

    :param obs_mean: observation mean of the expert's demonstrations (a fixed part of the model, see the module
        docstring); ``obs_std`` their standard deviation, already floored
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        hidden: tuple[int, ...],
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        reward_form: str = "logit",
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete | spaces.Box):
            raise ValueError(f"GAIL handles Discrete and Box actions, not {action_space}")
        if reward_form not in REWARD_FORMS:
            raise ValueError(f"unknown reward form {reward_form!r}; choose one of {', '.join(REWARD_FORMS)}")
        self.action_space = action_space
        self.reward_form = reward_form
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32).flatten())
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32).flatten())
        obs_dim = int(np.prod(observation_space.shape))
        action_dim = (
            int(action_space.n) if isinstance(action_space, spaces.Discrete) else int(np.prod(action_space.shape))
        )
        layers: list[nn.Module] = []
        width = obs_dim + action_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def _inputs(self, observations: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32).reshape(len(observations), -1)
        obs = (obs - self.obs_mean) / self.obs_std
        if isinstance(self.action_space, spaces.Discrete):
            index = torch.as_tensor(np.asarray(actions), dtype=torch.int64).reshape(-1)
            act = F.one_hot(index, int(self.action_space.n)).float()
        else:
            low, high = self.action_space.low.flatten(), self.action_space.high.flatten()
            act = torch.as_tensor(np.clip(np.asarray(actions).reshape(len(obs), -1), low, high), dtype=torch.float32)
        return torch.cat([obs, act], dim=1)

    def forward(self, observations: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The logits of ``D``, shape ``(N,)``."""
        return self.net(self._inputs(observations, actions)).squeeze(-1)

    @torch.no_grad()
    def probability(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``D(s, a)`` for a batch of pairs."""
        return torch.sigmoid(self(observations, actions)).numpy()

    @torch.no_grad()
    def reward(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The agent's reward for a batch of pairs: :func:`gail_reward` of ``D``, float32."""
        return gail_reward(self(observations, actions), self.reward_form).numpy().astype(np.float32)


def make_discriminator(
    demos: Demonstrations,
    observation_space: spaces.Box,
    action_space: spaces.Space,
    hidden: tuple[int, ...] = (64, 64),
    min_obs_std: float = 0.1,
    reward_form: str = "logit",
) -> Discriminator:
    """A discriminator whose observation standardisation is fitted to ``demos`` (std floored at ``min_obs_std``)."""
    mean = demos.observations.reshape(len(demos.observations), -1).mean(axis=0)
    std = np.maximum(demos.observations.reshape(len(demos.observations), -1).std(axis=0), min_obs_std)
    return Discriminator(observation_space, action_space, tuple(hidden), mean, std, reward_form)


@dataclass
class DiscriminatorStats:
    """One discriminator update: its mean loss and its accuracy on the expert's and on the agent's pairs."""

    loss: float
    expert_accuracy: float  # share of expert pairs with D > 0.5
    agent_accuracy: float  # share of agent pairs with D < 0.5


def train_discriminator(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    expert: tuple[np.ndarray, np.ndarray],
    agent: tuple[np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
) -> DiscriminatorStats:
    """``epochs`` passes over the agent's pairs in batches, each against as many expert pairs drawn at random:
    binary cross-entropy with the expert labelled 1. Accuracies are measured on the batches before each step."""
    expert_obs, expert_act = (torch.as_tensor(x) for x in expert)
    agent_obs, agent_act = (torch.as_tensor(x) for x in agent)
    losses, expert_hits, agent_hits, count = [], 0.0, 0.0, 0
    for _ in range(epochs):
        for batch in torch.randperm(len(agent_obs), generator=generator).split(batch_size):
            e = torch.randint(len(expert_obs), (len(batch),), generator=generator)
            logits_e = discriminator(expert_obs[e], expert_act[e])
            logits_a = discriminator(agent_obs[batch], agent_act[batch])
            loss = F.binary_cross_entropy_with_logits(
                logits_e, torch.ones_like(logits_e)
            ) + F.binary_cross_entropy_with_logits(logits_a, torch.zeros_like(logits_a))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            expert_hits += (logits_e > 0).float().sum().item()
            agent_hits += (logits_a < 0).float().sum().item()
            count += len(batch)
    return DiscriminatorStats(float(np.mean(losses)), expert_hits / count, agent_hits / count)


# ---- the agent's side: reward swap and the discriminator's updates ---------------------------------------------


class GailRewardVecEnv(VecEnvWrapper):
    """Replace the env's reward by ``reward_fn(observation, action)`` of the pair that earned it, keep the env's
    reward in ``info["true_reward"]``, and remember the rollout's pairs for the discriminator.

    ``reward_fn`` is called on the raw observations of the wrapped env (put VecNormalize above this wrapper).
    """

    def __init__(self, venv: VecEnv, reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        super().__init__(venv)
        self.reward_fn = reward_fn
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self._rewards: list[np.ndarray] = []

    def reset(self) -> VecEnvObs:
        self._obs = np.asarray(self.venv.reset())
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, true_rewards, dones, infos = self.venv.step_wait()
        rewards = np.asarray(self.reward_fn(self._obs, self._actions), dtype=np.float32).reshape(self.num_envs)
        for info, true_reward in zip(infos, true_rewards, strict=True):
            info["true_reward"] = float(true_reward)
        self._pairs.append((self._obs.copy(), self._actions.copy()))
        self._rewards.append(rewards)
        self._obs = np.asarray(obs)  # after a done, the first observation of the next episode: the next pair's
        return obs, rewards, dones, infos

    def pop_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``(observations, actions, rewards)`` of every step since the last call, flattened over envs."""
        if not self._pairs:
            raise RuntimeError("no steps since the last pop_pairs()")
        obs = np.concatenate([o for o, _ in self._pairs])
        actions = np.concatenate([a for _, a in self._pairs])
        rewards = np.concatenate(self._rewards)
        self._pairs, self._rewards = [], []
        return obs, actions, rewards


class DiscriminatorCallback(BaseCallback):
    """After each PPO rollout, train the discriminator on that rollout's pairs against the expert's, and log
    ``losses/discriminator``, ``charts/discriminator_accuracy_expert|agent``, ``charts/gail_reward`` (mean reward
    per step of the rollout) and ``charts/true_episode_return`` (the env's return of recent episodes)."""

    def __init__(
        self,
        discriminator: Discriminator,
        demos: Demonstrations,
        reward_env: GailRewardVecEnv,
        learning_rate: float,
        epochs: int,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.expert = (demos.observations, demos.actions)
        self.reward_env = reward_env
        self.optimizer = torch.optim.Adam(discriminator.parameters(), lr=learning_rate)
        self.epochs, self.batch_size = epochs, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[DiscriminatorStats] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        obs, actions, rewards = self.reward_env.pop_pairs()
        stats = train_discriminator(
            self.discriminator,
            self.optimizer,
            self.expert,
            (obs, actions),
            self.epochs,
            self.batch_size,
            self.generator,
        )
        self.history.append(stats)
        self.logger.record("losses/discriminator", stats.loss)
        self.logger.record("charts/discriminator_accuracy_expert", stats.expert_accuracy)
        self.logger.record("charts/discriminator_accuracy_agent", stats.agent_accuracy)
        self.logger.record("charts/gail_reward", float(rewards.mean()))
        if self.model.ep_info_buffer:
            self.logger.record(
                "charts/true_episode_return", float(np.mean([e["r"] for e in self.model.ep_info_buffer]))
            )
