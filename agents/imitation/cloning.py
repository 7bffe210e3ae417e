"""Behaviour cloning: supervised learning of the expert's actions on the demonstrations' states, the baseline of
GAIL (:mod:`agents.imitation.gail`). It is :mod:`agents.distill`'s DAgger with one iteration and ``beta = 1``, on
the given demonstrations instead of new rollouts, and reuses that module's student and training loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import set_random_seed

# BC is DAgger's first iteration on given states; distill.py's student and its supervised loop are reused as is.
from agents.distill import PolicyDistillConfig, make_student, train_student
from agents.evaluation import make_env
from agents.imitation.demonstrations import Demonstrations, check_demonstrations

TORCH_THREADS = 1


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
        check_demonstrations(demos, env)
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


def clone_into(model: BaseAlgorithm, demos: Demonstrations, epochs: int, seed: int) -> None:
    """GAIL's optional warm start: behaviour cloning of the agent's policy before the first rollout. Its
    VecNormalize statistics are first fitted to the demonstrations, so the cloned policy sees the expert's states
    as it will see them in the rollouts that follow (the statistics then keep updating on the agent's states)."""
    vecnormalize = model.get_vec_normalize_env()
    observations = demos.observations
    if vecnormalize is not None and vecnormalize.norm_obs:
        vecnormalize.obs_rms.update(observations)
        observations = vecnormalize.normalize_obs(observations)
    _clone(model, observations, demos.actions, PolicyDistillConfig(epochs=epochs, learning_rate=1e-3, seed=seed))
