"""Non-learning agents behind the same ``predict`` interface as a Stable-Baselines3 model, so scripts and
evaluations treat them like trained agents: a random policy (the floor) and the heuristic skier."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.ski.heuristic import heuristic


class RandomPolicy:
    """Uniformly random actions from the action space, seeded for repeatable baselines."""

    def __init__(
        self,
        action_space: gym.spaces.Space,
        seed: int | None = None,
        observation_space: gym.spaces.Space | None = None,
    ) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)
        self.observation_space = observation_space

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, None]:
        # Without the observation space, a flat vector is one observation and a matrix a batch of them.
        single_shape = self.observation_space.shape if self.observation_space is not None else None
        batched = observation.ndim > 1 if single_shape is None else observation.shape != single_shape
        if batched:
            return np.stack([self.action_space.sample() for _ in range(len(observation))]), None
        return np.asarray(self.action_space.sample()), None


class HeuristicSkier:
    """The hand-written skier of :func:`envs.ski.heuristic.heuristic`: steer for the next gate, avoid trees,
    brake when too fast. Works on vector observations of ``Ski-v0`` and ``SkiContinuous-v0``."""

    def __init__(self, action_space: gym.spaces.Space) -> None:
        self.continuous = isinstance(action_space, gym.spaces.Box)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        if observation.ndim == 2:
            return np.stack([np.asarray(heuristic(o, self.continuous)) for o in observation]), None
        return np.asarray(heuristic(observation, self.continuous)), None
