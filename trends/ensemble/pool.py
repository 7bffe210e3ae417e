"""What an ensemble is made from: the members' predicted class probabilities on the validation and test splits.

Every combination rule (averaging, voting, Caruana selection, stacking) and the ensemble environment work from the
members' outputs alone, never from the members themselves, so a pool is saved once as arrays and every later
combination is a few numpy operations on them: the same separation NAS-Bench tables make between training and
searching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MemberPool:
    """The members of one dataset's pool, their probabilities and the labels they are judged against.

    ``val_proba[m, i, c]`` is member ``m``'s probability of class ``c`` for validation sample ``i`` (rows sum to 1);
    ``test_proba`` the same on the test split. Combination rules fit on the validation split only; the test split
    is only reported.
    """

    dataset: str
    names: tuple[str, ...]  # one per member, e.g. "random-forest", "mlp-64-seed2"
    val_proba: np.ndarray  # (members, n_val, classes), float32
    test_proba: np.ndarray  # (members, n_test, classes), float32
    y_val: np.ndarray  # (n_val,), int64
    y_test: np.ndarray  # (n_test,), int64

    def __post_init__(self) -> None:
        m, _, c = self.val_proba.shape
        if len(self.names) != m or self.test_proba.shape[0] != m:
            raise ValueError(f"{len(self.names)} names for {m} members' validation and {self.test_proba.shape[0]} test")
        if self.test_proba.shape[2] != c:
            raise ValueError("validation and test probabilities disagree on the number of classes")
        if self.val_proba.shape[1] != len(self.y_val) or self.test_proba.shape[1] != len(self.y_test):
            raise ValueError("probabilities and labels disagree on the number of samples")

    @property
    def n_members(self) -> int:
        return len(self.names)

    @property
    def n_classes(self) -> int:
        return int(self.val_proba.shape[2])
