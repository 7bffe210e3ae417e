"""The hand-made learning-rate schedules a learned controller of ``LearningRateControl-v0`` has to beat, as
LunarLander has its ``heuristic``: a constant rate, step decay and cosine annealing (Loshchilov & Hutter 2017,
"SGDR"), the baselines DACBench's SGD benchmark compares against.

Each is a small policy with Stable-Baselines3's ``predict`` signature, so evaluations and scripts treat it as an
agent. It reads only the training's progress from the observation (``obs[PROGRESS]``, epochs trained / budget)
and answers in the env's action space: ``learning_rate_to_action`` of the rate for the Box, the nearest rate of
``LR_GRID`` (on a log scale) for the Discrete space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.automl.lr_control_env import LR_GRID, PROGRESS, learning_rate_to_action

# The best constant rate, half a decade apart, over the default training instances (0.03, 0.1, 0.3, 1 measured);
# the decaying schedules start from it too.
DEFAULT_LEARNING_RATE = 0.3
_LOG_GRID = np.log10(LR_GRID)


class Schedule:
    """A learning rate as a function of training progress, answered in an action space.

    Subclasses define :meth:`learning_rate`; :meth:`predict` turns it into actions, one observation or a batch.
    """

    def __init__(self, action_space: gym.spaces.Space) -> None:
        if not isinstance(action_space, (gym.spaces.Box, gym.spaces.Discrete)):
            raise ValueError(
                f"a schedule answers in LearningRateControl-v0's Box or Discrete space, got {action_space}"
            )
        self.discrete = isinstance(action_space, gym.spaces.Discrete)

    def learning_rate(self, progress: float) -> float:
        """The rate of the next epoch when ``progress`` (epochs trained / budget, in [0, 1)) is done."""
        raise NotImplementedError

    def action(self, progress: float) -> int | np.ndarray:
        learning_rate = self.learning_rate(progress)
        if self.discrete:
            return int(np.argmin(np.abs(_LOG_GRID - math.log10(learning_rate))))
        return np.array([learning_rate_to_action(learning_rate)], dtype=np.float32)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        observation = np.asarray(observation)
        if observation.ndim == 2:
            return np.stack([np.asarray(self.action(float(o[PROGRESS]))) for o in observation]), None
        return np.asarray(self.action(float(observation[PROGRESS]))), None


def _check_rate(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive learning rate, got {value!r}")
    return float(value)


class ConstantSchedule(Schedule):
    """The same learning rate every epoch: the baseline of every learning-rate paper."""

    def __init__(self, action_space: gym.spaces.Space, learning_rate: float = DEFAULT_LEARNING_RATE) -> None:
        super().__init__(action_space)
        self.rate = _check_rate("learning_rate", learning_rate)

    def learning_rate(self, progress: float) -> float:
        return self.rate


class StepDecaySchedule(Schedule):
    """``initial`` until the first milestone, then ``factor`` times less at each milestone passed (the ResNet
    schedule: 10x less at half and at three quarters of the budget)."""

    def __init__(
        self,
        action_space: gym.spaces.Space,
        initial: float = DEFAULT_LEARNING_RATE,
        factor: float = 0.1,
        milestones: Sequence[float] = (0.5, 0.75),
    ) -> None:
        super().__init__(action_space)
        self.initial = _check_rate("initial", initial)
        if not (isinstance(factor, (int, float)) and 0 < factor <= 1):
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        if not all(isinstance(m, (int, float)) and 0 < m < 1 for m in milestones):
            raise ValueError(f"milestones must be shares of the budget in (0, 1), got {milestones!r}")
        self.factor = float(factor)
        self.milestones = tuple(sorted(float(m) for m in milestones))

    def learning_rate(self, progress: float) -> float:
        passed = sum(progress >= m - 1e-6 for m in self.milestones)  # progress comes as float32
        return self.initial * self.factor**passed


class CosineSchedule(Schedule):
    """Cosine annealing from ``initial`` at the first epoch towards ``final`` at the end of the budget
    (Loshchilov & Hutter 2017, without restarts)."""

    def __init__(
        self, action_space: gym.spaces.Space, initial: float = DEFAULT_LEARNING_RATE, final: float = 1e-3
    ) -> None:
        super().__init__(action_space)
        self.initial = _check_rate("initial", initial)
        self.final = _check_rate("final", final)

    def learning_rate(self, progress: float) -> float:
        return self.final + (self.initial - self.final) * (1.0 + math.cos(math.pi * progress)) / 2.0


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": ConstantSchedule,
    "step": StepDecaySchedule,
    "cosine": CosineSchedule,
}
