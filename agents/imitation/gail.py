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
    return is minus the KL from the agent to the expert). Its sign is not fixed, unlike the other form's:
    ``-log(1 - D) > 0`` pays the skier for every step it stays on the slope (brake, never finish), ``log D < 0``
    for reaching the finish as soon as possible, gates or not (Kostrikov et al. 2019, "Discriminator-Actor-
    Critic", DAC). A sign that varies is not enough on its own, though: the agent still gains by staying where
    the logit is positive, and by ending the episode where it is negative (see the absorbing state below).
  - ``"gail"``: ``r = -log(1 - D)``, the form of Ho & Ermon's implementation and of ``imitation``'s GAIL;
    kept for comparison.

  Either way the reward is a function of ``D`` alone, computed from the logit for numerical safety
  (:func:`gail_reward`); ``-log(1 - sigmoid(x)) = softplus(x)``.
* The absorbing state (``absorbing``, DAC's Section 4.2). The ski episode terminates at the finish line, and an
  ended episode earns nothing more, so the length of an episode is a choice the discriminator's reward does not
  judge: in a seed-0 run with 16 demonstrations and neither this nor the penalty below, the agent learned to stop
  on the slope where the logit was positive, and its greedy policy reached the finish of none of 50 test courses
  in the 100-s limit. DAC makes the episode go on for ever in an absorbing state, one more input of the
  discriminator (a flag; its observation and action are zeroed), learned like any pair: every expert episode that
  terminated adds one absorbing pair to the expert's, every termination in a rollout one to the agent's. The
  terminal step earns the discounted reward of staying there, ``gamma / (1 - gamma) * r(absorbing)``; a
  truncation earns nothing extra (PPO bootstraps it: it is not an end of the task). So finishing is worth what
  the expert's finishing says, no more and no less: an agent that finishes more often (or sooner) than the expert
  makes the absorbing pair look like the agent's, and pays for it. With the penalty, it raised that run's score
  from 0.89 to 0.95 and its clean runs from 12% to 50% (the policy sampling its actions; one seed, so a hint
  rather than a proof).
* The discriminator's strength (``disc_learning_rate`` 1e-3, ``disc_epochs`` 2: eight Adam steps per 4096-pair
  rollout). The earlier setting, 1e-4 and four steps, was chosen because at 3e-4 the discriminator won too soon;
  measured against the true return, it left the discriminator too weak and too unsteady to see the gates. In a
  seed-0 run with 16 demonstrations its accuracy on the agent's pairs went from 0.12 to 0.96 and back within a
  few rollouts, the agent's true return with it (78, -23, 83), and the agent missed 5 of the 8 gates (with the
  penalty and the absorbing state added, still 5: score 0.65). At 1e-3 with two passes the true return rose
  steadily to about 145 in 1M steps, with half a gate missed per run (sampled policy: score 0.95).
* The gradient penalty (``disc_grad_penalty``): ``lambda E[(||grad_x logit(x)|| - 1)^2]`` at random
  interpolates between an expert and an agent input (Gulrajani et al. 2017, WGAN-GP), as DAC puts it on GAIL's
  discriminator with ``lambda = 10``, to keep it smooth between the two distributions and its logits (the
  reward) moderate. It is DAC's recipe and the one the published benchmark ran, but once the discriminator is
  strong it showed no gain in three single-seed checks without it (greedy / sampled return, with -> without:
  1 demonstration 82 / 111 -> 90 / 111; 4: 107 / 140 -> 104 / 152; 16: 87 / 146 -> 135 / 151), so
  ``disc_grad_penalty=0`` deserves a benchmark run of its own.
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

Behaviour cloning, the baseline, learns from the same demonstrations: :mod:`agents.imitation.cloning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.algorithms import make_agent
from agents.callbacks import EpisodeMetricsCallback, episode_metrics_of
from agents.evaluation import make_env
from agents.hyperparams import apply_overrides, load_hyperparams, resolve
from agents.imitation.cloning import clone_into
from agents.imitation.demonstrations import Demonstrations, check_demonstrations
from agents.imitation.discriminator import (
    REWARD_FORMS,
    Discriminator,
    DiscriminatorCallback,
    DiscriminatorStats,
    GailRewardVecEnv,
    make_discriminator,
)
from agents.runs import atomic_save_model, atomic_save_vecnormalize, vecnormalize_path
from agents.vec_env import make_vec_env

TORCH_THREADS = 1


@dataclass(frozen=True)
class GailConfig:
    """GAIL's settings besides the budget and the seed; a command line should use the same names.

    The discriminator's step size, passes, gradient penalty and absorbing state: see the module docstring, which
    says why each default. Entropy regularisation (Ho & Ermon's lambda H(pi)) is the PPO recipe's ``ent_coef``,
    0 for the ski env.
    """

    reward_form: str = "logit"  # "logit": log D - log(1 - D); "gail": -log(1 - D) (see the module docstring)
    disc_hidden: tuple[int, ...] = (64, 64)  # hidden layer widths of the discriminator
    disc_learning_rate: float = 1e-3  # Adam's step size for the discriminator
    disc_epochs: int = 2  # passes over each rollout's agent pairs per discriminator update
    disc_batch_size: int = 1024  # agent pairs (and as many expert pairs) per discriminator step
    disc_grad_penalty: float = 10.0  # weight of the discriminator's gradient penalty (DAC's 10); 0: none
    absorbing: bool = True  # a terminated episode goes on in a learned absorbing state (DAC); False: ends
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
        if self.disc_grad_penalty < 0:
            raise ValueError(f"disc_grad_penalty must not be negative, got {self.disc_grad_penalty}")
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
    env_id: str,
    env_kwargs: dict[str, Any],
    n_envs: int,
    seed: int,
    discriminator: Discriminator,
    normalize: Any,
    gamma: float,
) -> tuple[VecEnv, GailRewardVecEnv]:
    """native/dummy vector env -> VecMonitor (true returns) -> reward swap -> VecNormalize (as the recipe asks)."""
    kind = "native" if gym.spec(env_id).vector_entry_point is not None else "dummy"
    absorbing_reward = discriminator.absorbing_reward if discriminator.absorbing else None
    reward_env = GailRewardVecEnv(
        make_vec_env(env_id, n_envs, seed, env_kwargs, kind=kind), discriminator.reward, absorbing_reward, gamma
    )
    venv: VecEnv = reward_env if normalize is None else VecNormalize(reward_env, **normalize)
    return venv, reward_env


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
        check_demonstrations(demos, probe)
        observation_space, action_space = probe.observation_space, probe.action_space
    finally:
        probe.close()
    ppo_kwargs, n_envs, normalize = _ppo_recipe(env_id, config)
    set_random_seed(seed)
    discriminator = make_discriminator(
        demos,
        observation_space,
        action_space,
        config.disc_hidden,
        config.min_obs_std,
        config.reward_form,
        config.absorbing,
    )
    gamma = float(ppo_kwargs.get("gamma", 0.99))
    venv, reward_env = _gail_env(env_id, env_kwargs, n_envs, seed, discriminator, normalize, gamma)
    try:
        model = make_agent("ppo", venv, {**ppo_kwargs, "device": "cpu", "verbose": 0})
        model.action_space.seed(seed)
        if config.bc_epochs > 0:
            clone_into(model, demos, config.bc_epochs, seed)
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
                config.disc_grad_penalty,
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
