"""Policy distillation: a trained agent teaches a much smaller policy network to act as it does.

Rusu et al. (2016), "Policy Distillation", ICLR, arXiv:1511.06295: the student is trained by supervised
learning to match the teacher's action distribution on states the teacher labels, with the KL loss, the best
of their three. The states are gathered the DAgger way (Ross, Gordon & Bagnell 2011, "A Reduction of Imitation
Learning and Structured Prediction to No-Regret Online Learning"): in iteration ``i`` a mixture policy acts
(the teacher with probability ``beta_i``, the student otherwise, decided step by step), every state it visits
is labelled by the teacher and added to one growing dataset ``D``, and the student is trained on all of ``D``.
``beta_i`` decays to 0, so the later states are the ones the student itself runs into, which is what behaviour
cloning on the teacher's states alone never shows it.

The loss, by teacher and action space:

* an SB3 actor-critic teacher (PPO, A2C, TRPO), ``Discrete`` actions: ``KL(softmax(z_t / T) || softmax(z_s / T))``
  over the policy logits ``z`` (Rusu et al.'s KL loss; ``T = 1`` matches the teacher's own distribution, their
  small ``T`` sharpened the softmax of DQN Q-values, which our actor-critic teachers do not need);
* an SB3 actor-critic teacher, ``Box`` actions: the closed-form KL between the diagonal Gaussians,
  ``KL(N(mu_t, sigma_t) || N(mu_s, sigma_s))`` summed over action dimensions, which fits the student's means
  and its (state-independent) standard deviations both, so a stochastic student explores as the teacher did;
* any other teacher (a non-actor-critic SB3 model such as SAC or DQN, or a hand-written policy such as
  :class:`agents.baselines.HeuristicSkier`) is a black box with a ``predict``: the student regresses its
  deterministic actions, cross-entropy for ``Discrete``, mean squared error of the student's Gaussian mean for
  ``Box``. The student's standard deviation is then not trained, so such a student is meant to act
  deterministically (``evaluate.py``'s default).

The student is an SB3 model of the teacher's class (PPO for a black-box teacher, or ``student_algo``) with a
smaller ``net_arch``, so ``predict``, ``save``/``load``, ``watch.py`` and ``evaluate.py`` work on it unchanged.
Only its policy network is trained; its value network is left as built (a later RL fine-tuning would train it).

Observation normalisation: a run trained with VecNormalize acts on normalised observations. The teacher's
frozen statistics (:attr:`agents.runs.LoadedAgent.vecnormalize`, or ``vecnormalize=``) normalise every
observation the rollouts see, for the teacher and the student alike, and the student keeps the same
statistics: :meth:`DistilledPolicy.save` writes them beside the student's zip under the name
:func:`agents.runs.load_agent` looks for, so the student is loaded with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize
from torch.nn import functional as F

from agents.algorithms import ALGOS
from agents.evaluation import Policy, make_env
from agents.runs import LoadedAgent, atomic_save_model, atomic_save_vecnormalize, vecnormalize_path

BETA_SCHEDULES = ("linear", "exponential")
TORCH_THREADS = 1
ROLLOUT_SEED_STRIDE = 1000  # rollout episodes are seeded seed * 1000 + k, the training seeds of agents.seeds


@dataclass(frozen=True)
class PolicyDistillConfig:
    """How a policy is distilled; a command line should use the same names (``--student-net-arch``...)."""

    student_net_arch: tuple[int, ...] = (16,)  # hidden layer widths of the student's policy (and value) network
    iterations: int = 6  # DAgger iterations: rollout, label, aggregate, train
    steps_per_iteration: int = 1000  # env steps gathered by the mixture policy per iteration
    epochs: int = 10  # passes over the aggregated dataset D per iteration
    batch_size: int = 64  # states per gradient step
    learning_rate: float = 3e-3  # Adam's step size
    beta_schedule: str = "linear"  # P(teacher acts) in iteration i: "linear" 1 -> 0 at the last, "exponential" 0.5^i
    temperature: float = 1.0  # T of the Discrete KL loss (softens both softmaxes)
    student_algo: str = "ppo"  # the student's algorithm when the teacher is not an SB3 actor-critic model
    seed: int = 0  # the student's initial weights, the rollout episodes, the teacher/student draws, batch order

    def __post_init__(self) -> None:
        object.__setattr__(self, "student_net_arch", tuple(int(w) for w in self.student_net_arch))
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"unknown beta_schedule {self.beta_schedule!r}; choose one of {', '.join(BETA_SCHEDULES)}")
        for name in ("iterations", "steps_per_iteration", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0 or not self.temperature > 0:
            raise ValueError("learning_rate and temperature must be positive")
        if self.student_algo.lower() not in ALGOS:
            raise ValueError(f"unknown student_algo {self.student_algo!r}; choose one of {', '.join(ALGOS)}")

    def beta(self, iteration: int) -> float:
        """Probability that the teacher acts in ``iteration`` (0-based): 1 in the first, decaying to 0."""
        if self.beta_schedule == "exponential":
            return 0.5**iteration
        return 1.0 - iteration / max(self.iterations - 1, 1)


@dataclass
class IterationStats:
    """One DAgger iteration: how much the teacher acted, how large D has grown, the last epoch's mean loss."""

    iteration: int
    beta: float
    states: int  # |D| after this iteration's states were added
    loss: float
    episode_returns: list[float] = field(default_factory=list)  # the mixture policy's finished episodes


@dataclass
class DistilledPolicy:
    """The student and what it needs to act: the observation statistics it was trained on, if any."""

    student: BaseAlgorithm
    vecnormalize: VecNormalize | None
    history: list[IterationStats]
    student_parameters: int  # parameters of the student's policy (value network excluded)
    teacher_parameters: int | None  # the same for the teacher; None for a black-box teacher

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """The student's ``predict`` on the observation normalised as in distillation."""
        if self.vecnormalize is not None:
            observation = self.vecnormalize.normalize_obs(observation)
        return self.student.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)

    def save(self, path: str | Path) -> None:
        """Write the student's zip, and its observation statistics beside it where ``load_agent`` finds them."""
        path = Path(path)
        atomic_save_model(self.student, path)
        if self.vecnormalize is not None:
            atomic_save_vecnormalize(self.vecnormalize, vecnormalize_path(path))


def policy_parameters(model: BaseAlgorithm) -> int:
    """Parameters an actor-critic model acts with: everything but the value network."""
    critic = ("value_net.", "mlp_extractor.value_net.", "vf_features_extractor.")
    return sum(p.numel() for name, p in model.policy.named_parameters() if not name.startswith(critic))


def _is_actor_critic(teacher: Any) -> bool:
    """An SB3 model whose action distribution can be read off a batch of observations (no recurrent state)."""
    policy = getattr(teacher, "policy", None)
    return isinstance(policy, ActorCriticPolicy) and not hasattr(policy, "lstm_actor")


def make_student(teacher: Any, env: Any, config: PolicyDistillConfig) -> BaseAlgorithm:
    """An untrained SB3 model of the teacher's class (or ``student_algo``) with the small ``net_arch``."""
    arch = list(config.student_net_arch)
    if _is_actor_critic(teacher):
        cls, policy_kwargs = type(teacher), dict(teacher.policy_kwargs)  # keep its activation, log_std_init...
    else:
        cls, policy_kwargs = ALGOS[config.student_algo.lower()], {}
    policy_kwargs["net_arch"] = dict(pi=arch, vf=arch)
    return cls("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=config.seed, device="cpu", verbose=0)


# ---- the targets the teacher gives, and the loss of the student against them ---------------------------------


@torch.no_grad()
def _teacher_targets(teacher: Any, states: np.ndarray, action_space: spaces.Space) -> torch.Tensor:
    """The teacher's label of each state: policy logits (Discrete), ``[mu, log sigma]`` (Box), for an SB3
    actor-critic teacher; otherwise its deterministic action."""
    if _is_actor_critic(teacher):
        teacher.policy.set_training_mode(False)
        distribution = teacher.policy.get_distribution(torch.as_tensor(states, device=teacher.device)).distribution
        if isinstance(action_space, spaces.Discrete):
            return distribution.logits.cpu()
        return torch.cat([distribution.mean, distribution.stddev.log()], dim=1).cpu()
    actions, _ = teacher.predict(states, deterministic=True)
    dtype = torch.int64 if isinstance(action_space, spaces.Discrete) else torch.float32
    return torch.as_tensor(np.asarray(actions), dtype=dtype).reshape(len(states), -1).squeeze(-1)


def _distillation_loss(
    student: BaseAlgorithm, states: torch.Tensor, targets: torch.Tensor, soft: bool, temperature: float
) -> torch.Tensor:
    distribution = student.policy.get_distribution(states).distribution
    discrete = isinstance(student.action_space, spaces.Discrete)
    if soft and discrete:  # Rusu et al.'s KL loss
        log_q = F.log_softmax(distribution.logits / temperature, dim=1)
        log_p = F.log_softmax(targets / temperature, dim=1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    if soft:  # KL between diagonal Gaussians, summed over action dimensions
        mu_t, log_sigma_t = targets.chunk(2, dim=1)
        teacher_distribution = torch.distributions.Normal(mu_t, log_sigma_t.exp())
        return torch.distributions.kl_divergence(teacher_distribution, distribution).sum(dim=1).mean()
    if discrete:
        return F.cross_entropy(distribution.logits, targets)
    return ((distribution.mean - targets.reshape(distribution.mean.shape)) ** 2).sum(dim=1).mean()


# ---- DAgger ----------------------------------------------------------------------------------------------------


def _rollout(
    teacher: Any,
    student: BaseAlgorithm,
    env: Any,
    vecnormalize: VecNormalize | None,
    beta: float,
    steps: int,
    rng: np.random.Generator,
    episode_seeds: list[int],
) -> tuple[np.ndarray, list[float]]:
    """``steps`` states visited by the mixture ``beta * teacher + (1 - beta) * student`` (both deterministic),
    normalised as the teacher saw its observations. Each episode starts on the next of ``episode_seeds``'s
    course; the list is consumed, so later iterations play new courses."""
    normalize = vecnormalize.normalize_obs if vecnormalize is not None else (lambda o: o)
    states, returns = [], []
    obs, _ = env.reset(seed=episode_seeds.pop(0))
    episode_return = 0.0
    for _ in range(steps):
        state = np.asarray(normalize(obs), dtype=np.float32)
        states.append(state)
        actor: Policy = teacher if rng.random() < beta else student
        action, _ = actor.predict(state, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        if terminated or truncated:
            returns.append(episode_return)
            obs, _ = env.reset(seed=episode_seeds.pop(0))
            episode_return = 0.0
    return np.stack(states), returns


def train_student(
    student: BaseAlgorithm,
    optimizer: torch.optim.Optimizer,
    states: torch.Tensor,
    targets: torch.Tensor,
    config: PolicyDistillConfig,
    soft: bool,
    generator: torch.Generator,
) -> float:
    """``config.epochs`` passes over D in seeded random batches; the last epoch's mean loss."""
    student.policy.set_training_mode(True)
    mean_loss = float("nan")
    for _ in range(config.epochs):
        total = 0.0
        for batch in torch.randperm(len(states), generator=generator).split(config.batch_size):
            loss = _distillation_loss(student, states[batch], targets[batch], soft, config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        mean_loss = total / len(states)
    student.policy.set_training_mode(False)
    return mean_loss


def distill_policy(
    teacher: BaseAlgorithm | LoadedAgent | Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    config: PolicyDistillConfig = PolicyDistillConfig(),
    vecnormalize: VecNormalize | None = None,
) -> DistilledPolicy:
    """Distil ``teacher`` into a small SB3 student by DAgger on ``env_id``.

    :param teacher: an SB3 model, a :class:`~agents.runs.LoadedAgent` (its observation statistics are used), or
        any object with an SB3-style ``predict`` (then its actions are regressed, see the module docstring)
    :param env_id: the env the teacher acts in; ``env_kwargs`` its arguments (a run's ``config.yml`` has both)
    :param config: student size, DAgger schedule and the supervised training
    :param vecnormalize: the teacher's observation statistics, when ``teacher`` is a bare model of a run that
        normalised observations (a ``LoadedAgent`` brings its own)
    """
    torch.set_num_threads(TORCH_THREADS)
    if isinstance(teacher, LoadedAgent):
        teacher, vecnormalize = teacher.model, teacher.vecnormalize if vecnormalize is None else vecnormalize
    soft = _is_actor_critic(teacher)
    env = make_env(env_id, env_kwargs)
    try:
        if not isinstance(env.action_space, spaces.Discrete | spaces.Box):
            raise ValueError(f"policy distillation handles Discrete and Box actions, not {env.action_space}")
        student = make_student(teacher, env, config)
        optimizer = torch.optim.Adam(student.policy.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        episode_seeds = list(range(config.seed * ROLLOUT_SEED_STRIDE, (config.seed + 1) * ROLLOUT_SEED_STRIDE))
        states_D, targets_D, history = [], [], []
        for i in range(config.iterations):
            beta_i = config.beta(i)
            states_i, returns = _rollout(
                teacher, student, env, vecnormalize, beta_i, config.steps_per_iteration, rng, episode_seeds
            )
            states_D.append(torch.as_tensor(states_i))
            targets_D.append(_teacher_targets(teacher, states_i, env.action_space))
            D = torch.cat(states_D), torch.cat(targets_D)
            loss = train_student(student, optimizer, *D, config, soft, generator)
            history.append(IterationStats(i + 1, beta_i, len(D[0]), loss, returns))
    finally:
        env.close()
    return DistilledPolicy(
        student=student,
        vecnormalize=vecnormalize,
        history=history,
        student_parameters=policy_parameters(student),
        teacher_parameters=policy_parameters(teacher) if soft else None,
    )
