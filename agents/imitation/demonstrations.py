"""What an imitation learner learns from: an expert's recorded episodes (state-action pairs), collected once and
saved, so GAIL and behaviour cloning learn from exactly the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.evaluation import Policy, make_env
from agents.vec_env import ENV_SEED_STRIDE
from trends.files import atomic_write


@dataclass
class Demonstrations:
    """The expert's state-action pairs, episode after episode, with raw (unnormalised) observations."""

    observations: np.ndarray  # (N, *obs_shape) float32, as the env returned them
    actions: np.ndarray  # (N,) int64 for Discrete, (N, *action_shape) float32 for Box
    episode_returns: list[float]  # the env's return of each episode
    episode_lengths: list[int]  # pairs per episode, in order; they sum to N
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # whether each episode ended by termination (the ski finish line) rather than truncation (the time limit);
    # None: unknown, taken as all terminated (files written before it was recorded)
    episode_terminated: list[bool] | None = None

    @property
    def n_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def n_terminated(self) -> int:
        """Episodes that ended by termination, each of which goes on in GAIL's absorbing state."""
        return self.n_episodes if self.episode_terminated is None else sum(self.episode_terminated)

    def save(self, path: str | Path) -> None:
        """Write the demonstrations as one ``.npz`` file, atomically (a crash leaves the old file or none)."""
        arrays = {
            "observations": self.observations,
            "actions": self.actions,
            "episode_returns": np.asarray(self.episode_returns, dtype=np.float64),
            "episode_lengths": np.asarray(self.episode_lengths, dtype=np.int64),
            "env": np.asarray(json.dumps({"env_id": self.env_id, "env_kwargs": self.env_kwargs})),
        }
        if self.episode_terminated is not None:
            arrays["episode_terminated"] = np.asarray(self.episode_terminated, dtype=bool)
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
                    data["episode_terminated"].tolist() if "episode_terminated" in data else None,
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
            None if self.episode_terminated is None else self.episode_terminated[:n_episodes],
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
    observations, actions, returns, lengths, ends = [], [], [], [], []
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
            ends.append(bool(terminated))
        discrete = isinstance(env.action_space, spaces.Discrete)
    finally:
        env.close()
    action_array = np.asarray(actions, dtype=np.int64 if discrete else np.float32)
    return Demonstrations(np.stack(observations), action_array, returns, lengths, env_id, dict(env_kwargs or {}), ends)


def check_demonstrations(demos: Demonstrations, env: gym.Env) -> None:
    if len(demos.observations) == 0 or len(demos.observations) != len(demos.actions):
        raise ValueError("demonstrations must hold at least one pair, as many actions as observations")
    if demos.observations.shape[1:] != env.observation_space.shape:
        raise ValueError(
            f"demonstration observations have shape {demos.observations.shape[1:]}, "
            f"the env's are {env.observation_space.shape}"
        )
