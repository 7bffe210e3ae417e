"""Tabular datasets for feature engineering, split once: three that ship inside scikit-learn and a synthetic one
whose right answer is known.

* ``breast_cancer`` (569 rows, 30 features, 2 classes), ``wine`` (178 rows, 13 features, 3 classes) and
  ``diabetes`` (442 rows, 10 features, regression) from :mod:`sklearn.datasets`: nothing is downloaded
  (California housing is, so it is not here). Their feature names are made identifiers (``mean radius`` ->
  ``mean_radius``, ``od280/od315_of_diluted_wines`` -> ``od280_od315_of_diluted_wines``) so they can be operands
  of a feature expression.
* ``synthetic`` (800 rows, 6 features, regression): ``y = 3 x0 x1 - 2 x2 / x3 + 0.5 x4 + noise`` with x0, x1, x2
  uniform on [-1, 1], x3 uniform on [0.5, 2] (bounded away from 0, so the ratio is well behaved), x4 standard
  normal, x5 uniform noise the target ignores, and Gaussian noise of standard deviation 0.3. ``x0 x1`` is
  uncorrelated with every raw feature, so a linear model on the raw features misses it entirely (and sees the
  ratio only through x2): its cross-validated R2 is about 0.49, against about 0.96 with the two known features
  :data:`KNOWN_FEATURES` added. A feature search on it can be checked against the answer.

Every split is 75 % train, 25 % test, stratified for classification, with one fixed seed, so every caller (a
search, an environment, a benchmark) sees the same rows. Searches score on the train rows only (cross-validated);
the test rows are for the final report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

FEATURE_DATASETS = ("synthetic", "breast_cancer", "wine", "diabetes")
TASKS = ("classification", "regression")
SPLIT_SEED = 0  # the one seed of every split; changing it changes every recorded score
TEST_SHARE = 0.25
SYNTHETIC_ROWS = 800
SYNTHETIC_SEED = 0
SYNTHETIC_NOISE = 0.3  # standard deviation of the synthetic target's noise

# The features the synthetic target is built from, in canonical expression syntax.
KNOWN_FEATURES: dict[str, tuple[str, ...]] = {"synthetic": ("mul(x0,x1)", "div(x2,x3)")}


@dataclass(frozen=True, eq=False)
class TabularData:
    """A tabular dataset split once. ``X_*`` are float64 ``(rows, features)`` tables (read-only, shared by every
    caller), ``y_*`` int64 class labels or float64 targets; ``feature_names`` name the columns, each a valid raw
    feature expression."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    task: str  # "classification" | "regression"

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a regression task)."""
        return int(self.y_train.max()) + 1 if self.task == "classification" else 0


def load_tabular(name: str) -> TabularData:
    """The dataset ``name`` (one of :data:`FEATURE_DATASETS`), built once per process."""
    if name not in FEATURE_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(FEATURE_DATASETS)}")
    return _load(name)


def sanitize(name: str) -> str:
    """A column name made a lower-case identifier: runs of anything else become one underscore."""
    text = re.sub(r"\W+", "_", name.strip()).strip("_").lower()
    return text if text and not text[0].isdigit() else f"f_{text}"


@cache
def _load(name: str) -> TabularData:
    if name == "synthetic":
        X, y, names, task = *_synthetic(), "regression"
    else:
        loader = {
            "breast_cancer": sk_datasets.load_breast_cancer,
            "wine": sk_datasets.load_wine,
            "diabetes": sk_datasets.load_diabetes,
        }[name]
        bunch = loader()
        X, y, names = bunch.data, bunch.target, [sanitize(n) for n in bunch.feature_names]
        task = "regression" if name == "diabetes" else "classification"
    y = y.astype(np.int64 if task == "classification" else np.float64)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        np.asarray(X, dtype=np.float64), y, test_size=TEST_SHARE, random_state=SPLIT_SEED, stratify=stratify
    )
    arrays = [np.ascontiguousarray(a) for a in (X_train, y_train, X_test, y_test)]
    for a in arrays:
        a.flags.writeable = False
    if len(set(names)) != len(names):
        raise AssertionError(f"dataset {name} has duplicate feature names after sanitizing")
    return TabularData(name, arrays[0], arrays[1], arrays[2], arrays[3], tuple(names), task)


def _synthetic() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    n = SYNTHETIC_ROWS
    x0, x1, x2 = rng.uniform(-1.0, 1.0, (3, n))
    x3 = rng.uniform(0.5, 2.0, n)
    x4 = rng.standard_normal(n)
    x5 = rng.uniform(0.0, 1.0, n)
    y = 3.0 * x0 * x1 - 2.0 * x2 / x3 + 0.5 * x4 + SYNTHETIC_NOISE * rng.standard_normal(n)
    return np.column_stack([x0, x1, x2, x3, x4, x5]), y, [f"x{i}" for i in range(6)]
