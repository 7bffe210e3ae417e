"""Feature selection, and the expand-reduce baseline every learned feature search is compared with.

Expand-reduce (as in Kanter & Veeramachaneni's Deep Feature Synthesis and the baselines of Khurana et al. 2018):
apply every transformation to every raw feature (and every binary or aggregate one to every pair), then keep the
``k`` candidates that score best under a cheap filter, here mutual information with the target. It costs one
filter pass and no model training. Plain top-k selection is blind to redundancy: mutual information does not
change under a monotone transformation, so ``x``, ``log(x)`` and ``quantile(x)`` score alike and would all be
kept (on the synthetic dataset, ten of the top fourteen candidates are transformations of ``x2`` alone, and the
known ``mul(x0,x1)`` ranks fifteenth). :func:`expand_reduce` therefore skips a candidate whose rank correlation
with one already kept is above :data:`MAX_CORRELATION`, a minimal form of the redundancy term of mRMR (Peng et
al. 2005).

Everything here is fitted on the train rows only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from trends.features.datasets import TabularData
from trends.features.evaluation import FeatureScorer
from trends.features.transforms import AGGREGATE, BINARY, COMMUTATIVE, UNARY, build_matrix, canonical, compose

MI_SEED = 0  # mutual information's k-nearest-neighbour estimator adds a little seeded noise to break ties
MI_NEIGHBOURS = 3
PAIR_RAW_LIMIT = 10  # binary and aggregate operations combine the top PAIR_RAW_LIMIT raw features (by MI) only
EXTRA_FEATURES = 4  # expand_reduce keeps (number of raw features + EXTRA_FEATURES) by default
MAX_CORRELATION = 0.95  # expand_reduce skips a candidate this rank-correlated with one it has kept


def mutual_information(expressions: Sequence[str], data: TabularData) -> np.ndarray:
    """Mutual information (nats) between each feature and the target over the train rows, in the order given."""
    expressions = [canonical(e) for e in expressions]
    if not expressions:
        return np.zeros(0)
    X = build_matrix(expressions, data)
    estimate = mutual_info_classif if data.task == "classification" else mutual_info_regression
    return estimate(X, data.y_train, n_neighbors=MI_NEIGHBOURS, random_state=MI_SEED)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a whole number >= 0, got {k!r}")
    return int(k)


def _ranked(expressions: Sequence[str], values: np.ndarray) -> list[str]:
    """``expressions`` by decreasing value (the first of equals first)."""
    order = sorted(range(len(expressions)), key=lambda i: (-values[i], i))
    return [expressions[i] for i in order]


def _unique(expressions: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(canonical(e) for e in expressions))


def select_mutual_information(
    expressions: Sequence[str], data: TabularData, k: int, max_correlation: float | None = None
) -> list[str]:
    """The ``k`` features (canonical, deduplicated) of highest mutual information with the target, best first.

    With ``max_correlation``, a feature whose absolute rank (Spearman) correlation with a feature already kept
    exceeds it is passed over for the next one: ``x``, ``log(x)``, ``quantile(x)`` and ``-x`` have rank
    correlation 1, so one of them is kept, not four."""
    k = _check_k(k)
    unique = _unique(expressions)
    order = _ranked(unique, mutual_information(unique, data))
    if max_correlation is None:
        return order[:k]
    ranks = _ranks(build_matrix(order, data))
    kept: list[int] = []
    for i in range(len(order)):
        if len(kept) >= k:
            break
        if not kept or np.max(np.abs(ranks[:, kept].T @ ranks[:, i])) <= max_correlation:
            kept.append(i)
    return [order[i] for i in kept]


def _ranks(X: np.ndarray) -> np.ndarray:
    """Each column's average ranks (ties share theirs), centred and scaled so that the dot product of two columns
    is their Spearman correlation (a constant column is all zero)."""
    ranks = np.empty_like(X)
    for j in range(X.shape[1]):
        sorted_column = np.sort(X[:, j])
        ranks[:, j] = np.searchsorted(sorted_column, X[:, j], "left") + np.searchsorted(sorted_column, X[:, j], "right")
    ranks -= ranks.mean(axis=0)
    norms = np.linalg.norm(ranks, axis=0)
    return ranks / np.where(norms > 0, norms, 1.0)


def select_by_importance(expressions: Sequence[str], data: TabularData, k: int, model: str = "linear") -> list[str]:
    """The ``k`` features most important to ``model`` fitted on all of them (see
    :meth:`~trends.features.evaluation.FeatureScorer.importances`), best first."""
    k = _check_k(k)
    unique = _unique(expressions)
    return _ranked(unique, FeatureScorer(data, model).importances(unique))[:k]


def candidates(data: TabularData, pair_limit: int = PAIR_RAW_LIMIT) -> list[str]:
    """Every expand-reduce candidate: the raw features, every unary transformation of each, and every binary and
    aggregate operation over pairs of raw features (both orders for the operations that are not commutative).
    Pairs are formed among the ``pair_limit`` raw features of highest mutual information only: breast_cancer's 30
    features would give 435 pairs and 2175 pair features, ten give 45 pairs and 360."""
    raw = list(data.feature_names)
    paired = raw if len(raw) <= pair_limit else select_mutual_information(raw, data, pair_limit)
    paired = [name for name in raw if name in set(paired)]  # the dataset's order, for a stable list
    result = raw + [compose(op, name) for op in UNARY for name in raw]
    for op in BINARY + AGGREGATE:
        pairs = itertools.combinations(paired, 2) if op in COMMUTATIVE else itertools.permutations(paired, 2)
        result += [compose(op, a, b) for a, b in pairs]
    return _unique(result)


def expand_reduce(
    data: TabularData,
    k: int | None = None,
    pair_limit: int = PAIR_RAW_LIMIT,
    max_correlation: float | None = MAX_CORRELATION,
) -> list[str]:
    """The expand-reduce baseline: the ``k`` :func:`candidates` of highest mutual information with the target,
    best first (raw features among them if they rank), skipping near-duplicates of a feature already kept (rank
    correlation above ``max_correlation``; None keeps the plain top ``k``). ``k`` defaults to the number of raw
    features + :data:`EXTRA_FEATURES`."""
    if k is None:
        k = data.n_features + EXTRA_FEATURES
    return select_mutual_information(candidates(data, pair_limit), data, k, max_correlation)
