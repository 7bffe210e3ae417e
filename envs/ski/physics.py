"""Skier physics, rules and observation, written once for one skier or a batch of them.

Every function here takes an ``ops`` backend: :data:`SCALAR` runs on Python floats (one skier, as fast as
CartPole's pure-Python step) and :class:`BatchOps` on numpy arrays of shape ``(n,)`` (the native vector env).
The code path is the same; only the handful of functions that differ between ``math`` and ``numpy``
(``where``, ``clip``, table lookups...) come from the backend. So the single env and the vector env cannot drift
apart, and a test checks that they agree step by step.

The model, in the skier's frame (``u`` along the skis, ``w`` across them):

* gravity pulls down the fall line with ``g sin(slope)``;
* a little friction along the skis, a lot across them (the edges): lateral slip decays at ``EDGE_GRIP``,
  and of the speed the edges take away a gentle turn gives most back along the skis (a carve) while a hard
  turn gives little back (a skid);
* air drag grows with the square of the speed;
* a turn needs a lateral acceleration ``u * turn_rate``; beyond ``FALL_ACCEL`` the skier falls, lies
  still for ``FALL_TIME`` and gets up again;
* the snowplough brake adds friction along the skis;
* a tree or the forest at the edge of the piste stops the skier dead for ``CRASH_TIME``; the skier gets
  up pointing down the fall line.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.ski.course import Course, Slope, generate_course

DT = 0.1  # s per step
GRAVITY = 9.81  # m/s^2
MU_GLIDE = 0.04  # friction coefficient along the skis
MU_BRAKE = 0.35  # extra friction coefficient of a full snowplough
DRAG = 0.012  # 1/m: air drag deceleration is DRAG * speed^2
EDGE_GRIP = 10.0  # 1/s: rate at which the edges remove sideways slip
SKID_LOSS = 0.7  # share of the slip energy lost in the hardest turn (a carve at turn rate 0 loses none)
MAX_TURN_RATE = 1.4  # rad/s, the hardest turn
FALL_ACCEL = 15.0  # m/s^2 of lateral (centripetal) acceleration beyond which the skier falls
FALL_TIME = 1.5  # s lying in the snow after a fall
CRASH_TIME = 3.0  # s lost after hitting a tree or the forest edge
MAX_HEADING = 1.6  # rad from the fall line: a skier can point across the slope and a little uphill
MAX_SPEED = 30.0  # m/s
START_SPEED = 3.0  # m/s at the start gate
HIT_RADIUS = 1.2  # m, skier plus trunk: closer than this to a tree is a crash

# Rewards (see SkiEnv's docstring).
PROGRESS_REWARD = 100.0  # for the whole descent, paid in proportion to metres gained down the fall line
GATE_BONUS = 10.0
GATE_PENALTY = 10.0
FALL_PENALTY = 20.0
CRASH_PENALTY = 30.0
TIME_COST = 0.5  # per second

# Observation scales: a relative position is divided by these and clipped to [-1, 1].
SENSE_X = 20.0  # m
SENSE_Y = 40.0  # m
SLIP_SCALE = 10.0  # m/s
N_TREES_SEEN = 3
OBS_SIZE = 13 + 2 * N_TREES_SEEN
FAR = 1e6  # m: where the padding gates and trees stand

_EDGE_KEEP = math.exp(-EDGE_GRIP * DT)
_PER_SENSE_X = 1.0 / SENSE_X
_PER_SENSE_Y = 1.0 / SENSE_Y


class ScalarOps:
    """The backend for one skier: Python floats, ints and bools."""

    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    sqrt = staticmethod(math.sqrt)
    abs = staticmethod(abs)
    minimum = staticmethod(min)
    maximum = staticmethod(max)
    logical_not = staticmethod(operator.not_)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return a if condition else b

    @staticmethod
    def clip(x: float, low: float, high: float) -> float:
        return low if x < low else high if x > high else x

    @staticmethod
    def pair(table: list[float], index: int) -> tuple[float, float]:
        return table[2 * index], table[2 * index + 1]

    @staticmethod
    def observation(
        components: list[float], ahead: list[tuple[list[float], int, int]], x: float, y: float
    ) -> np.ndarray:
        for table, first, count in ahead:
            values = table[2 * first : 2 * (first + count)]
            for vx, vy in zip(values[0::2], values[1::2], strict=True):
                components += ((vx - x) * _PER_SENSE_X, (vy - y) * _PER_SENSE_Y)
        obs = np.array(components, dtype=np.float32)
        return np.clip(obs, -1.0, 1.0, out=obs)

    @staticmethod
    def int_zeros(like: float) -> int:
        return 0


class BatchOps:
    """The backend for ``n`` skiers: numpy arrays of shape ``(n,)``; course tables are ``(n, k)``."""

    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    logical_not = staticmethod(np.logical_not)
    where = staticmethod(np.where)

    def __init__(self, n: int) -> None:
        self.rows = np.arange(n)
        self._row_starts: dict[int, np.ndarray] = {}
        self._obs = np.empty((OBS_SIZE, n))  # work arrays of observation: values, and where to take them
        self._index = np.empty((OBS_SIZE, n), dtype=np.intp)
        self._offsets = np.arange(OBS_SIZE)[:, None]

    @staticmethod
    def clip(x: np.ndarray, low: float, high: float) -> np.ndarray:
        return np.minimum(np.maximum(x, low), high)

    def _starts(self, width: int) -> np.ndarray:
        starts = self._row_starts.get(width)
        if starts is None:
            starts = self._row_starts[width] = self.rows * width
        return starts

    # Lookups index the flattened table, several times faster than table[rows, index] for a thousand rows
    # (and, for a 1-d index, faster than np.take).
    def pair(self, table: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat, first = table.reshape(-1), self._starts(table.shape[1]) + 2 * index
        return flat[first], flat[first + 1]

    def observation(
        self,
        components: list[np.ndarray | float],
        ahead: list[tuple[np.ndarray, np.ndarray, int]],
        x: np.ndarray,
        y: np.ndarray,
    ) -> np.ndarray:
        # Built in a (OBS_SIZE, n) work array, a row per component, so that every write and every
        # subtraction of x and y runs along contiguous memory; then transposed in the one copy that makes it
        # float32 (a new array: the caller may keep it).
        out = self._obs
        for row, values in enumerate(components):
            out[row] = values
        row = len(components)
        for table, first, count in ahead:  # the (x, y) pairs ahead, taken straight into their rows
            rows = slice(row, row + 2 * count)
            np.add(self._starts(table.shape[1]) + 2 * first, self._offsets[: 2 * count], out=self._index[rows])
            # mode='wrap' spares take() a buffered copy of out; the padding keeps every index in range anyway
            np.take(table.reshape(-1), self._index[rows], out=out[rows], mode="wrap")
            row += 2 * count
        relative = out[len(components) :]
        relative[0::2] -= x
        relative[1::2] -= y
        relative[0::2] *= _PER_SENSE_X  # multiplied in both backends, so they round alike
        relative[1::2] *= _PER_SENSE_Y
        obs = out.T.astype(np.float32)
        return np.clip(obs, -1.0, 1.0, out=obs)

    @staticmethod
    def int_zeros(like: np.ndarray) -> np.ndarray:
        return np.zeros(np.shape(like), dtype=np.int64)


SCALAR = ScalarOps()


@dataclass
class SkierState:
    """Where a skier is and what has happened so far; floats for one skier, arrays for a batch."""

    x: Any
    y: Any
    vx: Any
    vy: Any
    heading: Any  # rad from the fall line, positive turned towards +x
    sin_heading: Any  # kept beside the heading: a sine of a thousand headings costs as much as the rest
    cos_heading: Any
    down: Any  # s left lying in the snow after a fall or a crash
    time: Any  # s since the start
    gate_index: Any  # next gate to pass
    tree_index: Any  # first obstacle tree not yet left behind
    gates_passed: Any
    gates_missed: Any
    falls: Any
    tree_hits: Any


@dataclass
class StepEvents:
    """What one step did; the reward is a weighted sum of these."""

    progress: Any  # share of the course gained, in [-1, 1]
    passed: Any
    missed: Any
    fell: Any
    crashed: Any
    finished: Any


@dataclass(frozen=True)
class CourseTables:
    """A course as lookup tables of interleaved (x, y) pairs, padded so that a look two gates or three trees
    ahead never runs off the end."""

    gates: Any
    trees: Any


@dataclass(frozen=True)
class SlopeConstants:
    """The numbers of a slope that the physics reads every step."""

    length: float
    n_gates: int
    gate_half_width: float
    piste_half_width: float
    g_along: float  # gravity along the fall line
    g_normal: float  # gravity into the snow, which friction scales with
    steepness: float  # sin(angle) / sin(30 degrees), an observation

    @classmethod
    def of(cls, slope: Slope) -> SlopeConstants:
        angle = math.radians(slope.angle_deg)
        return cls(
            length=slope.length,
            n_gates=slope.n_gates,
            gate_half_width=slope.gate_width / 2,
            piste_half_width=slope.piste_width / 2,
            g_along=GRAVITY * math.sin(angle),
            g_normal=GRAVITY * math.cos(angle),
            steepness=math.sin(angle) / math.sin(math.radians(30.0)),
        )


def padded_tables(course: Course) -> tuple[np.ndarray, np.ndarray]:
    """Gate and tree tables of one course, (x, y) interleaved, padded with two gates on the finish line
    and trees far away."""
    gates = np.zeros(2 * (course.slope.n_gates + 2))
    gates[-3::2] = course.length
    trees = np.zeros(2 * (len(course.tree_x) + N_TREES_SEEN))
    trees[-2 * N_TREES_SEEN + 1 :: 2] = FAR
    write_course(gates, trees, course)
    return gates, trees


def write_course(gates: np.ndarray, trees: np.ndarray, course: Any, rows: Any = Ellipsis) -> None:
    """Write a course into padded tables, leaving the padding alone; or, given ``rows``, a
    :class:`~envs.ski.course.CourseBatch` into those rows of the vector env's tables."""
    n_gates, n_trees = course.gate_x.shape[-1], course.tree_x.shape[-1]
    gates[rows, 0 : 2 * n_gates : 2] = course.gate_x
    gates[rows, 1 : 2 * n_gates : 2] = course.gate_y
    trees[rows, 0 : 2 * n_trees : 2] = course.tree_x
    trees[rows, 1 : 2 * n_trees : 2] = course.tree_y


def starting_state(x: Any, heading: Any, ops: Any = SCALAR) -> SkierState:
    """A skier at the start line, ``x`` metres off the fall line, moving at START_SPEED along its skis."""
    zero = x * 0.0
    count = ops.int_zeros(x)
    return SkierState(
        x=x,
        y=zero,
        vx=START_SPEED * ops.sin(heading),
        vy=START_SPEED * ops.cos(heading),
        heading=heading,
        sin_heading=ops.sin(heading),
        cos_heading=ops.cos(heading),
        down=zero,
        time=zero,
        gate_index=count,
        tree_index=count,
        gates_passed=count,
        gates_missed=count,
        falls=count,
        tree_hits=count,
    )


def advance(
    s: SkierState, turn: Any, brake: Any, course: CourseTables, k: SlopeConstants, ops: Any = SCALAR
) -> StepEvents:
    """Move the skier(s) one step of DT seconds, in place, and say what happened.

    ``turn`` is the turn rate as a share of MAX_TURN_RATE in [-1, 1] (positive: towards +x);
    ``brake`` the snowplough in [0, 1]. A skier lying in the snow ignores both.
    """
    up = s.down <= 0.0
    omega = turn * MAX_TURN_RATE * up
    brake = brake * up
    heading = ops.clip(s.heading + omega * DT, -MAX_HEADING, MAX_HEADING)
    sin_h, cos_h = ops.sin(heading), ops.cos(heading)

    # Velocity in the frame of the skis after they turned: the turn shows up as sideways slip.
    u = s.vx * sin_h + s.vy * cos_h
    w = s.vx * cos_h - s.vy * sin_h - k.g_along * sin_h * DT
    decel = (MU_GLIDE + MU_BRAKE * brake) * k.g_normal + DRAG * u * u
    u = ops.maximum(u + (k.g_along * cos_h - decel) * DT, 0.0)
    w_kept = w * _EDGE_KEEP
    carve = 1.0 - SKID_LOSS * turn * turn
    u = ops.minimum(ops.sqrt(u * u + carve * (w * w - w_kept * w_kept)), MAX_SPEED)
    fell = up & (u * ops.abs(omega) > FALL_ACCEL)
    moving = up & ops.logical_not(fell)
    vx = (u * sin_h + w_kept * cos_h) * moving
    vy = (u * cos_h - w_kept * sin_h) * moving

    x0, y0 = s.x, s.y
    x1, y1 = x0 + vx * DT, y0 + vy * DT
    tree_x, tree_y = ops.pair(course.trees, s.tree_index)
    x1, y1, hit_tree = _tree_collision(x0, y0, x1, y1, tree_x, tree_y, ops)
    off_piste = ops.abs(x1) > k.piste_half_width
    x1 = ops.clip(x1, 0.05 - k.piste_half_width, k.piste_half_width - 0.05)
    crashed = hit_tree | off_piste
    fell = fell & ops.logical_not(crashed)

    passed, missed = _gate_crossing(x0, y0, x1, y1, s.gate_index, *ops.pair(course.gates, s.gate_index), k, ops)
    still = ops.logical_not(crashed)
    s.x, s.y = x1, y1
    s.vx, s.vy = vx * still, vy * still
    s.heading = heading * still  # a skier gets up pointing down the fall line
    s.sin_heading = sin_h * still
    s.cos_heading = ops.where(crashed, 1.0, cos_h)
    s.down = ops.where(crashed, CRASH_TIME, ops.where(fell, FALL_TIME, ops.maximum(s.down - DT, 0.0)))
    s.time = s.time + DT
    s.gate_index = s.gate_index + (passed | missed)
    s.tree_index = s.tree_index + (tree_y < y1 - HIT_RADIUS)  # trees are 6 m apart: at most one left behind
    s.gates_passed = s.gates_passed + passed
    s.gates_missed = s.gates_missed + missed
    s.falls = s.falls + fell
    s.tree_hits = s.tree_hits + crashed
    progress = (ops.minimum(y1, k.length) - ops.minimum(y0, k.length)) / k.length
    return StepEvents(progress, passed, missed, fell, crashed, y1 >= k.length)


def _tree_collision(x0: Any, y0: Any, x1: Any, y1: Any, tx: Any, ty: Any, ops: Any) -> tuple[Any, Any, Any]:
    """Check the path of this step against the next tree (trees stand at least 6 m apart down the slope and
    a step covers at most 3 m, so only one can be in reach). A skier who hits it tumbles past it and ends
    up just below its trunk, so that getting up and skiing on does not hit it again."""
    sx, sy = x1 - x0, y1 - y0
    t = ops.clip(((tx - x0) * sx + (ty - y0) * sy) / (sx * sx + sy * sy + 1e-12), 0.0, 1.0)
    dx, dy = x0 + t * sx - tx, y0 + t * sy - ty
    hit = dx * dx + dy * dy < HIT_RADIUS * HIT_RADIUS
    x1 = ops.where(hit, tx + dx, x1)
    y1 = ops.where(hit, ty + HIT_RADIUS + 0.05, y1)
    return x1, y1, hit


def _gate_crossing(
    x0: Any, y0: Any, x1: Any, y1: Any, gate_index: Any, gx: Any, gy: Any, k: SlopeConstants, ops: Any
) -> tuple[Any, Any]:
    """A gate is passed when the path crosses its line between the flags, missed when it crosses outside."""
    crossed = (y0 < gy) & (y1 >= gy) & (gate_index < k.n_gates)
    rise = y1 - y0
    fraction = (gy - y0) / ops.where(crossed, rise, 1.0)
    between_flags = ops.abs(x0 + (x1 - x0) * fraction - gx) <= k.gate_half_width
    return crossed & between_flags, crossed & ops.logical_not(between_flags)


def step_reward(e: StepEvents) -> Any:
    """The reward of one step: progress down the course, gates, falls, crashes and the clock."""
    return (
        PROGRESS_REWARD * e.progress
        + GATE_BONUS * e.passed
        - GATE_PENALTY * e.missed
        - FALL_PENALTY * e.fell
        - CRASH_PENALTY * e.crashed
        - TIME_COST * DT
    )


def observe(s: SkierState, course: CourseTables, k: SlopeConstants, ops: Any = SCALAR) -> np.ndarray:
    """The observation vector (see SkiEnv's docstring); float32, shape (OBS_SIZE,) or (n, OBS_SIZE)."""
    sin_h, cos_h = s.sin_heading, s.cos_heading
    speed = ops.sqrt(s.vx * s.vx + s.vy * s.vy)
    slip = s.vx * cos_h - s.vy * sin_h
    components = [
        speed / MAX_SPEED,
        sin_h,
        cos_h,
        slip / SLIP_SCALE,
        s.x / k.piste_half_width,
        ops.clip(s.y / k.length, 0.0, 1.0),
        s.down / CRASH_TIME,
        k.gate_half_width / SENSE_X,
        k.steepness,
    ]
    ahead = [(course.gates, s.gate_index, 2), (course.trees, s.tree_index, N_TREES_SEEN)]
    # Every component is in [-1, 1] and those whose range starts at 0 cannot go below it, so the backend
    # clips to scalar bounds, several times faster than to the bound arrays.
    return ops.observation(components, ahead, s.x, s.y)


OBS_LOW = np.array([0, -1, -1, -1, -1, 0, 0, 0, 0] + [-1] * (OBS_SIZE - 9), dtype=np.float32)
OBS_HIGH = np.ones(OBS_SIZE, dtype=np.float32)


START_X_SPREAD = 2.0  # m: the start position is drawn in [-2, 2] around the fall line
START_HEADING_SPREAD = 0.2  # rad


def draw_episode(rng: np.random.Generator, slope: Slope, course: Course | None = None) -> tuple[Course, float, float]:
    """Draw what an episode starts from: the course (unless one is fixed), the start offset and heading.

    The single env and each skier of the vector env draw these from their own generator in the same order
    (the course's numbers, then two for the start: see ``SkiVectorEnv._draw_ahead``), which is what makes them
    agree under the same seed.
    """
    if course is None:
        course = generate_course(rng, slope)
    u_x, u_heading = rng.random(2).tolist()
    return course, *start_offsets(u_x, u_heading)


def start_offsets(u_x: Any, u_heading: Any) -> tuple[Any, Any]:
    """The start offset (m) and heading (rad) made from two uniform numbers in [0, 1) (or arrays of them)."""
    return (2.0 * u_x - 1.0) * START_X_SPREAD, (2.0 * u_heading - 1.0) * START_HEADING_SPREAD
