"""Procedural slalom courses: gates, trees and a finish line, built from a seed.

A course is a straight piste down the fall line. ``y`` is the distance down the fall line from the start
(metres, growing downhill) and ``x`` the lateral position (metres, 0 on the fall line). The camera looks down
on the slope with downhill at the bottom of the screen, so ``+x`` is to the right of the screen.

Everything here is plain numpy, so a course costs tens of microseconds to draw, and a batch of courses hardly
more: the native vector env draws one for each skier at every reset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from envs.checks import check_float

START_GAP = 20.0  # m from the start to the first gate
FINISH_GAP = 20.0  # m from the last gate to the finish line
TREE_SLOT = 8.0  # m; obstacle trees sit one per slot at most, so two are never closer than 6 m down the slope
TREE_JITTER = 1.0  # m of jitter inside a slot
GATE_CLEARANCE = 2.5  # m kept free beside each flag so that every gate can be passed
MAX_TREES_PER_GATE = 10.0  # a training option's bound: trees sit one per 8 m slot at most, so more only fill slots
FOREST_SPACING = 3.5  # m between scenery trees along each edge of the piste
FOREST_DEPTH = 14.0  # m of scenery forest beside the piste


@dataclass(frozen=True)
class Slope:
    """How hard a slope is: its steepness, its gates and its trees."""

    name: str
    angle_deg: float  # steepness of the fall line
    n_gates: int
    gate_spacing: float  # m down the fall line between consecutive gates
    gate_offset: float  # m, largest lateral offset of a gate centre from the fall line
    gate_width: float  # m between the two flags of a gate
    trees_per_gate: float  # obstacle trees on the piste, per gate
    piste_width: float  # m between the forest edges

    @property
    def length(self) -> float:
        """Distance from the start to the finish line, in metres."""
        return START_GAP + (self.n_gates - 1) * self.gate_spacing + FINISH_GAP

    @property
    def n_trees(self) -> int:
        return round(self.trees_per_gate * self.n_gates)


SLOPES: dict[str, Slope] = {
    "green": Slope("green", 12.0, 8, 24.0, 5.0, 8.0, 0.5, 36.0),
    "blue": Slope("blue", 18.0, 12, 22.0, 8.0, 6.5, 1.0, 32.0),
    "black": Slope("black", 25.0, 16, 20.0, 10.0, 5.0, 1.5, 28.0),
}


def get_slope(name: str, trees_per_gate: float | None = None) -> Slope:
    """Look a slope up by name, with the valid names in the error; ``trees_per_gate`` (if given) replaces its
    density of obstacle trees, a training option (see ``SkiEnv``'s ``trees_per_gate``)."""
    try:
        slope = SLOPES[name]
    except KeyError:
        raise ValueError(f"unknown slope {name!r}; choose one of {', '.join(SLOPES)}") from None
    if trees_per_gate is None:
        return slope
    density = check_float("trees_per_gate", trees_per_gate, 0.0, MAX_TREES_PER_GATE)
    return replace(slope, trees_per_gate=density)


@dataclass(frozen=True)
class Course:
    """One slalom course. Gates and obstacle trees are sorted by ``y``."""

    slope: Slope
    gate_x: np.ndarray  # gate centres
    gate_y: np.ndarray
    tree_x: np.ndarray  # obstacle trees on the piste
    tree_y: np.ndarray
    scenery_seed: int = 0  # the forest beside the piste is drawn from this only when something draws it

    @property
    def length(self) -> float:
        return self.slope.length

    @cached_property
    def forest(self) -> tuple[np.ndarray, np.ndarray]:
        """Scenery trees beside the piste: (x, y). Only the renderer needs them, so the physics never pays
        for them: skiing into the forest is a crash wherever the trees stand."""
        rng = np.random.default_rng(self.scenery_seed)
        per_side = int(self.slope.length // FOREST_SPACING) + 6
        forest_y = np.tile(np.arange(per_side) * FOREST_SPACING - 10.0, 2) + rng.uniform(-1.0, 1.0, 2 * per_side)
        side = np.repeat((-1.0, 1.0), per_side)
        forest_x = side * (self.slope.piste_width / 2 + 1.0 + rng.uniform(0.0, FOREST_DEPTH, 2 * per_side))
        return forest_x, forest_y

    @property
    def forest_x(self) -> np.ndarray:
        return self.forest[0]

    @property
    def forest_y(self) -> np.ndarray:
        return self.forest[1]


def generate_course(rng: np.random.Generator, slope: Slope) -> Course:
    """Draw a course: gates alternate sides like a real slalom; trees avoid the flags but not the racing line.

    The course is made from a single draw of :func:`course_draws` uniform numbers (see :func:`make_courses`).
    """
    batch = make_courses(slope, rng.random((1, course_draws(slope))))
    return Course(slope, batch.gate_x[0], batch.gate_y[0], batch.tree_x[0], batch.tree_y[0], int(batch.scenery_seed[0]))


@dataclass(frozen=True)
class CourseBatch:
    """The gates and obstacle trees of ``k`` courses of one slope, one course per row."""

    gate_x: np.ndarray  # (k, n_gates)
    gate_y: np.ndarray
    tree_x: np.ndarray  # (k, n_trees)
    tree_y: np.ndarray
    scenery_seed: np.ndarray  # (k,) ints


def course_draws(slope: Slope) -> int:
    """How many uniform numbers one course of this slope is made from."""
    return _layout(slope).n_draws


def make_courses(slope: Slope, u: np.ndarray) -> CourseBatch:
    """Make ``k`` courses at once from ``u``, a ``(k, course_draws(slope))`` array of uniform numbers in [0, 1).

    The native vector env draws a new course for every skier that finishes, often several in one step, so
    the courses are made a batch at a time: the cost is a few dozen numpy operations on small arrays
    whatever the batch size. Every operation works along the rows alone, so a course comes out the same
    whether it is made alone (the single env) or in a batch (the vector env).
    """
    layout = _layout(slope)
    gate_jitter, gate_offset, side, slot_keys, tree_jitter, tree_across, scenery = (u[:, part] for part in layout.parts)
    gate_y = START_GAP + slope.gate_spacing * (layout.gate_numbers + 0.3 * gate_jitter - 0.15)
    gate_y[:, 0] = START_GAP
    sides = np.where(side < 0.5, layout.alternate, -layout.alternate)  # which side the first gate is on
    gate_x = sides * (0.35 + 0.65 * gate_offset) * slope.gate_offset

    slots = np.sort(np.argsort(slot_keys, axis=1)[:, : layout.n_trees], axis=1)
    tree_y = layout.first_slot + slots * TREE_SLOT + (2.0 * tree_jitter - 1.0) * TREE_JITTER
    tree_x = (2.0 * tree_across - 1.0) * layout.tree_half_width
    tree_x = _clear_the_gates(slope, layout, gate_x, gate_y, tree_x, tree_y)
    return CourseBatch(gate_x, gate_y, tree_x, tree_y, (scenery[:, 0] * 2**31).astype(np.int64))


@dataclass(frozen=True)
class _Layout:
    """What every course of a slope shares: how many numbers to draw and how to split them."""

    n_draws: int
    parts: tuple[slice, ...]  # where each kind of number lies in the draw
    n_trees: int
    gate_numbers: np.ndarray
    alternate: np.ndarray  # +1, -1, +1, ...
    first_slot: float  # y of the middle of the first tree slot
    tree_half_width: float  # trees stand within this of the fall line


_LAYOUTS: dict[Slope, _Layout] = {}


def _layout(slope: Slope) -> _Layout:
    layout = _LAYOUTS.get(slope)
    if layout is None:
        first, last = START_GAP + 6.0, slope.length - 6.0
        n_slots = int((last - first) // TREE_SLOT)
        n_trees = min(slope.n_trees, n_slots)
        n = slope.n_gates
        sizes = [n, n, 1, n_slots, n_trees, n_trees, 1]
        ends = np.cumsum(sizes).tolist()
        layout = _LAYOUTS[slope] = _Layout(
            n_draws=ends[-1],
            parts=tuple(slice(end - size, end) for size, end in zip(sizes, ends, strict=True)),
            n_trees=n_trees,
            gate_numbers=np.arange(n, dtype=float),
            alternate=np.where(np.arange(n) % 2 == 0, 1.0, -1.0),
            first_slot=first + 0.5 * TREE_SLOT,
            tree_half_width=slope.piste_width / 2 - 2.0,
        )
    return layout


def _clear_the_gates(
    slope: Slope, layout: _Layout, gate_x: np.ndarray, gate_y: np.ndarray, tree_x: np.ndarray, tree_y: np.ndarray
) -> np.ndarray:
    """Move a tree level with a gate outside its flags, so that every gate stays passable.

    Gates stand within 15% of a spacing of their nominal place, so rounding finds the gate a tree is level
    with. All arrays hold one course per row.
    """
    nearest = np.minimum(((tree_y - START_GAP) * (1.0 / slope.gate_spacing) + 0.5).astype(np.intp), gate_y.shape[1] - 1)
    courses = np.arange(len(gate_x))[:, None]  # (fancy indexing is several times faster than take_along_axis)
    near_x, near_y = gate_x[courses, nearest], gate_y[courses, nearest]
    dx = tree_x - near_x
    keep_out = slope.gate_width / 2 + GATE_CLEARANCE
    side = np.where(dx >= 0, 1.0, -1.0)
    pushed = near_x + side * keep_out
    pushed = np.where(np.abs(pushed) > layout.tree_half_width, near_x - side * keep_out, pushed)
    blocking = (np.abs(tree_y - near_y) < 5.0) & (np.abs(dx) < keep_out)
    return np.where(blocking, pushed, tree_x)
