"""Automated feature engineering behind one call, :func:`run_feature_search`: the RL agent of Khurana et al. (2018)
and the methods it competes with, on one dataset, model and budget.

=================  ==============================================================================================
``rl``             MaskablePPO learning on ``trendgym/FeatureEngineering-v0`` during the search, as the NAS-RL
                   controller learns during an architecture search: every step it takes is a feature set scored
``random``         uniformly random allowed (masked) actions on the same environment, for the same budget
``expand-reduce``  the standard "generate all, then select" baseline (:func:`trends.features.expand_reduce`):
                   every transformation of every raw feature and pair, the top ones by mutual information kept
``none``           the raw features
=================  ==============================================================================================

The budget counts environment steps, the same for ``rl`` and ``random``: a step is one cross-validated scoring of a
feature set (served from the cache when the set was seen before, as a repeated configuration costs a unit of an
AutoML search's budget but no training) or a stop. Both report the best feature set met at any step of any
episode, by cross-validated score on the train rows; its test score is measured once, at the end. The environment
starts from the raw features (on a dataset wider than its slots, breast_cancer, from the most informative half
of its slots' worth); ``raw_score`` is always that of *every* raw feature, the ``none`` method's.

``expand-reduce`` costs one filter pass over its candidates (reported in ``extra["candidates"]``) and two
scorings: the selected set alone, and the raw features plus the selected ones (how Deep Feature Synthesis is used,
the generated features added to the table). The better of the two by cross-validated score is its answer, so it
is chosen on the train rows like every other method's.

Every scoring goes through a :class:`~trends.features.evaluation.FeatureScorer` whose cache lives in an Optuna
storage (by default the AutoML cache, ``runs/automl/cache.db``; ``storage="memory"`` keeps it in this process):
running the same search again is served from it without a model fitted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the trendgym/ ids, also in a spawned worker)
from trends.automl.evaluator import storage_url
from trends.features.datasets import FEATURE_DATASETS, KNOWN_FEATURES, load_tabular
from trends.features.evaluation import MODELS, FeatureScorer
from trends.features.selection import candidates, expand_reduce
from trends.features.transforms import build_matrix

FEATURE_METHODS = ("rl", "random", "expand-reduce", "none")
SPACE_PREFIX = "features-"  # scripts/search.py's spaces: features-<dataset>
FEATURE_SPACES = tuple(f"{SPACE_PREFIX}{name}" for name in FEATURE_DATASETS)
FEATURE_ENV = "trendgym/FeatureEngineering-v0"
FOUND_CORRELATION = 0.99  # a known feature counts as found when a feature of the set correlates this much with it
RL_SETTINGS: dict[str, Any] = {  # MaskablePPO for budgets of 1e3-1e4 steps (episodes of at most 9 steps)
    "n_steps": 256,  # about 30 episodes per update
    "batch_size": 64,
    "n_epochs": 4,
    "gamma": 1.0,  # the return is the final set's gain: nothing to discount
    "learning_rate": 3e-3,  # with 3e-4 the policy still samples at random after 8k steps
    "ent_coef": 0.01,
}
ER_SETTINGS = ("k", "pair_limit", "max_correlation")  # expand_reduce's keywords


class BudgetSpent(Exception):
    """Raised by :class:`SearchBudget` at the first step past the budget: it ends whatever is searching."""


@dataclass
class FeatureSearchOutcome:
    """What a feature search found and what it cost. Scores are cross-validated accuracy (classification) or R2
    (regression) on the train rows (``score``) and the model fitted on all train rows, scored on the test rows
    (``test_score``)."""

    method: str
    dataset: str
    model: str
    seed: int
    budget: int
    expressions: tuple[str, ...]  # the best feature set found
    score: float
    test_score: float
    raw_score: float  # every raw feature
    raw_test_score: float
    evaluations: int  # budget units spent: feature sets scored (cached or not), stops
    computed: int  # scorings computed rather than served from the cache
    seconds: float
    found: dict[str, bool]  # each known feature of the dataset -> in the best set
    anytime: np.ndarray  # the best score after each evaluation
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gain(self) -> float:
        """Cross-validated score over the raw features'."""
        return self.score - self.raw_score

    @property
    def test_gain(self) -> float:
        return self.test_score - self.raw_test_score


def dataset_of_space(space: str) -> str:
    """``features-wine`` -> ``wine``; a one-line ValueError for anything else."""
    if space not in FEATURE_SPACES:
        raise ValueError(f"unknown feature space {space!r}; choose one of {', '.join(FEATURE_SPACES)}")
    return space.removeprefix(SPACE_PREFIX)


def run_feature_search(
    dataset: str,
    method: str,
    budget: int,
    seed: int = 0,
    model: str = "linear",
    storage: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> FeatureSearchOutcome:
    """Engineer the features of ``dataset`` with ``method`` for ``budget`` steps (``rl`` and ``random``; the other
    methods spend what they need, one or two scorings), scoring with ``model``.

    :param storage: the scores' cache: None for the default SQLite file ``runs/automl/cache.db``, ``"memory"`` for
        one that lives as long as the call, a SQLAlchemy URL or a :class:`~pathlib.Path` of a SQLite file
    :param settings: the method's own: MaskablePPO's keywords over :data:`RL_SETTINGS` (``rl``), ``k``,
        ``pair_limit``, ``max_correlation`` (``expand-reduce``); ``random`` and ``none`` take none
    :param env_kwargs: options of ``trendgym/FeatureEngineering-v0`` (``budget`` per episode, ``feature_cost``,
        ``max_features``)
    """
    if dataset not in FEATURE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(FEATURE_DATASETS)}")
    if method not in FEATURE_METHODS:
        raise ValueError(f"unknown feature method {method!r}; choose one of {', '.join(FEATURE_METHODS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a whole number >= 1, got {budget!r}")
    settings = dict(settings or {})
    url = None if storage == "memory" else storage_url(storage)
    started = time.perf_counter()
    if method in ("rl", "random"):
        env = gym.make(FEATURE_ENV, dataset=dataset, model=model, storage=url, **dict(env_kwargs or {}))
        try:
            search = SearchBudget(env, int(budget))
            _ENV_RUNNERS[method](search, seed, settings)
        finally:
            env.close()
        scorer, best, curve = env.unwrapped.scorer, search.best_expressions, search.anytime
        start = env.unwrapped.start
        extra: dict[str, Any] = {
            "episodes": search.episodes,
            "episode_scores": [round(e.score, 5) for e in env.unwrapped.history],  # each finished episode's final set
            "start": list(start),
            "start_score": scorer.score(start),
        }
    else:
        scorer = FeatureScorer(load_tabular(dataset), model, storage=url)
        best, curve, extra = _STATIC_RUNNERS[method](scorer, settings)
    data = scorer.data
    return FeatureSearchOutcome(
        method=method,
        dataset=dataset,
        model=model,
        seed=seed,
        budget=int(budget),
        expressions=tuple(best),
        score=scorer.score(best),
        test_score=scorer.test_score(best),
        raw_score=scorer.score(data.feature_names),
        raw_test_score=scorer.test_score(data.feature_names),
        evaluations=len(curve),
        computed=scorer.misses,
        seconds=time.perf_counter() - started,
        found=known_features_found(dataset, best),
        anytime=np.asarray(curve, dtype=np.float64),
        extra=extra,
    )


def known_features_found(dataset: str, expressions: tuple[str, ...] | list[str]) -> dict[str, bool]:
    """Whether each of ``dataset``'s known features (:data:`KNOWN_FEATURES`) is in the set: the expression itself
    or one whose absolute correlation with it over the train rows is at least :data:`FOUND_CORRELATION`
    (``mul(x2,reciprocal(x3))`` is ``div(x2,x3)`` too)."""
    known = KNOWN_FEATURES.get(dataset, ())
    if not known:
        return {}
    data = load_tabular(dataset)
    found = {name: name in expressions for name in known}
    missing = [name for name in known if not found[name]]
    if missing and expressions:
        target = _standardised(build_matrix(missing, data))
        have = _standardised(build_matrix(list(expressions), data))
        correlation = np.abs(target.T @ have) / len(target)
        for name, row in zip(missing, correlation, strict=True):
            found[name] = bool(row.max() >= FOUND_CORRELATION)
    return found


def _standardised(X: np.ndarray) -> np.ndarray:
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


# -- the methods that walk the environment --------------------------------------------------------------------


class SearchBudget(gym.Wrapper):
    """Counts the steps of a ``FeatureEngineering-v0`` env against a budget and remembers the best feature set of
    every step of every episode; the step past the budget raises :class:`BudgetSpent`. It passes the env's
    ``action_masks`` on, so MaskablePPO trains through it."""

    def __init__(self, env: gym.Env, budget: int) -> None:
        super().__init__(env)
        self.budget = budget
        self.anytime: list[float] = []  # the best score after each step
        self.best_score = env.unwrapped.raw_score
        self.best_expressions: tuple[str, ...] = env.unwrapped.start
        self.episodes = 0  # episodes completed

    @property
    def spent(self) -> bool:
        return len(self.anytime) >= self.budget

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        if self.spent:
            raise BudgetSpent(f"{self.budget} steps spent")
        obs, reward, terminated, truncated, info = self.env.step(action)
        if info["score"] > self.best_score:
            self.best_score, self.best_expressions = info["score"], tuple(info["expressions"])
        self.anytime.append(self.best_score)
        self.episodes += terminated or truncated
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


def _run_random(search: SearchBudget, seed: int, settings: Mapping[str, Any]) -> None:
    """Uniformly random allowed actions (the stop among them) until the budget is spent."""
    if settings:
        raise ValueError(f"the random method has no settings, got {', '.join(sorted(settings))}")
    rng = np.random.default_rng(seed)
    search.reset(seed=seed)
    while not search.spent:
        action = int(rng.choice(np.flatnonzero(search.action_masks())))
        if search.step(action)[2]:
            search.reset()


def _run_rl(search: SearchBudget, seed: int, settings: Mapping[str, Any]) -> None:
    """MaskablePPO (:data:`RL_SETTINGS`, ``settings`` over them) learning on the env until the budget is spent."""
    import torch
    from sb3_contrib import MaskablePPO

    torch.manual_seed(seed)
    try:
        agent = MaskablePPO("MlpPolicy", search, seed=seed, device="cpu", **{**RL_SETTINGS, **settings})
    except TypeError as error:  # an unknown keyword
        raise ValueError(f"bad setting for MaskablePPO: {error}") from error
    with contextlib.suppress(BudgetSpent):  # the budget ends the learning, mid-rollout
        agent.learn(total_timesteps=search.budget + 1)


_ENV_RUNNERS: dict[str, Callable[[SearchBudget, int, Mapping[str, Any]], None]] = {
    "rl": _run_rl,
    "random": _run_random,
}


# -- the methods that do not search ---------------------------------------------------------------------------

StaticResult = tuple[tuple[str, ...], list[float], dict[str, Any]]


def _run_none(scorer: FeatureScorer, settings: Mapping[str, Any]) -> StaticResult:
    if settings:
        raise ValueError(f"the none method has no settings, got {', '.join(sorted(settings))}")
    raw = scorer.data.feature_names
    return raw, [scorer.score(raw)], {}


def _run_expand_reduce(scorer: FeatureScorer, settings: Mapping[str, Any]) -> StaticResult:
    unknown = sorted(set(settings) - set(ER_SETTINGS))
    if unknown:
        raise ValueError(f"unknown expand-reduce setting(s) {', '.join(unknown)}; choose from {', '.join(ER_SETTINGS)}")
    data = scorer.data
    selected = tuple(expand_reduce(data, **settings))
    with_raw = tuple(dict.fromkeys((*data.feature_names, *selected)))
    curve = [scorer.score(selected)]
    curve.append(max(curve[0], scorer.score(with_raw)))
    best = selected if scorer.score(selected) >= scorer.score(with_raw) else with_raw
    pair_limit = settings.get("pair_limit")
    n_candidates = len(candidates(data) if pair_limit is None else candidates(data, pair_limit))
    return best, curve, {"candidates": n_candidates, "selected": list(selected), "with_raw": best == with_raw}


_STATIC_RUNNERS: dict[str, Callable[[FeatureScorer, Mapping[str, Any]], StaticResult]] = {
    "none": _run_none,
    "expand-reduce": _run_expand_reduce,
}
