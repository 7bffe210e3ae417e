"""GAIL's police: a discriminator ``D(s, a)`` between the expert's pairs and the agent's, the reward it gives the
agent, and the two pieces that put it into an SB3 training: a VecEnv wrapper that swaps the env's reward for the
discriminator's, and a callback that trains the discriminator on each rollout (see :mod:`agents.imitation.gail`
for the choices and their reasons: the gradient penalty and the absorbing state).

A batch of pairs is a tuple ``(observations, actions)`` or ``(observations, actions, absorbing)``, ``absorbing``
a boolean array marking the pairs of the absorbing state (their observation and action are ignored).
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

REWARD_FORMS = ("logit", "gail")
Pairs = tuple[np.ndarray, ...]  # (observations, actions) or (observations, actions, absorbing)


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
    observation and the action (one-hot for ``Discrete``, as is for ``Box``), and with ``absorbing`` one more input
    that marks the absorbing state after a termination (Kostrikov et al. 2019; its observation and action are
    zeros).

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
        absorbing: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete | spaces.Box):
            raise ValueError(f"GAIL handles Discrete and Box actions, not {action_space}")
        if reward_form not in REWARD_FORMS:
            raise ValueError(f"unknown reward form {reward_form!r}; choose one of {', '.join(REWARD_FORMS)}")
        self.action_space = action_space
        self.reward_form = reward_form
        self.absorbing = absorbing
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32).flatten())
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32).flatten())
        obs_dim = int(np.prod(observation_space.shape))
        action_dim = (
            int(action_space.n) if isinstance(action_space, spaces.Discrete) else int(np.prod(action_space.shape))
        )
        layers: list[nn.Module] = []
        width = obs_dim + action_dim + int(absorbing)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def inputs(
        self,
        observations: np.ndarray | torch.Tensor,
        actions: np.ndarray | torch.Tensor,
        absorbing: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The network's input for a batch of pairs: standardised observation, action, and the absorbing flag."""
        obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32).reshape(len(observations), -1)
        obs = (obs - self.obs_mean) / self.obs_std
        if isinstance(self.action_space, spaces.Discrete):
            index = torch.as_tensor(np.asarray(actions), dtype=torch.int64).reshape(-1)
            act = F.one_hot(index, int(self.action_space.n)).float()
        else:
            low, high = self.action_space.low.flatten(), self.action_space.high.flatten()
            act = torch.as_tensor(np.clip(np.asarray(actions).reshape(len(obs), -1), low, high), dtype=torch.float32)
        if not self.absorbing:
            if absorbing is not None and bool(torch.as_tensor(np.asarray(absorbing)).any()):
                raise ValueError("absorbing pairs need a Discriminator made with absorbing=True")
            return torch.cat([obs, act], dim=1)
        flag = torch.zeros(len(obs)) if absorbing is None else torch.as_tensor(np.asarray(absorbing)).float()
        keep = (1.0 - flag).unsqueeze(1)
        return torch.cat([obs * keep, act * keep, flag.unsqueeze(1)], dim=1)

    def forward(
        self,
        observations: np.ndarray | torch.Tensor,
        actions: np.ndarray | torch.Tensor,
        absorbing: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The logits of ``D``, shape ``(N,)``."""
        return self.net(self.inputs(observations, actions, absorbing)).squeeze(-1)

    @torch.no_grad()
    def probability(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``D(s, a)`` for a batch of pairs."""
        return torch.sigmoid(self(observations, actions)).numpy()

    @torch.no_grad()
    def reward(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The agent's reward for a batch of pairs: :func:`gail_reward` of ``D``, float32."""
        return gail_reward(self(observations, actions), self.reward_form).numpy().astype(np.float32)

    @torch.no_grad()
    def absorbing_reward(self) -> float:
        """The reward of one step in the absorbing state (the discriminator must have been made with it)."""
        if not self.absorbing:
            raise ValueError("this discriminator has no absorbing state (absorbing=False)")
        obs, act = absorbing_pairs(self.action_space, len(self.obs_mean), 1)
        return float(gail_reward(self(obs, act, np.ones(1, dtype=bool)), self.reward_form)[0])


def absorbing_pairs(action_space: spaces.Space, obs_dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` placeholder pairs for the absorbing state: zero observations and zero actions (the flag says what
    they are; the discriminator ignores their values)."""
    action_shape = () if isinstance(action_space, spaces.Discrete) else action_space.shape
    action_dtype = np.int64 if isinstance(action_space, spaces.Discrete) else np.float32
    return np.zeros((n, obs_dim), dtype=np.float32), np.zeros((n, *action_shape), dtype=action_dtype)


def with_absorbing(pairs: Pairs, n_absorbing: int, action_space: spaces.Space) -> Pairs:
    """``(observations, actions)`` with ``n_absorbing`` absorbing pairs appended, and the flags that mark them."""
    observations, actions = pairs[0], pairs[1]
    obs_dim = int(np.prod(observations.shape[1:]))
    extra_obs, extra_act = absorbing_pairs(action_space, obs_dim, n_absorbing)
    return (
        np.concatenate([observations.reshape(len(observations), -1), extra_obs]),
        np.concatenate([actions.reshape(len(actions), *extra_act.shape[1:]), extra_act]),
        np.concatenate([np.zeros(len(observations), dtype=bool), np.ones(n_absorbing, dtype=bool)]),
    )


def make_discriminator(
    demos: Demonstrations,
    observation_space: spaces.Box,
    action_space: spaces.Space,
    hidden: tuple[int, ...] = (64, 64),
    min_obs_std: float = 0.1,
    reward_form: str = "logit",
    absorbing: bool = False,
) -> Discriminator:
    """A discriminator whose observation standardisation is fitted to ``demos`` (std floored at ``min_obs_std``)."""
    mean = demos.observations.reshape(len(demos.observations), -1).mean(axis=0)
    std = np.maximum(demos.observations.reshape(len(demos.observations), -1).std(axis=0), min_obs_std)
    return Discriminator(observation_space, action_space, tuple(hidden), mean, std, reward_form, absorbing)


@dataclass
class DiscriminatorStats:
    """One discriminator update: its mean loss and its accuracy on the expert's and on the agent's pairs."""

    loss: float
    expert_accuracy: float  # share of expert pairs with D > 0.5
    agent_accuracy: float  # share of agent pairs with D < 0.5
    grad_penalty: float = 0.0  # mean gradient penalty (before its coefficient)


def gradient_penalty(
    discriminator: Discriminator, expert: torch.Tensor, agent: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``E[(||grad_x logit(x)|| - 1)^2]`` at random interpolates ``x`` between expert and agent inputs (the
    network's inputs, :meth:`Discriminator.inputs`): the penalty of WGAN-GP (Gulrajani et al. 2017) that
    Kostrikov et al. (2019) put on GAIL's discriminator so that it stays smooth between the two distributions."""
    eps = torch.rand(len(expert), 1, generator=generator)
    mixed = (eps * expert + (1 - eps) * agent).requires_grad_(True)
    logits = discriminator.net(mixed)
    (grad,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def train_discriminator(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    expert: Pairs,
    agent: Pairs,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    grad_penalty: float = 0.0,
) -> DiscriminatorStats:
    """``epochs`` passes over the agent's pairs in batches, each against as many expert pairs drawn at random:
    binary cross-entropy with the expert labelled 1, plus ``grad_penalty`` times :func:`gradient_penalty`.
    Accuracies are measured on the batches before each step."""
    expert_inputs = discriminator.inputs(*expert).detach()
    agent_inputs = discriminator.inputs(*agent).detach()
    losses, penalties, expert_hits, agent_hits, count = [], [], 0.0, 0.0, 0
    for _ in range(epochs):
        for batch in torch.randperm(len(agent_inputs), generator=generator).split(batch_size):
            x_e = expert_inputs[torch.randint(len(expert_inputs), (len(batch),), generator=generator)]
            x_a = agent_inputs[batch]
            logits_e, logits_a = discriminator.net(x_e).squeeze(-1), discriminator.net(x_a).squeeze(-1)
            loss = F.binary_cross_entropy_with_logits(
                logits_e, torch.ones_like(logits_e)
            ) + F.binary_cross_entropy_with_logits(logits_a, torch.zeros_like(logits_a))
            penalty = gradient_penalty(discriminator, x_e, x_a, generator) if grad_penalty > 0 else torch.zeros(())
            optimizer.zero_grad(set_to_none=True)
            (loss + grad_penalty * penalty).backward()
            optimizer.step()
            losses.append(loss.item())
            penalties.append(penalty.item())
            expert_hits += (logits_e > 0).float().sum().item()
            agent_hits += (logits_a < 0).float().sum().item()
            count += len(batch)
    return DiscriminatorStats(
        float(np.mean(losses)), expert_hits / count, agent_hits / count, float(np.mean(penalties))
    )


# ---- the agent's side: reward swap and the discriminator's updates ---------------------------------------------


class GailRewardVecEnv(VecEnvWrapper):
    """Replace the env's reward by ``reward_fn(observation, action)`` of the pair that earned it, keep the env's
    reward in ``info["true_reward"]``, and remember the rollout's pairs for the discriminator.

    ``reward_fn`` is called on the raw observations of the wrapped env (put VecNormalize above this wrapper).
    With ``absorbing_reward_fn`` (the reward of one step in the absorbing state), a step that *terminates* its
    episode also earns the discounted reward of staying in the absorbing state for ever,
    ``gamma / (1 - gamma) * absorbing_reward_fn()`` (Kostrikov et al. 2019); a truncation earns nothing extra
    (PPO bootstraps it), and the terminations are counted for the discriminator.
    """

    def __init__(
        self,
        venv: VecEnv,
        reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
        absorbing_reward_fn: Callable[[], float] | None = None,
        gamma: float = 0.99,
    ) -> None:
        super().__init__(venv)
        self.reward_fn = reward_fn
        self.absorbing_reward_fn = absorbing_reward_fn
        self.gamma = gamma
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self._rewards: list[np.ndarray] = []
        self.terminations = 0  # episodes ended by termination (not truncation) since the last pop_pairs()

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
        self._rewards.append(rewards.copy())
        terminated = np.array(
            [bool(d) and not i.get("TimeLimit.truncated", False) for d, i in zip(dones, infos, strict=True)], dtype=bool
        )
        self.terminations += int(terminated.sum())
        if self.absorbing_reward_fn is not None and terminated.any():
            rewards[terminated] += self.gamma / (1.0 - self.gamma) * self.absorbing_reward_fn()
        self._obs = np.asarray(obs)  # after a done, the first observation of the next episode: the next pair's
        return obs, rewards, dones, infos

    def pop_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``(observations, actions, rewards)`` of every step since the last call, flattened over envs (the
        rewards of the pairs, without the absorbing state's); :attr:`terminations` restarts from 0."""
        if not self._pairs:
            raise RuntimeError("no steps since the last pop_pairs()")
        obs = np.concatenate([o for o, _ in self._pairs])
        actions = np.concatenate([a for _, a in self._pairs])
        rewards = np.concatenate(self._rewards)
        self._pairs, self._rewards, self.terminations = [], [], 0
        return obs, actions, rewards


class DiscriminatorCallback(BaseCallback):
    """After each PPO rollout, train the discriminator on that rollout's pairs against the expert's, and log
    ``losses/discriminator``, ``losses/gradient_penalty``, ``charts/discriminator_accuracy_expert|agent``,
    ``charts/gail_reward`` (mean reward per step of the rollout), ``charts/absorbing_reward`` (with an absorbing
    state) and ``charts/true_episode_return`` (the env's return of recent episodes).

    With an absorbing state, each expert episode that ended by termination adds one absorbing pair to the
    expert's, and each termination in the rollout one to the agent's, as in Kostrikov et al. (2019).
    """

    def __init__(
        self,
        discriminator: Discriminator,
        demos: Demonstrations,
        reward_env: GailRewardVecEnv,
        learning_rate: float,
        epochs: int,
        batch_size: int,
        seed: int,
        grad_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.expert: Pairs = (demos.observations, demos.actions)
        if discriminator.absorbing:
            self.expert = with_absorbing(self.expert, demos.n_terminated, discriminator.action_space)
        self.reward_env = reward_env
        self.optimizer = torch.optim.Adam(discriminator.parameters(), lr=learning_rate)
        self.epochs, self.batch_size, self.grad_penalty = epochs, batch_size, grad_penalty
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[DiscriminatorStats] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        terminations = self.reward_env.terminations
        obs, actions, rewards = self.reward_env.pop_pairs()
        agent: Pairs = (obs, actions)
        if self.discriminator.absorbing:
            agent = with_absorbing(agent, terminations, self.discriminator.action_space)
        stats = train_discriminator(
            self.discriminator,
            self.optimizer,
            self.expert,
            agent,
            self.epochs,
            self.batch_size,
            self.generator,
            self.grad_penalty,
        )
        self.history.append(stats)
        self.logger.record("losses/discriminator", stats.loss)
        self.logger.record("losses/gradient_penalty", stats.grad_penalty)
        self.logger.record("charts/discriminator_accuracy_expert", stats.expert_accuracy)
        self.logger.record("charts/discriminator_accuracy_agent", stats.agent_accuracy)
        self.logger.record("charts/gail_reward", float(rewards.mean()))
        if self.discriminator.absorbing:
            self.logger.record("charts/absorbing_reward", self.discriminator.absorbing_reward())
        if self.model.ep_info_buffer:
            self.logger.record(
                "charts/true_episode_return", float(np.mean([e["r"] for e in self.model.ep_info_buffer]))
            )
