"""Where a configuration's score comes from: the shipped table (instant) or a real training (through the cache).

Every search method and every AutoML environment asks a backend, never the evaluator or the table directly, so
switching a whole search between the two is one argument: ``backend="table"`` for RL research, tests and
benchmarks over many seeds; ``backend="train"`` for a space without a table, or to train for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from trends.automl.evaluator import Evaluation, Evaluator
from trends.automl.space import SPACES, SearchSpace, get_space
from trends.automl.table import Table, load_table

BACKENDS = ("table", "train")


class Backend(Protocol):
    """Scores complete configurations of one space."""

    space: SearchSpace

    def evaluate(self, config: Mapping[str, Any]) -> Evaluation:
        """The record of a complete configuration of :attr:`space` (ValueError when it is not one)."""
        ...


class TableBackend:
    """Answers from the space's tabular benchmark: a dictionary lookup, the same numbers training gave."""

    def __init__(self, space: SearchSpace, table: Table | None = None) -> None:
        self.space = space
        if table is None:  # the registered spaces' tables are read once per process; another space's from its file
            table = load_table(space.name) if SPACES.get(space.name) is space else Table.load(space)
        self.table = table

    def evaluate(self, config: Mapping[str, Any]) -> Evaluation:
        return self.table.lookup(config)


class TrainBackend:
    """Trains through an :class:`Evaluator`, so a configuration any search has trained before is served from the
    storage."""

    def __init__(self, space: SearchSpace, evaluator: Evaluator | None = None) -> None:
        self.space = space
        self.evaluator = evaluator if evaluator is not None else Evaluator()

    def evaluate(self, config: Mapping[str, Any]) -> Evaluation:
        spec, recipe = self.space.build(config)
        return self.evaluator.evaluate(self.space.dataset, spec, recipe)


def make_backend(
    space: str | SearchSpace, backend: str = "table", storage: str | Path | None = None, device: str = "cpu"
) -> Backend:
    """The backend named ``backend`` for ``space``; ``storage`` and ``device`` apply to training only.
    ValueError for an unknown name, or for ``"table"`` on a space that has no table."""
    space = get_space(space) if isinstance(space, str) else space
    if backend == "table":
        return TableBackend(space)
    if backend == "train":
        return TrainBackend(space, Evaluator(storage, device=device))
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
