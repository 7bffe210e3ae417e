"""A feature set: an ordered collection of distinct feature expressions, which grows by applying operations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from trends.features.datasets import TabularData
from trends.features.transforms import arity, canonical, compose


@dataclass(frozen=True)
class FeatureSet:
    """Distinct canonical expressions, in the order they were added. Immutable: every operation returns a new set.

    ``FeatureSet(("x0", "mul(x1,x0)", "mul(x0,x1)"))`` holds ``("x0", "mul(x0,x1)")``: expressions are made
    canonical and a repeat is dropped (the first occurrence keeps its place).
    """

    expressions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.expressions, str):
            raise ValueError("a FeatureSet takes a sequence of expressions, not one string")
        object.__setattr__(self, "expressions", tuple(dict.fromkeys(canonical(e) for e in self.expressions)))

    @classmethod
    def raw(cls, data: TabularData) -> FeatureSet:
        """The dataset's raw features."""
        return cls(data.feature_names)

    def __len__(self) -> int:
        return len(self.expressions)

    def __iter__(self) -> Iterator[str]:
        return iter(self.expressions)

    def __getitem__(self, i: int) -> str:
        return self.expressions[i]

    def __contains__(self, expression: object) -> bool:
        return isinstance(expression, str) and canonical(expression) in self.expressions

    def result(self, op: str, i: int, j: int | None = None) -> str:
        """The expression ``op`` makes of feature ``i`` (and ``j`` for a binary or aggregate operation)."""
        if (j is None) != (arity(op) == 1):
            raise ValueError(f"{op} takes {arity(op)} operand(s)")
        return compose(op, self[i]) if j is None else compose(op, self[i], self[j])

    def apply(self, op: str, i: int, j: int | None = None) -> FeatureSet:
        """This set plus the feature ``op`` makes of features ``i`` (and ``j``); the same set if it has it."""
        return self.add(self.result(op, i, j))

    def add(self, *expressions: str) -> FeatureSet:
        return FeatureSet(self.expressions + expressions)

    def drop(self, indices: Iterable[int]) -> FeatureSet:
        """This set without the features at ``indices``."""
        gone = {i % len(self) for i in indices} if len(self) else set()
        return FeatureSet(tuple(e for i, e in enumerate(self.expressions) if i not in gone))
