"""Combination rules: how a pool's members become one classifier. Every rule is fit on the validation split only
and reported on the test split.

The rules work on the members' saved probabilities, not on the members. That is why scikit-learn's
``VotingClassifier`` and ``StackingClassifier`` are not used: both ``fit`` (clones of) their estimators on the data
they are given, and half our members are torch networks trained by :mod:`trends.training`; wrapping each saved
probability array in a fake estimator that looks its rows up by index would be more code than the weighted mean
it replaces, and ``StackingClassifier`` would refit every member inside its cross-validation. What scikit-learn
does that we need is used directly: the stacking meta-learner is its ``LogisticRegression`` and its score is
cross-validated with ``cross_val_predict``.

Where a rule is a weighting of the members (averaging, voting, Caruana selection, best single) its result carries
the weights (non-negative, summing to 1), so the ensemble environment and the reports can compare them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from trends.ensemble.metrics import (
    EnsembleScores,
    accuracy,
    check_weights,
    ensemble_proba,
    log_loss,
    member_accuracies,
    score,
)
from trends.ensemble.pool import MemberPool

SKLEARN_THREADS = 1  # BLAS threads of the meta-learner; more only oversubscribe a small shared CPU (see members.py)
METRICS = ("accuracy", "log_loss")  # what Caruana selection hill-climbs


@dataclass(frozen=True)
class EnsembleResult:
    """A combination rule's ensemble: its probabilities on both splits and their scores.

    ``weights`` is ``None`` for stacking, whose meta-learner weighs each member's each class separately.
    ``details`` holds what a rule has to say besides (Caruana's selection counts, stacking's cross-validated score).
    """

    method: str
    weights: np.ndarray | None  # (members,), summing to 1
    val_proba: np.ndarray  # (n_val, classes)
    test_proba: np.ndarray  # (n_test, classes)
    scores: EnsembleScores
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def test_predictions(self) -> np.ndarray:
        """The ensemble's predicted class of every test sample."""
        return self.test_proba.argmax(axis=1)


def _weighted(method: str, pool: MemberPool, weights: np.ndarray | list[float], **details: Any) -> EnsembleResult:
    w = check_weights(weights, pool.n_members)
    val, test = ensemble_proba(pool.val_proba, w), ensemble_proba(pool.test_proba, w)
    return EnsembleResult(method, w, val, test, score(val, test, pool), details)


def soft_vote(pool: MemberPool, weights: np.ndarray | list[float] | None = None) -> EnsembleResult:
    """The (weighted) mean of the members' probabilities, uniform when ``weights`` is None: scikit-learn's
    ``VotingClassifier(voting="soft")`` on saved probabilities."""
    return _weighted("soft_vote", pool, np.ones(pool.n_members) if weights is None else weights)


def average(pool: MemberPool) -> EnsembleResult:
    """Every member counts the same: the baseline any selection or weighting has to beat."""
    return _weighted("average", pool, np.ones(pool.n_members))


def weighted_average(pool: MemberPool, weights: np.ndarray | list[float] | None = None) -> EnsembleResult:
    """The mean of the members' probabilities weighted by ``weights``, or when None by validation accuracy above
    chance (``accuracy - 1/classes``, at least 0): weighting by raw accuracy would barely differ from the uniform
    average (0.3 against 0.9 is a factor of three) and still give a member at chance level a say."""
    if weights is None:
        weights = np.clip(member_accuracies(pool, "val") - 1.0 / pool.n_classes, 0.0, None)
        if weights.sum() <= 0:  # every member at or below chance: nobody is better, so nobody is preferred
            weights = np.ones(pool.n_members)
    return _weighted("weighted_average", pool, weights)


def majority_vote(pool: MemberPool, weights: np.ndarray | list[float] | None = None) -> EnsembleResult:
    """Each member votes for its most probable class (weighted, uniform when None); the ensemble's
    "probabilities" are the vote shares, so its log-loss is that of a hard classifier and mostly large. A tie goes
    to the lowest class index, as in scikit-learn's hard ``VotingClassifier``."""
    w = check_weights(np.ones(pool.n_members) if weights is None else weights, pool.n_members)
    eye = np.eye(pool.n_classes)
    val = np.tensordot(w, eye[pool.val_proba.argmax(axis=2)], axes=1)
    test = np.tensordot(w, eye[pool.test_proba.argmax(axis=2)], axes=1)
    return EnsembleResult("majority_vote", w, val, test, score(val, test, pool))


def best_single(pool: MemberPool) -> EnsembleResult:
    """The member with the highest validation accuracy (the first on a tie): what an ensemble must beat to be
    worth its cost."""
    best = int(np.argmax(member_accuracies(pool, "val")))
    return _weighted("best_single", pool, np.eye(pool.n_members)[best], member=pool.names[best])


def _ranking(proba: np.ndarray, y: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(primary, tie-breaker) keys, both higher-is-better, of a stack of candidate ensembles. Accuracy ties are
    frequent on a few hundred validation samples; breaking them by log-loss prefers the more confident
    ensemble rather than the first member in the list."""
    acc, nll = np.atleast_1d(accuracy(proba, y)), np.atleast_1d(log_loss(proba, y))
    return (acc, -nll) if metric == "accuracy" else (-nll, acc)


def _greedy_selection(
    proba: np.ndarray, y: np.ndarray, metric: str, max_steps: int, sorted_init_n: int
) -> tuple[np.ndarray, list[float]]:
    """Caruana et al.'s hill climb on ``proba`` ``(members, n, classes)``: start from the ``sorted_init_n`` best
    members, then ``max_steps`` times add (with replacement) the member whose addition scores best. Returns the
    selection counts of the best ensemble seen on the way (the earliest, on a tie) and the metric after the
    initialisation and after each step."""
    primary, secondary = _ranking(proba, y, metric)
    counts = np.zeros(len(proba), dtype=np.int64)
    counts[np.lexsort((-secondary, -primary))[:sorted_init_n]] = 1  # lexsort's last key sorts first
    total = np.tensordot(counts.astype(np.float64), proba, axes=1)
    best_key = tuple(float(k[0]) for k in _ranking(total / counts.sum(), y, metric))
    best_counts, path = counts.copy(), [best_key[0]]
    for _ in range(max_steps):
        primary, secondary = _ranking((total + proba) / (counts.sum() + 1), y, metric)  # every candidate at once
        pick = int(np.lexsort((-secondary, -primary))[0])
        counts[pick] += 1
        total += proba[pick]
        key = (float(primary[pick]), float(secondary[pick]))
        path.append(key[0])
        if key > best_key:
            best_key, best_counts = key, counts.copy()
    sign = 1.0 if metric == "accuracy" else -1.0  # the keys are higher-is-better; report the metric itself
    return best_counts, [sign * value for value in path]


def caruana_selection(
    pool: MemberPool,
    metric: str = "accuracy",
    max_steps: int = 50,
    sorted_init_n: int = 1,
    bags: int = 0,
    bag_fraction: float = 0.5,
    seed: int = 0,
) -> EnsembleResult:
    """Ensemble selection (Caruana, Niculescu-Mizil, Crew and Ksikes 2004, "Ensemble selection from libraries of
    models"): greedy forward selection of members *with replacement* on the validation split, so a strong member
    can be chosen several times and the selection counts become weights.

    :param metric: what the hill climb maximises on the validation split, ``"accuracy"`` (ties broken by log-loss)
        or ``"log_loss"`` (minimised)
    :param max_steps: greedy additions after the initialisation; the best ensemble along the way is kept, so more
        steps never give a worse validation score
    :param sorted_init_n: start from the N best single members, each once (the paper's sorted initialisation,
        which keeps the first greedy steps from overfitting a small validation set); 1 is plain greedy selection
    :param bags: 0 selects once from all members; otherwise the paper's bagged selection: this many runs, each on
        a random ``bag_fraction`` of the members, whose normalised counts are averaged. Bagging stops a few
        members that happen to fit the validation split from taking all the weight
    :param seed: which members each bag draws
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if max_steps < 0 or sorted_init_n < 1 or bags < 0 or not 0 < bag_fraction <= 1:
        raise ValueError("need max_steps >= 0, sorted_init_n >= 1, bags >= 0 and 0 < bag_fraction <= 1")
    if bags == 0:
        counts, path = _greedy_selection(pool.val_proba, pool.y_val, metric, max_steps, sorted_init_n)
        return _weighted("caruana", pool, counts, counts=counts, path=path)
    rng = np.random.default_rng(seed)
    bag_size = max(1, round(bag_fraction * pool.n_members))
    weights = np.zeros(pool.n_members)
    for _ in range(bags):
        members = np.sort(rng.choice(pool.n_members, size=bag_size, replace=False))
        counts, _path = _greedy_selection(pool.val_proba[members], pool.y_val, metric, max_steps, sorted_init_n)
        weights[members] += counts / counts.sum()
    return _weighted("caruana", pool, weights, bags=bags)


def stacking(pool: MemberPool, seed: int = 0, folds: int = 5, regularization: float = 1.0) -> EnsembleResult:
    """A multinomial logistic regression that reads every member's probabilities (``members x classes`` features)
    and predicts the class: it can learn that a member is reliable for some classes only, or even that a member
    is consistently wrong in a useful way, which no weighting of members can.

    The meta-learner must be fit on predictions the members did not train on, which here is the validation split;
    so it is fit there, and its own validation score is measured by ``folds``-fold cross-validation
    (``cross_val_predict``, folds shuffled by ``seed``) in ``details``: its plain validation accuracy is a training
    accuracy and flatters it. ``regularization`` is LogisticRegression's ``C``.
    """
    features_val = _stack_features(pool.val_proba)
    meta = LogisticRegression(C=regularization, max_iter=2000)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=SKLEARN_THREADS):
        cv_proba = cross_val_predict(meta, features_val, pool.y_val, cv=cv, method="predict_proba")
        meta.fit(features_val, pool.y_val)
        val = _full_proba(meta, features_val, pool.n_classes)
        test = _full_proba(meta, _stack_features(pool.test_proba), pool.n_classes)
    details = {
        "cv_val_accuracy": float(accuracy(cv_proba, pool.y_val)),
        "cv_val_log_loss": log_loss(cv_proba, pool.y_val),
    }
    return EnsembleResult("stacking", None, val, test, score(val, test, pool), details)


def _stack_features(proba: np.ndarray) -> np.ndarray:
    """``(members, n, classes)`` -> ``(n, members * classes)``: one row per sample, member by member."""
    return np.transpose(proba, (1, 0, 2)).reshape(proba.shape[1], -1)


def _full_proba(model: LogisticRegression, features: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` with a column for every class, also those the model never saw (a tiny validation split
    may miss one)."""
    proba = np.zeros((len(features), n_classes))
    proba[:, model.classes_] = model.predict_proba(features)
    return proba


RULES = {  # the rules by the names scripts and reports use
    "average": average,
    "weighted_average": weighted_average,
    "soft_vote": soft_vote,
    "majority_vote": majority_vote,
    "caruana": caruana_selection,
    "stacking": stacking,
    "best_single": best_single,
}
