"""The native vector env: ``n`` skiers stepped together by the same physics as :class:`SkiEnv`."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.checks import (
    check_bool,
    check_box_action,
    check_choice,
    check_int,
    check_multi_discrete_actions,
    check_options,
    shown,
)
from envs.ski.course import SLOPES, course_draws, generate_course, get_slope, make_courses
from envs.ski.physics import (
    DT,
    OBS_HIGH,
    OBS_LOW,
    BatchOps,
    CourseTables,
    SkierState,
    SlopeConstants,
    advance,
    observe,
    padded_tables,
    start_offsets,
    starting_state,
    step_reward,
    write_course,
)
from envs.ski.ski_env import DISCRETE_ACTIONS, skier_action_masks

_STATE_FIELDS = tuple(field.name for field in fields(SkierState))
_TURN = np.array([turn for turn, _ in DISCRETE_ACTIONS])
_BRAKE = np.array([brake for _, brake in DISCRETE_ACTIONS])
# Bounds of the sizes, far beyond any use: SB3 and the benchmarks run up to a few thousand skiers; a skier takes about
# 6.5 kB (its course tables, state and the next course drawn ahead), 440 MB at the bound.
MAX_NUM_ENVS = 2**16
MAX_EPISODE_STEPS = 10**6  # 1000 times the registered TimeLimit: 28 hours of skiing
INFO_KEYS = ("gates_passed", "gates_missed", "falls", "tree_hits", "time", "speed", "finished", "clean")


class SkiVectorEnv(VectorEnv):
    """``num_envs`` skiers, each on its own course, as one Gymnasium vector env (autoreset on the next step).

    Made by ``gym.make_vec("trendgym/Ski-v0", num_envs=n, vectorization_mode="vector_entry_point")``; takes
    the same arguments as :class:`envs.ski.ski_env.SkiEnv` (vector observations only). Skier ``i`` reset
    with seed ``s + i`` follows exactly the trajectory of a single ``SkiEnv`` reset with seed ``s + i``,
    as Gymnasium's ``SyncVectorEnv`` would, at a fraction of the cost per step. A finished skier starts its
    next episode on the next step; :meth:`reset_rows` starts it at once, for clients such as
    Stable-Baselines3 that reset in the same step.

    Arguments are checked as :class:`~envs.ski.ski_env.SkiEnv` checks its own; ``num_envs`` is at most 65536
    (``MAX_NUM_ENVS``, about 440 MB) and ``max_episode_steps`` at most 10**6. ``reset`` takes no options (a fixed
    course is the ``course_seed`` argument); an action batch that is not ``num_envs`` actions of the single space
    raises ``InvalidAction``.
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
        trees_per_gate: float | None = None,
    ) -> None:
        if not isinstance(obs_type, str) or obs_type != "vector":
            raise ValueError(
                f"obs_type must be 'vector' in the native vector env, got {shown(obs_type)}; use "
                "vectorization_mode='sync' for pixels"
            )
        if render_mode is not None:
            raise ValueError(
                f"render_mode must be None: the native vector env does not render, got {shown(render_mode)}; render "
                "a single env (SkiEnv) instead"
            )
        self.num_envs = check_int("num_envs", num_envs, 1, MAX_NUM_ENVS)
        self.max_episode_steps = check_int("max_episode_steps", max_episode_steps, 1, MAX_EPISODE_STEPS)
        course_seed = check_int("course_seed", course_seed, 0, or_none=True)
        self.render_mode = render_mode
        self.slope = get_slope(check_choice("slope", slope, SLOPES), trees_per_gate)
        self.continuous = continuous = check_bool("continuous", continuous)
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
        # Every skier's next episode, drawn ahead so that the courses are made many at a time: the course
        # as table rows, the start offset and heading, and whether it is drawn (False once it has started).
        self._next_tables: CourseTables | None = None
        self._next_x, self._next_heading = np.zeros(num_envs), np.zeros(num_envs)
        self._drawn = np.zeros(num_envs, dtype=bool)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        # Arrays that every step's info shares, read-only so that a caller cannot change them for later steps.
        everybody, self._nobody = np.ones(num_envs, dtype=bool), np.zeros(num_envs, dtype=bool)
        everybody.flags.writeable = self._nobody.flags.writeable = False
        self._info_masks = {f"_{key}": everybody for key in INFO_KEYS}  # every skier has every key
        self._prev_done = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        check_options(options, (), "the native vector env (pass course_seed to gym.make_vec for a fixed course)")
        # A Python int, as gymnasium's seeding takes (it refuses numpy's), for all the skiers or one per skier.
        if not (seed is None or isinstance(seed, (int, list, tuple))):
            wanted = "a Python int, a list of one int or None per env, or None"
            raise gym.error.Error(f"seed must be {wanted}, got {shown(seed)}")
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
            self._drawn[:] = False
        else:
            self._rngs = [
                seeding.np_random(s)[0] if s is not None else r for s, r in zip(seeds, self._rngs, strict=True)
            ]
            self._drawn[[s is not None for s in seeds]] = False  # drawn from a generator now replaced

        n = self.num_envs
        if self._tables is None:  # the padding (and a fixed course) is written once; courses go over it
            course = self._fixed_course
            if course is None:
                course = generate_course(np.random.default_rng(0), self.slope)  # any course: its padding counts
            gates, trees = (np.tile(table, (n, 1)) for table in padded_tables(course))
            self._tables, self._next_tables = CourseTables(gates, trees), CourseTables(gates.copy(), trees.copy())
        self._state = starting_state(np.zeros(n), np.zeros(n), self._ops)
        self._restart(np.arange(n))
        self._steps[:] = 0
        self._prev_done[:] = False
        return observe(self._state, self._tables, self._constants, self._ops), self._info(self._nobody)

    def reset_rows(self, rows: np.ndarray) -> np.ndarray:
        """Start a new episode now for the skiers in ``rows``, drawn as the next-step autoreset would draw
        it, and return the observations of all skiers.

        For a caller that resets finished skiers in the same step, as Stable-Baselines3 does
        (:class:`agents.vec_env.NativeVecEnv`); the next ``step`` then moves these skiers rather than
        resetting them.
        """
        if self._state is None:
            raise RuntimeError("call reset() before reset_rows()")
        rows = np.asarray(rows, dtype=np.intp)
        # The last step's info holds the state's own counters: write into copies so that it stays as it was.
        self._state = replace(self._state, **{name: getattr(self._state, name).copy() for name in _STATE_FIELDS})
        self._restart(rows)
        self._steps[rows] = 0
        self._prev_done[rows] = False
        return observe(self._state, self._tables, self._constants, self._ops)

    def _restart(self, rows: np.ndarray) -> None:
        """Start the next episode of the skiers in ``rows``: its course and start were drawn ahead."""
        if not self._drawn[rows].all():
            # Making a hundred courses costs little more than making one (see make_courses), so this draws
            # ahead for every skier whose next episode has been used, not only for these.
            self._draw_ahead(np.flatnonzero(~self._drawn))
        self._tables.gates[rows] = self._next_tables.gates[rows]
        self._tables.trees[rows] = self._next_tables.trees[rows]
        start = starting_state(self._next_x[rows], self._next_heading[rows], self._ops)
        for name in _STATE_FIELDS:
            getattr(self._state, name)[rows] = getattr(start, name)
        self._drawn[rows] = False

    def _draw_ahead(self, rows: np.ndarray) -> None:
        """Draw the next episode of the skiers in ``rows``: its course (unless fixed) and its start.

        Each skier takes from its own generator what ``SkiEnv.reset`` takes from its own (``draw_episode``),
        in the same order: the course's numbers, then two for the start. Drawing them before the episode
        starts changes nothing, as nothing else draws from these generators.
        """
        n_course = 0 if self._fixed_course is not None else course_draws(self.slope)
        u = np.empty((len(rows), n_course + 2))
        for draws, i in zip(u, rows, strict=True):
            self._rngs[i].random(out=draws)
        if n_course:
            courses = make_courses(self.slope, u[:, :n_course])
            write_course(self._next_tables.gates, self._next_tables.trees, courses, rows)
        self._next_x[rows], self._next_heading[rows] = start_offsets(u[:, -2], u[:, -1])
        self._drawn[rows] = True

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
        if self.continuous:
            wanted = f"an array ({self.num_envs}, 2) of [turn, brake] in [-1, 1]"
            a = check_box_action(self.action_space, actions, wanted)
            return a[:, 0], (a[:, 1] + 1.0) / 2.0
        a = check_multi_discrete_actions(self.action_space, actions)
        return _TURN[a], _BRAKE[a]

    def action_masks(self) -> np.ndarray:
        """(num_envs, 6) masks for MaskablePPO, as :meth:`SkiEnv.action_masks` gives for one skier."""
        if self.continuous:
            raise gym.error.Error("action masks are for the Discrete actions of Ski-v0, not SkiContinuous-v0")
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        return skier_action_masks(self._state.down)

    def _info(self, finished: np.ndarray) -> dict[str, np.ndarray]:
        s = self._state
        clean = self._nobody
        if finished.any():  # else nobody finished clean, without the four comparisons
            faults = s.gates_missed + s.falls + s.tree_hits
            clean = finished & (faults == 0) & (s.gates_passed == self.slope.n_gates)
        # No copies needed: every step replaces the state's arrays rather than writing into them.
        info = {
            "gates_passed": s.gates_passed,
            "gates_missed": s.gates_missed,
            "falls": s.falls,
            "tree_hits": s.tree_hits,
            "time": s.time,
            "speed": np.sqrt(s.vx * s.vx + s.vy * s.vy),
            "finished": finished,
            "clean": clean,
        }
        info.update(self._info_masks)
        return info
