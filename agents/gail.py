"""Generative adversarial imitation learning, and behaviour cloning as its baseline.

Ho & Ermon (2016), "Generative Adversarial Imitation Learning", NeurIPS, arXiv:1606.03476. A discriminator
``D(s, a)`` learns to tell the expert's state-action pairs from the agent's; the agent (PPO here, where the
paper used TRPO) is rewarded for pairs the discriminator takes for the expert's. The two alternate: PPO collects
a rollout under the discriminator's reward, the discriminator takes a few gradient steps on that rollout against
as many expert pairs, PPO updates, and so on. At the equilibrium the agent's occupancy measure is the expert's.

Conventions and choices, each with its reason:

* ``D(s, a) = sigmoid(logit(s, a))`` is the probability that the pair is the **expert's** (Ho & Ermon's ``D``
  is the probability of the policy's; the convention of the ``imitation`` library is easier to read as "the
  police's belief that this is the real thing").
* The agent's reward, ``reward_form``:

  - ``"logit"`` (default): ``r = log D - log(1 - D)``, the discriminator's logit (the AIRL form, Fu et al. 2018;
    with the optimal discriminator it is ``log pi_E(a|s) - log pi(a|s)`` on the occupancy measures, so the
    return is minus the KL from the agent to the expert). It is chosen because its sign is not fixed: the ski
    episode ends at the finish line, and Kostrikov et al. (2019, "Discriminator-Actor-Critic") showed that a
    reward of one sign biases the episode's length: ``-log(1 - D) > 0`` pays the skier for every step it stays
    on the slope (brake, never finish), ``log D < 0`` for reaching the finish as soon as possible, gates or not.
  - ``"gail"``: ``r = -log(1 - D)``, the form of Ho & Ermon's implementation and of ``imitation``'s GAIL;
    kept for comparison.

  Either way the reward is a function of ``D`` alone, computed from the logit for numerical safety
  (:func:`gail_reward`); ``-log(1 - sigmoid(x)) = softplus(x)``.
* Observation normalisation. The discriminator standardises observations with fixed statistics of the expert's
  demonstrations, part of the discriminator itself, so expert and agent observations always go through the same
  affine map, and the reward does not drift with a running statistic. The standard deviation is floored at
  ``min_obs_std``: a feature the expert never varies (the ski env's time-lying-in-the-snow, 0 for a skier who
  never falls) would otherwise be blown up by 1e8 and decide the discriminator alone. The ski observations are
  already scaled to [-1, 1] by the env, so a floor of 0.1 magnifies no feature more than tenfold. The agent's
  policy normalises its observations with VecNormalize (a separate matter: the ski PPO recipe's ``normalize``),
  which sits *above* the reward wrapper, so the discriminator sees the raw observations the demonstrations hold;
  VecNormalize also normalises the GAIL reward the policy learns from.
* The env's own reward never reaches PPO: :class:`GailRewardVecEnv` swaps it for the discriminator's, keeping it
  in ``info["true_reward"]``. A VecMonitor *below* the wrapper records the true episode returns, so SB3's
  ``rollout/ep_rew_mean`` (and ``charts/true_episode_return``) show how the agent does on the task.

Behaviour cloning (Pomerleau 1991; Ross et al. 2011) is supervised learning of the expert's actions on the
demonstrations' states: :mod:`agents.distill`'s DAgger with one iteration and ``beta = 1`` (the teacher acts
throughout), except that the states are the given demonstrations rather than new rollouts, so that GAIL and BC
learn from exactly the same data. It reuses that module's student and training loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn
from torch.nn import functional as F

from agents.algorithms import make_agent
from agents.callbacks import EpisodeMetricsCallback, episode_metrics_of

# BC is DAgger's first iteration on given states; distill.py's student and its supervised loop are reused as is.
from agents.distill import PolicyDistillConfig, make_student, train_student
from agents.evaluation import Policy, make_env
from agents.hyperparams import apply_overrides, load_hyperparams, resolve
from agents.runs import atomic_save_model, atomic_save_vecnormalize, vecnormalize_path
from agents.vec_env import ENV_SEED_STRIDE, make_vec_env
from trends.files import atomic_write

REWARD_FORMS = ("logit", "gail")
TORCH_THREADS = 1


# ---- demonstrations --------------------------------------------------------------------------------------------


@dataclass
class Demonstrations:
    """The expert's state-action pairs, episode after episode, with raw (unnormalised) observations."""

    observations: np.ndarray  # (N, *obs_shape) float32, as the env returned them
    actions: np.ndarray  # (N,) int64 for Discrete, (N, *action_shape) float32 for Box
    episode_returns: list[float]  # the env's return of each episode
    episode_lengths: list[int]  # pairs per episode, in order; they sum to N
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        return len(self.episode_lengths)

    def save(self, path: str | Path) -> None:
        """Write the demonstrations as one ``.npz`` file, atomically (a crash leaves the old file or none)."""
        arrays = {
            "observations": self.observations,
            "actions": self.actions,
            "episode_returns": np.asarray(self.episode_returns, dtype=np.float64),
            "episode_lengths": np.asarray(self.episode_lengths, dtype=np.int64),
            "env": np.asarray(json.dumps({"env_id": self.env_id, "env_kwargs": self.env_kwargs})),
        }
        atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> Demonstrations:
        """Read what :meth:`save` wrote; a missing or foreign file is a one-line ``ValueError``."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                env = json.loads(str(data["env"]))
                return cls(
                    data["observations"],
                    data["actions"],
                    data["episode_returns"].tolist(),
                    data["episode_lengths"].tolist(),
                    env["env_id"],
                    env["env_kwargs"],
                )
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"cannot read demonstrations from {path}: {type(e).__name__}: {e}") from None

    def first(self, n_episodes: int) -> Demonstrations:
        """The first ``n_episodes`` episodes: nested subsets, so that more demonstrations only add data."""
        if not 1 <= n_episodes <= self.n_episodes:
            raise ValueError(f"n_episodes must be in 1..{self.n_episodes}, got {n_episodes}")
        n = sum(self.episode_lengths[:n_episodes])
        return Demonstrations(
            self.observations[:n],
            self.actions[:n],
            self.episode_returns[:n_episodes],
            self.episode_lengths[:n_episodes],
            self.env_id,
            dict(self.env_kwargs),
        )


def collect_demonstrations(
    expert: Policy, env_id: str, env_kwargs: dict[str, Any] | None, n_episodes: int, seed: int = 0
) -> Demonstrations:
    """Play ``n_episodes`` deterministic episodes of ``expert`` and record every (observation, action) pair.

    Episode ``k`` is reset with seed ``seed * 1000 + k``, a training course (:mod:`agents.seeds`), never a test
    course. ``expert`` is anything with a ``predict``: :class:`agents.baselines.HeuristicSkier`, or a trained run
    as a :class:`agents.runs.LoadedAgent`, which normalises the observations it acts on itself, so the raw ones
    are what is recorded either way.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    env = make_env(env_id, env_kwargs)
    observations, actions, returns, lengths = [], [], [], []
    try:
        for k in range(n_episodes):
            obs, _ = env.reset(seed=seed * ENV_SEED_STRIDE + k)
            done, episode_return, length = False, 0.0, 0
            while not done:
                action, _ = expert.predict(obs, deterministic=True)
                observations.append(np.asarray(obs, dtype=np.float32))
                actions.append(np.asarray(action))
                obs, reward, terminated, truncated, _ = env.step(action)
                episode_return += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(episode_return)
            lengths.append(length)
        discrete = isinstance(env.action_space, spaces.Discrete)
    finally:
        env.close()
    action_array = np.asarray(actions, dtype=np.int64 if discrete else np.float32)
    return Demonstrations(np.stack(observations), action_array, returns, lengths, env_id, dict(env_kwargs or {}))


# ---- the discriminator and its reward --------------------------------------------------------------------------


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


# ---- GAIL ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GailConfig:
    """GAIL's settings besides the budget and the seed; a command line should use the same names.

    The discriminator's step size: with 3e-4 (four steps per 4096-pair rollout) it told the agent's pairs from the
    expert's 90-100% of the time for most of a 1M-step green run, and its reward then says little more than "not
    the expert"; at 1e-4 its accuracy hovered nearer 70%, and the agent's true return rose sooner. Entropy
    regularisation (Ho & Ermon's lambda H(pi)) is the PPO recipe's ``ent_coef``, 0 for the ski env.
    """

    reward_form: str = "logit"  # "logit": log D - log(1 - D); "gail": -log(1 - D) (see the module docstring)
    disc_hidden: tuple[int, ...] = (64, 64)  # hidden layer widths of the discriminator
    disc_learning_rate: float = 1e-4  # Adam's step size for the discriminator (at 3e-4 it won too soon, see below)
    disc_epochs: int = 1  # passes over each rollout's agent pairs per discriminator update
    disc_batch_size: int = 1024  # agent pairs (and as many expert pairs) per discriminator step
    min_obs_std: float = 0.1  # floor of the discriminator's observation standard deviation
    bc_epochs: int = 0  # behaviour-cloning epochs on the demonstrations before GAIL starts (a warm start); 0: none
    n_envs: int | None = None  # parallel envs; None: the PPO recipe's (32 for Ski-v0, the native vector env)
    ppo_hyperparams: tuple[str, ...] = ()  # "key:value" overrides of agents/hyperparams/ppo.yml's entry

    def __post_init__(self) -> None:
        object.__setattr__(self, "disc_hidden", tuple(int(w) for w in self.disc_hidden))
        object.__setattr__(self, "ppo_hyperparams", tuple(self.ppo_hyperparams))
        if self.reward_form not in REWARD_FORMS:
            raise ValueError(f"unknown reward_form {self.reward_form!r}; choose one of {', '.join(REWARD_FORMS)}")
        if self.bc_epochs < 0:
            raise ValueError(f"bc_epochs must not be negative, got {self.bc_epochs}")
        for name in ("disc_epochs", "disc_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ValueError(f"n_envs must be at least 1, got {self.n_envs}")
        if not self.disc_learning_rate > 0 or not self.min_obs_std > 0:
            raise ValueError("disc_learning_rate and min_obs_std must be positive")


@dataclass
class GailResult:
    """The trained agent, what it acts with (its observation statistics) and the discriminator's history."""

    model: BaseAlgorithm
    vecnormalize: VecNormalize | None  # the policy's observation statistics (no longer updated), or None
    discriminator: Discriminator
    history: list[DiscriminatorStats]
    num_timesteps: int
    log_dir: Path | None

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """The agent's ``predict`` on the observation normalised as in training."""
        if self.vecnormalize is not None:
            observation = self.vecnormalize.normalize_obs(observation)
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

    def save(self, path: str | Path) -> None:
        """Write the agent's zip, its observation statistics where ``load_agent`` finds them, and the
        discriminator's weights as ``<stem>_discriminator.pt``."""
        path = Path(path)
        atomic_save_model(self.model, path)
        if self.vecnormalize is not None:
            atomic_save_vecnormalize(self.vecnormalize, vecnormalize_path(path))
        torch.save(self.discriminator.state_dict(), path.with_name(f"{path.stem}_discriminator.pt"))


def _ppo_recipe(env_id: str, config: GailConfig) -> tuple[dict[str, Any], int, dict[str, Any] | None]:
    """The PPO constructor keywords, ``n_envs`` and VecNormalize keywords of ``ppo.yml``'s entry for ``env_id``."""
    raw = apply_overrides(load_hyperparams("ppo", env_id), list(config.ppo_hyperparams))
    kwargs, settings = resolve(raw, "ppo")
    return kwargs, config.n_envs or settings.n_envs, settings.normalize


def _gail_env(
    env_id: str, env_kwargs: dict[str, Any], n_envs: int, seed: int, discriminator: Discriminator, normalize: Any
) -> tuple[VecEnv, GailRewardVecEnv]:
    """native/dummy vector env -> VecMonitor (true returns) -> reward swap -> VecNormalize (as the recipe asks)."""
    kind = "native" if gym.spec(env_id).vector_entry_point is not None else "dummy"
    reward_env = GailRewardVecEnv(make_vec_env(env_id, n_envs, seed, env_kwargs, kind=kind), discriminator.reward)
    venv: VecEnv = reward_env if normalize is None else VecNormalize(reward_env, **normalize)
    return venv, reward_env


def _check_demos(demos: Demonstrations, env: gym.Env) -> None:
    if len(demos.observations) == 0 or len(demos.observations) != len(demos.actions):
        raise ValueError("demonstrations must hold at least one pair, as many actions as observations")
    if demos.observations.shape[1:] != env.observation_space.shape:
        raise ValueError(
            f"demonstration observations have shape {demos.observations.shape[1:]}, "
            f"the env's are {env.observation_space.shape}"
        )


def train_gail(
    demos: Demonstrations,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    timesteps: int = 1_000_000,
    seed: int = 0,
    config: GailConfig = GailConfig(),
    log_dir: str | Path | None = None,
) -> GailResult:
    """Imitate ``demos`` on ``env_id`` by GAIL: PPO (``agents/hyperparams/ppo.yml``'s recipe for the env) on the
    discriminator's reward, the discriminator updated after every rollout.

    :param timesteps: env steps of the agent (the expert's pairs are only the demonstrations)
    :param seed: the agent's and the discriminator's initial weights; training env ``i`` skis the courses of
        seed ``seed * 1000 + i`` (:mod:`agents.seeds`)
    :param log_dir: where TensorBoard events go (``charts/``, ``losses/``, SB3's ``rollout/``, ``train/`` and the
        env's ``ski/`` metrics); None for none
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be at least 1, got {timesteps}")
    torch.set_num_threads(TORCH_THREADS)
    env_kwargs = dict(env_kwargs or {})
    probe = make_env(env_id, env_kwargs)
    try:
        _check_demos(demos, probe)
        observation_space, action_space = probe.observation_space, probe.action_space
    finally:
        probe.close()
    ppo_kwargs, n_envs, normalize = _ppo_recipe(env_id, config)
    set_random_seed(seed)
    discriminator = make_discriminator(
        demos, observation_space, action_space, config.disc_hidden, config.min_obs_std, config.reward_form
    )
    venv, reward_env = _gail_env(env_id, env_kwargs, n_envs, seed, discriminator, normalize)
    try:
        model = make_agent("ppo", venv, {**ppo_kwargs, "device": "cpu", "verbose": 0})
        model.action_space.seed(seed)
        if config.bc_epochs > 0:
            _clone_into_agent(model, demos, config.bc_epochs, seed)
        if log_dir is not None:
            model.set_logger(configure(str(log_dir), ["tensorboard"]))
        callbacks: list[BaseCallback] = [
            DiscriminatorCallback(
                discriminator,
                demos,
                reward_env,
                config.disc_learning_rate,
                config.disc_epochs,
                config.disc_batch_size,
                seed,
            )
        ]
        metrics = episode_metrics_of(env_id, env_kwargs)
        if metrics is not None:
            callbacks.append(EpisodeMetricsCallback(*metrics))
        model.learn(timesteps, callback=callbacks)
        vecnormalize = model.get_vec_normalize_env()
        if vecnormalize is not None:
            vecnormalize.training = False
    finally:
        venv.close()
    history = callbacks[0].history
    return GailResult(
        model, vecnormalize, discriminator, history, model.num_timesteps, None if log_dir is None else Path(log_dir)
    )


# ---- behaviour cloning -----------------------------------------------------------------------------------------


def behaviour_cloning(
    demos: Demonstrations,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    epochs: int = 20,
    net_arch: tuple[int, ...] = (64, 64),
    batch_size: int = 64,
    learning_rate: float = 1e-3,
) -> BaseAlgorithm:
    """A PPO policy (``net_arch`` as the GAIL agent's) trained by supervised learning to take the expert's
    action in each demonstration state: cross-entropy for ``Discrete``, squared error of the mean for ``Box``.

    It acts on raw observations (the ski env scales them already), so the returned model's ``predict`` is
    the policy. Only the policy network is trained, as in :func:`agents.distill.distill_policy`.
    """
    torch.set_num_threads(TORCH_THREADS)
    config = PolicyDistillConfig(
        student_net_arch=net_arch, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed
    )
    env = make_env(env_id, env_kwargs)
    try:
        _check_demos(demos, env)
        set_random_seed(seed)
        student = make_student(None, env, config)
    finally:
        env.close()
    _clone(student, demos.observations, demos.actions, config)
    return student


def _clone(model: BaseAlgorithm, observations: np.ndarray, actions: np.ndarray, config: PolicyDistillConfig) -> None:
    """Train ``model``'s policy network to take ``actions`` in ``observations`` (as the policy sees them)."""
    discrete = isinstance(model.action_space, spaces.Discrete)
    states = torch.as_tensor(observations, dtype=torch.float32)
    targets = torch.as_tensor(actions, dtype=torch.int64 if discrete else torch.float32)
    optimizer = torch.optim.Adam(model.policy.parameters(), lr=config.learning_rate)
    train_student(model, optimizer, states, targets, config, False, torch.Generator().manual_seed(config.seed))


def _clone_into_agent(model: BaseAlgorithm, demos: Demonstrations, epochs: int, seed: int) -> None:
    """GAIL's optional warm start: behaviour cloning of the agent's policy before the first rollout. Its
    VecNormalize statistics are first fitted to the demonstrations, so the cloned policy sees the expert's states
    as it will see them in the rollouts that follow (the statistics then keep updating on the agent's states)."""
    vecnormalize = model.get_vec_normalize_env()
    observations = demos.observations
    if vecnormalize is not None and vecnormalize.norm_obs:
        vecnormalize.obs_rms.update(observations)
        observations = vecnormalize.normalize_obs(observations)
    _clone(model, observations, demos.actions, PolicyDistillConfig(epochs=epochs, learning_rate=1e-3, seed=seed))
