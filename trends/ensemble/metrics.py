"""How an ensemble is formed from a pool's probabilities and how it is scored: the one place every combination
rule, the ensemble environment and the reports take these from, so they all measure the same thing.

Every function works on whole arrays with any leading axes, so a rule can score every candidate ensemble of a step
at once (Caruana selection scores one candidate per member per step). Accuracy and log-loss are written in numpy
rather than taken from :mod:`sklearn.metrics` for that reason: sklearn's take one prediction array and validate it
on every call (about a millisecond), ours take a stack of them; a test checks they agree with sklearn's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from trends.ensemble.pool import MemberPool

# Probabilities are stored as float32, so anything below float32's resolution is noise: log-loss clips at it
# (sklearn clips at the eps of the array's dtype, which is the same for float32 input).
PROBA_EPS = float(np.finfo(np.float32).eps)


class EnsembleScores(NamedTuple):
    """An ensemble's accuracy and log-loss on the validation split (what rules fit on) and the test split (what a
    report shows)."""

    val_accuracy: float
    test_accuracy: float
    val_log_loss: float
    test_log_loss: float


def check_weights(weights: np.ndarray | list[float], n_members: int) -> np.ndarray:
    """``weights`` as float64 normalised to sum to 1. ValueError for the wrong length, a negative or non-finite
    weight, or all zeros: an ensemble of nobody has no prediction."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_members,):
        raise ValueError(f"expected {n_members} member weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"member weights must be finite and non-negative, got {w}")
    total = w.sum()
    if total <= 0:
        raise ValueError("at least one member needs a positive weight")
    return w / total


def ensemble_proba(proba: np.ndarray, weights: np.ndarray | list[float]) -> np.ndarray:
    """The weighted mean of the members' probabilities: ``(members, n, classes)`` and ``(members,)`` weights (any
    non-negative scale; they are normalised) -> ``(n, classes)`` float64, rows summing to 1."""
    return np.tensordot(check_weights(weights, proba.shape[0]), proba, axes=1)


def accuracy(proba: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """Share of samples whose most probable class is the label. ``proba`` is ``(..., n, classes)``; a float for one
    prediction, an array over the leading axes for a stack. Ties go to the lowest class index (``np.argmax``)."""
    result = np.mean(proba.argmax(axis=-1) == y, axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def log_loss(proba: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    """Mean negative log-probability of the label (cross-entropy), with probabilities clipped at
    :data:`PROBA_EPS` so that a confident mistake costs about 16 nats rather than infinity. Shapes as
    :func:`accuracy`."""
    p_true = proba[..., np.arange(len(y)), y]
    result = -np.mean(np.log(np.clip(p_true, PROBA_EPS, 1.0)), axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def disagreement(member_proba: np.ndarray, ensemble: np.ndarray) -> float | np.ndarray:
    """Share of samples where a member's most probable class differs from the ensemble's: how much a member could
    still change the ensemble's decisions. ``member_proba`` ``(n, classes)`` gives a float, ``(members, n,
    classes)`` one value per member; ``ensemble`` is ``(n, classes)``."""
    result = np.mean(member_proba.argmax(axis=-1) != ensemble.argmax(axis=-1), axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def member_accuracies(pool: MemberPool, split: str = "val") -> np.ndarray:
    """Each member's accuracy on ``split`` (``"val"`` or ``"test"``), shape ``(members,)``."""
    proba, y = (pool.val_proba, pool.y_val) if split == "val" else (pool.test_proba, pool.y_test)
    return np.asarray(accuracy(proba, y), dtype=np.float64)


def score(val_proba: np.ndarray, test_proba: np.ndarray, pool: MemberPool) -> EnsembleScores:
    """Accuracy and log-loss of one ensemble's validation and test probabilities against ``pool``'s labels."""
    return EnsembleScores(
        float(accuracy(val_proba, pool.y_val)),
        float(accuracy(test_proba, pool.y_test)),
        float(log_loss(val_proba, pool.y_val)),
        float(log_loss(test_proba, pool.y_test)),
    )


def evaluate_weights(pool: MemberPool, weights: np.ndarray | list[float]) -> EnsembleScores:
    """Scores of the weighted average of ``pool``'s members (weights normalised; see :func:`check_weights`)."""
    return score(ensemble_proba(pool.val_proba, weights), ensemble_proba(pool.test_proba, weights), pool)
