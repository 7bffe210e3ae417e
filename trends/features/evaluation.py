"""How good is a set of features? Cross-validated accuracy (classification) or R2 (regression) of a fixed, fast
model on the train rows, computed once per feature set and remembered, in memory and optionally in an Optuna
storage.

The models are deliberately fixed and small: a feature search compares thousands of feature sets, and what it
must measure is what the features add, not what a tuned model could squeeze out of them.

* ``linear``: standardised inputs (clipped at +-:data:`CLIP_SD` standard deviations, so that one extreme value of
  a derived feature in a validation fold cannot send a prediction off to infinity), then logistic regression
  (classification; lbfgs, C=1) or ridge regression (alpha=1). The ridge is solved in closed form with numpy: the
  same model as scikit-learn's pipeline (a test checks it), ten times faster, which matters to an environment
  that scores a feature set every step.
* ``gbm``: a small histogram gradient-boosting model (:data:`GBM_PARAMS`): it needs no feature engineering for
  monotone transformations, so it shows which features still help a non-linear model.

A fold's R2 below :data:`SCORE_FLOOR` counts as the floor: a useless feature set scores about 0, and one wild fold
cannot make a reward of -1000.

The cache key is ``(dataset, model, folds, seed, sorted canonical expressions)``: a feature set is a set, so the
order in which features were added does not matter, and the matrix a model sees is always built in sorted order,
so the score is a function of the set alone. With ``storage`` (a SQLAlchemy URL or a SQLite path), each scored set
is also one COMPLETE trial of the Optuna study :data:`FEATURE_STUDY` (value: the score; user attributes: the
expressions and the key), served to every later scorer sharing the storage, as
:class:`trends.automl.evaluator.Evaluator` does for trained networks.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import ThreadpoolController

from trends.automl.evaluator import KEY_LENGTH, open_storage, quiet_optuna, storage_url
from trends.features.datasets import TabularData
from trends.features.transforms import build_matrix, builder_of, canonical

MODELS = ("linear", "gbm")
FEATURE_STUDY = "trendgym-features"
SCORER_VERSION = 1  # part of every key: bump it when a change here changes scores, or old scores are served
CLIP_SD = 10.0  # standardised inputs of the linear model are clipped to +-CLIP_SD
RIDGE_ALPHA = 1.0
LOGISTIC_MAX_ITER = 1000
SCORE_FLOOR = -1.0  # a fold's R2 never counts below this
SKLEARN_THREADS = 1  # scikit-learn's OpenMP/BLAS threads: more only contend on a shared CPU (gbm: 0.3 s -> 12 s)
GBM_PARAMS = {"max_iter": 30, "max_leaf_nodes": 8, "learning_rate": 0.15, "max_bins": 63, "early_stopping": False}
PERMUTATION_REPEATS = 3  # of the gbm's permutation importances


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finding the thread pools costs ~5 ms; limiting a found one costs nothing


def _one_thread():
    """A context in which scikit-learn's OpenMP and BLAS pools use :data:`SKLEARN_THREADS` threads."""
    return _controller().limit(limits=SKLEARN_THREADS)


def _clip(z: np.ndarray) -> np.ndarray:
    return np.clip(z, -CLIP_SD, CLIP_SD)


def make_model(task: str, model: str = "linear", seed: int = 0) -> BaseEstimator:
    """The scikit-learn estimator :class:`FeatureScorer` uses for ``task`` and ``model`` (an unfitted one)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    classification = task == "classification"
    if model == "gbm":
        gbm = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return gbm(random_state=seed, **GBM_PARAMS)
    head = LogisticRegression(max_iter=LOGISTIC_MAX_ITER) if classification else Ridge(alpha=RIDGE_ALPHA)
    return Pipeline([("scale", StandardScaler()), ("clip", FunctionTransformer(_clip)), ("model", head)])


def feature_key(dataset: str, model: str, folds: int, seed: int, expressions: Sequence[str]) -> str:
    """The cache key of a feature set: a short sha256 of its canonical JSON."""
    text = json.dumps(
        {
            "version": SCORER_VERSION,
            "dataset": dataset,
            "model": model,
            "folds": folds,
            "seed": seed,
            "expressions": sorted(set(expressions)),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


class FeatureScorer:
    """Scores feature sets of one dataset with one model, each set once.

    :param data: the dataset (:func:`~trends.features.datasets.load_tabular`)
    :param model: ``"linear"`` or ``"gbm"`` (see the module docstring)
    :param folds: cross-validation folds over the train rows (stratified for classification), fixed by ``seed``
    :param seed: the folds' shuffle and the gbm's seed
    :param storage: None (memory only), a SQLAlchemy URL or a :class:`~pathlib.Path` of a SQLite file that keeps
        every score across processes and sessions
    """

    def __init__(
        self,
        data: TabularData,
        model: str = "linear",
        folds: int = 5,
        seed: int = 0,
        storage: str | Path | None = None,
    ) -> None:
        if not isinstance(data, TabularData):
            raise ValueError(f"data must be a TabularData (see load_tabular), got {type(data).__name__}")
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= len(data.y_train):
            raise ValueError(f"folds must be a whole number from 2 to the number of train rows, got {folds!r}")
        self.data, self.model, self.folds, self.seed = data, model, int(folds), int(seed)
        self.classification = data.task == "classification"
        self.builder = builder_of(data)
        splitter = StratifiedKFold if self.classification else KFold
        self._folds = list(splitter(self.folds, shuffle=True, random_state=self.seed).split(data.X_train, data.y_train))
        self._scores: dict[tuple[str, ...], float] = {}
        self._test_scores: dict[tuple[str, ...], float] = {}
        self._importances: dict[tuple[str, ...], np.ndarray] = {}
        self.hits = 0  # scores served from memory or storage
        self.misses = 0  # scores computed
        self.url: str | None = None
        self.study: optuna.Study | None = None
        self._stored: dict[str, float] = {}
        self._seen: set[int] = set()
        if storage is not None:
            self.url = storage_url(storage)
            with quiet_optuna():
                self.study = optuna.create_study(
                    storage=open_storage(self.url), study_name=FEATURE_STUDY, direction="maximize", load_if_exists=True
                )
            self._refresh()

    # ---- public ------------------------------------------------------------------------------------------

    def matrix(self, expressions: Sequence[str], rows: str = "train") -> np.ndarray:
        """The features of ``rows`` (``"train"`` or ``"test"``), in the order given; fitted on the train rows."""
        return build_matrix(expressions, self.data, rows)

    def score(self, expressions: Sequence[str]) -> float:
        """Cross-validated accuracy (classification) or R2 (regression) of the model on these features over the
        train rows. The empty set scores a constant prediction (the majority class; the train mean)."""
        key = self._set(expressions)
        if key in self._scores:
            self.hits += 1
            return self._scores[key]
        stored_key = feature_key(self.data.name, self.model, self.folds, self.seed, key)
        if self.study is not None:
            if stored_key not in self._stored:
                self._refresh()
            if stored_key in self._stored:
                self.hits += 1
                self._scores[key] = self._stored[stored_key]
                return self._scores[key]
        self.misses += 1
        value = self._cross_validate(self.matrix(key))
        self._scores[key] = value
        if self.study is not None:
            self._write(stored_key, key, value)
        return value

    def test_score(self, expressions: Sequence[str]) -> float:
        """Accuracy or R2 on the test rows of the model fitted on all train rows (a final report, never a search
        signal)."""
        key = self._set(expressions)
        if key not in self._test_scores:
            X_train, X_test = self.matrix(key), self.matrix(key, "test")
            with _one_thread():
                self._test_scores[key] = self._fit_score(X_train, self.data.y_train, X_test, self.data.y_test)
        return self._test_scores[key]

    def importances(self, expressions: Sequence[str]) -> np.ndarray:
        """Each feature's share of the model's importance (non-negative, summing to 1; uniform when the model uses
        none), in the order of ``expressions``: the absolute standardised coefficients of the linear model (their
        mean over classes), or the gbm's permutation importances on the train rows. Fitted on all train rows."""
        names = [canonical(e) for e in expressions]
        key = self._set(names)
        if not key:
            return np.zeros(0)
        if key not in self._importances:
            self._importances[key] = self._fit_importances(key)
        by_name = dict(zip(key, self._importances[key], strict=True))
        return np.array([by_name[n] for n in names])

    def __repr__(self) -> str:
        return (
            f"FeatureScorer({self.data.name!r}, model={self.model!r}, folds={self.folds}, seed={self.seed}, "
            f"scored={len(self._scores)})"
        )

    # ---- models ------------------------------------------------------------------------------------------

    @staticmethod
    def _set(expressions: Sequence[str]) -> tuple[str, ...]:
        if isinstance(expressions, str):
            raise ValueError("expressions must be a sequence of feature expressions, not one string")
        return tuple(sorted({canonical(e) for e in expressions}))

    def _cross_validate(self, X: np.ndarray) -> float:
        y = self.data.y_train
        with _one_thread():
            scores = [self._fit_score(X[train], y[train], X[val], y[val]) for train, val in self._folds]
        return float(np.mean(scores))

    def _fit_score(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> float:
        """The score on ``(X_val, y_val)`` of the model fitted on ``(X, y)``."""
        if X.shape[1] == 0:
            prediction = np.full(len(y_val), np.bincount(y).argmax() if self.classification else y.mean())
        elif self.model == "linear" and not self.classification:
            prediction = _ridge_predict(X, y, X_val)
        else:
            prediction = make_model(self.data.task, self.model, self.seed).fit(X, y).predict(X_val)
        if self.classification:
            return float(np.mean(prediction == y_val))
        return max(_r2(y_val, prediction), SCORE_FLOOR)

    def _fit_importances(self, key: tuple[str, ...]) -> np.ndarray:
        X, y = self.matrix(key), self.data.y_train
        if self.model == "linear" and not self.classification:
            raw = np.abs(_ridge_fit(X, y)[0])
        else:
            with _one_thread():
                fitted = make_model(self.data.task, self.model, self.seed).fit(X, y)
                if self.model == "linear":
                    raw = np.abs(np.atleast_2d(fitted[-1].coef_)).mean(axis=0)
                else:
                    result = permutation_importance(fitted, X, y, n_repeats=PERMUTATION_REPEATS, random_state=self.seed)
                    raw = np.clip(result.importances_mean, 0.0, None)
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0)
        total = raw.sum()
        return raw / total if total > 0 else np.full(len(key), 1.0 / len(key))

    # ---- storage -----------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Index the trials written since the last refresh, by this scorer or any other sharing the storage."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number in self._seen:
                continue
            self._seen.add(trial.number)
            key = trial.user_attrs.get("key")
            if key is not None and key not in self._stored and trial.value is not None:
                self._stored[key] = float(trial.value)

    def _write(self, stored_key: str, expressions: tuple[str, ...], value: float) -> None:
        self._refresh()
        if stored_key in self._stored:  # another process scored it meanwhile: one trial per set
            return
        attrs = {
            "key": stored_key,
            "dataset": self.data.name,
            "model": self.model,
            "folds": self.folds,
            "seed": self.seed,
            "expressions": list(expressions),
        }
        trial = optuna.trial.create_trial(state=TrialState.COMPLETE, value=value, user_attrs=attrs)
        with quiet_optuna():
            self.study.add_trial(trial)
        self._stored[stored_key] = value


def _standardise(X: np.ndarray, X_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both tables scaled by ``X``'s mean and standard deviation (a constant column: by 1, as StandardScaler
    does), then clipped at +-CLIP_SD."""
    mean, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0), 1.0, sd)
    return _clip((X - mean) / sd), _clip((X_val - mean) / sd)


def _ridge_fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of ridge regression (alpha :data:`RIDGE_ALPHA`, intercept unpenalised) on the
    standardised, clipped ``X``: scikit-learn's ``Ridge`` in the linear pipeline, in closed form."""
    Z, _ = _standardise(X, X[:0])
    z_mean, y_mean = Z.mean(axis=0), y.mean()
    Zc = Z - z_mean
    gram = Zc.T @ Zc + RIDGE_ALPHA * np.eye(Z.shape[1])
    coef = np.linalg.solve(gram, Zc.T @ (y - y_mean))
    return coef, float(y_mean - z_mean @ coef)


def _ridge_predict(X: np.ndarray, y: np.ndarray, X_val: np.ndarray) -> np.ndarray:
    _, Z_val = _standardise(X, X_val)
    coef, intercept = _ridge_fit(X, y)
    return Z_val @ coef + intercept


def _r2(y: np.ndarray, prediction: np.ndarray) -> float:
    residual = float(np.sum((y - prediction) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if not math.isfinite(residual):
        return SCORE_FLOOR
    return 1.0 - residual / total if total > 0 else 0.0
