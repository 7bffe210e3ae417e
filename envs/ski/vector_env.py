"""The native vector env: ``n`` skiers stepped together by the same physics as :class:`SkiEnv`."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.ski.course import generate_course, get_slope
from envs.ski.physics import (
    DT,
    OBS_HIGH,
    OBS_LOW,
    BatchOps,
    CourseTables,
    SkierState,
    SlopeConstants,
    advance,
    draw_episode,
    observe,
    padded_tables,
    starting_state,
    step_reward,
    write_course,
)
from envs.ski.ski_env import DISCRETE_ACTIONS

_TURN = np.array([turn for turn, _ in DISCRETE_ACTIONS])
_BRAKE = np.array([brake for _, brake in DISCRETE_ACTIONS])
INFO_KEYS = ("gates_passed", "gates_missed", "falls", "tree_hits", "time", "speed", "finished", "clean")


class SkiVectorEnv(VectorEnv):
    """``num_envs`` skiers, each on its own course, as one Gymnasium vector env (autoreset on the next step).

    Made by ``gym.make_vec("trendgym/Ski-v0", num_envs=n, vectorization_mode="vector_entry_point")``; takes
    the same arguments as :class:`envs.ski.ski_env.SkiEnv` (vector observations only). Skier ``i`` reset
    with seed ``s + i`` follows exactly the trajectory of a single ``SkiEnv`` reset with seed ``s + i``,
    as Gymnasium's ``SyncVectorEnv`` would, at a fraction of the cost per step.
    """

    metadata = {"render_modes": [], "render_fps": round(1 / DT), "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int = 1000,
        slope: str = "green",
        course_seed: int | None = None,
        obs_type: str = "vector",
        continuous: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if obs_type != "vector":
            raise ValueError("the native vector env serves obs_type='vector'; use vectorization_mode='sync' for pixels")
        if render_mode is not None:
            raise ValueError("the native vector env does not render; render a single env (SkiEnv) instead")
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.slope = get_slope(slope)
        self.continuous = continuous
        self._constants = SlopeConstants.of(self.slope)
        self._ops = BatchOps(num_envs)
        self._fixed_course = (
            None if course_seed is None else generate_course(np.random.default_rng(course_seed), self.slope)
        )

        if continuous:
            self.single_action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        else:
            self.single_action_space = spaces.Discrete(len(DISCRETE_ACTIONS))
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

        self._rngs: list[np.random.Generator] = []
        self._state: SkierState | None = None
        self._tables: CourseTables | None = None
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._prev_done = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        if isinstance(seed, int):
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = [None] * self.num_envs
        else:
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for {self.num_envs} envs")
            seeds = list(seed)
        if not self._rngs:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        else:
            self._rngs = [
                seeding.np_random(s)[0] if s is not None else r for s, r in zip(seeds, self._rngs, strict=True)
            ]

        n = self.num_envs
        template = padded_tables(generate_course(np.random.default_rng(0), self.slope))
        self._tables = CourseTables(*(np.tile(table, (n, 1)) for table in template))  # padding set once
        self._state = starting_state(np.zeros(n), np.zeros(n), self._ops)
        self._restart(np.arange(n))
        self._steps[:] = 0
        self._prev_done[:] = False
        return observe(self._state, self._tables, self._constants, self._ops), self._info(np.zeros(n, dtype=bool))

    def _restart(self, rows: np.ndarray) -> None:
        """Draw a new episode for the skiers in ``rows``, each from its own generator."""
        for i in rows:
            course, x, heading = draw_episode(self._rngs[i], self.slope, self._fixed_course)
            write_course(self._tables.gates[i], self._tables.trees[i], course)
            start = starting_state(x, heading)
            for field in fields(SkierState):
                getattr(self._state, field.name)[i] = getattr(start, field.name)

    def step(self, actions: Any):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        turn, brake = self._decode(actions)
        events = advance(self._state, turn, brake, self._tables, self._constants, self._ops)
        rewards = step_reward(events).astype(np.float32)
        terminated = events.finished
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps

        done_before = self._prev_done
        if done_before.any():
            rows = np.flatnonzero(done_before)
            self._restart(rows)
            self._steps[rows] = 0
            rewards[rows] = 0.0
            terminated[rows] = False
            truncated[rows] = False
        self._prev_done = terminated | truncated
        obs = observe(self._state, self._tables, self._constants, self._ops)
        return obs, rewards, terminated, truncated, self._info(terminated)

    def _decode(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(actions)
        n = self.num_envs
        if self.continuous:
            if a.shape != (n, 2) or not np.all((a >= -1.0) & (a <= 1.0)):
                raise InvalidAction(f"actions must have shape ({n}, 2) with values in [-1, 1], got shape {a.shape}")
            return a[:, 0].astype(np.float64), (a[:, 1].astype(np.float64) + 1.0) / 2.0
        if a.shape != (n,) or a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= len(DISCRETE_ACTIONS):
            raise InvalidAction(f"actions must be {n} integers in 0..{len(DISCRETE_ACTIONS) - 1}, got {actions!r}")
        return _TURN[a], _BRAKE[a]

    def _info(self, finished: np.ndarray) -> dict[str, np.ndarray]:
        s = self._state
        clean = finished & (s.gates_missed + s.falls + s.tree_hits == 0) & (s.gates_passed == self.slope.n_gates)
        # No copies needed: every step replaces the state's arrays rather than writing into them.
        values = {
            "gates_passed": s.gates_passed,
            "gates_missed": s.gates_missed,
            "falls": s.falls,
            "tree_hits": s.tree_hits,
            "time": s.time,
            "speed": np.sqrt(s.vx * s.vx + s.vy * s.vy),
            "finished": finished,
            "clean": clean,
        }
        mask = np.ones(self.num_envs, dtype=bool)
        info: dict[str, np.ndarray] = {}
        for key, value in values.items():
            info[key] = value
            info[f"_{key}"] = mask
        return info
