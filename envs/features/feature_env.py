"""``trendgym/FeatureEngineering-v0``: an agent engineers the features of a tabular dataset one transformation at a
time, rewarded by the gain in cross-validated score.

This is Khurana, Samulowitz and Turaga (2018), "Feature Engineering for Predictive Modeling using Reinforcement
Learning", AAAI: the agent walks a graph whose nodes are transformed datasets and whose edges are transformations,
and it is rewarded by the gain in a fixed model's cross-validated performance. Here a node is a feature set (at most
``max_features`` features), an edge adds one derived feature, drops the least useful ones, or stops. The env never
trains anything itself: a :class:`~trends.features.evaluation.FeatureScorer` scores each feature set once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.checks import (
    check_choice,
    check_discrete_action,
    check_float,
    check_int,
    check_options,
    check_render_mode,
    check_storage,
)
from envs.rendering import SceneRendering
from trends.features.datasets import FEATURE_DATASETS, KNOWN_FEATURES, TabularData, load_tabular
from trends.features.evaluation import MODELS, FeatureScorer
from trends.features.selection import select_mutual_information
from trends.features.transforms import AGGREGATE, BINARY, COMMUTATIVE, UNARY, build_matrix

MAX_FEATURES = 16  # feature slots
BUDGET = 8  # transformations (non-stop steps) per episode
FEATURE_COST = 0.005  # score points a feature must earn to be worth adding
MAX_DEPTH = 3  # a transformation whose result would be deeper is masked: log(mul(x0,sqrt(x1))) is as deep as it gets
SELECTIONS = ("drop_weakest", "keep_top_half")
PAIR_OPERATIONS = BINARY + AGGREGATE
SLOT_FEATURES = 7  # active, depth, relevance, importance, redundancy, skew, distinct values
GLOBAL_FEATURES = 5  # features used, score, best score, gain over the start, budget left
SKEW_SCALE = 3.0  # the observed skewness is tanh(skew / SKEW_SCALE)
# Bounds of the sizes, far beyond any use. The action space grows as 4 S^2 with S slots and every step walks all of
# it for the mask: 64 slots (twice the widest dataset, breast_cancer's 30 features) make 16,707 actions and a few ms
# a step, where 1000 slots made 4 million and 1.5 GB. An episode step scores a feature set (0.3 s to tens of
# seconds), so 1000 transformations an episode is hours. More than 20 folds leave too few rows per fold of the
# smallest dataset (wine, 178 rows) to score a fold.
MAX_SLOTS = 64
MAX_BUDGET = 1000
MAX_FOLDS = 20


@dataclass(frozen=True)
class Action:
    """What a discrete action does: ``kind`` is ``"stop"``, ``"unary"``, ``"pair"`` or ``"select"``."""

    kind: str
    op: str = ""  # the transformation or the selection rule
    i: int = -1  # the operand slots
    j: int = -1


@dataclass(frozen=True)
class EpisodeResult:
    """The feature set one episode ended with, in the order of the episodes."""

    expressions: tuple[str, ...]
    score: float
    test_score: float
    best_score: float  # the best score of any feature set of the episode
    best_expressions: tuple[str, ...]
    episode_return: float


class FeatureEngineeringEnv(SceneRendering, gym.Env):
    """
    ## Description

    Automated feature engineering as Khurana et al. (2018) cast it: starting from a dataset's raw features, the
    agent applies one transformation per step (``log(x)``, ``mul(x0,x1)``, ``groupmean(x4,x2)``...;
    :mod:`trends.features.transforms`) to the features it has, each new feature going into a free slot, or prunes
    the set, or stops. A fixed, fast model (``"linear"``: logistic or ridge regression; ``"gbm"``: a small gradient
    boosting) is cross-validated on the train rows after every step, and the reward is the gain in its score,
    minus a cost per feature, so the agent learns which transformations of which features pay off. Test rows are
    never seen by the agent: the test score is reported in ``info`` when an episode ends.

    On ``dataset="synthetic"`` the right answer is known (``y = 3 x0 x1 - 2 x2 / x3 + ...``): a linear model scores
    an R2 of about 0.49 on the raw features and 0.96 with ``mul(x0,x1)`` and ``div(x2,x3)`` added; the product alone
    is worth +0.40.

    ## Action Space

    ``Discrete(1 + 9 S + 2 S(S-1)/2 + 3 S(S-1) + 2)`` for ``S = max_features`` slots (1107 for S = 16), in order:

    | actions | meaning |
    |---|---|
    | 0 | stop |
    | 1 + u S + i | unary operation ``UNARY[u]`` of slot ``i`` (u: log, sqrt, square, reciprocal, zscore, ...) |
    | S(S-1)/2 each | ``add``, ``mul`` (commutative) of slots ``i < j``, pairs in row-major order |
    | S(S-1) each | ``sub``, ``div``, ``groupmean`` of ordered slots ``i != j``, pairs in row-major order |
    | last two | ``drop_weakest`` (drop the least important feature), ``keep_top_half`` (the ceil(n/2) most important) |

    Importance is the model's (:meth:`~trends.features.evaluation.FeatureScorer.importances`; the first of equals
    is kept). :meth:`action_masks` (for sb3-contrib's MaskablePPO) allows the stop always, and a transformation only
    if its operand slots hold features, a slot is free, its result is not already in the set and is at most
    ``MAX_DEPTH`` (3) operations deep; ``drop_weakest`` needs 2 features, ``keep_top_half`` 3.
    :meth:`action_index` and :meth:`describe_action` translate between actions and what they do.

    A masked action is not an error (gymnasium's ``check_env`` and agents without masks send them): it is mapped
    deterministically to ``allowed[action % len(allowed)]`` (``allowed``: the allowed actions in order) and the
    step's ``info["invalid_action"]`` is True, as in the architecture-search env. Anything that is not an integer
    of the action space (or a 0-d or one-element integer array) raises ``InvalidAction``.

    ## Observation Space

    ``Box(-1, 1, (7 S + 5,), float32)`` (117 for S = 16): seven numbers per slot (all 0 for an empty slot), then
    five about the episode. Per-feature statistics are over the train rows.

    | component | meaning | range |
    |---|---|---|
    | slot ``i``, 0 | 1 if the slot holds a feature | {0, 1} |
    | slot ``i``, 1 | its depth / 3 (0: a raw feature) | [0, 1] |
    | slot ``i``, 2 | relevance: abs. correlation with the target (regression), correlation ratio (classes) | [0, 1] |
    | slot ``i``, 3 | its share of the model's importance | [0, 1] |
    | slot ``i``, 4 | redundancy: its largest abs. correlation with another feature of the set | [0, 1] |
    | slot ``i``, 5 | ``tanh(skewness / 3)`` | [-1, 1] |
    | slot ``i``, 6 | distinct values / rows | [0, 1] |
    | 7 S | features in the set / S | [0, 1] |
    | 7 S + 1 | cross-validated score of the set (accuracy, or R2 floored at -1) | [-1, 1] |
    | 7 S + 2 | the best score of the episode so far | [-1, 1] |
    | 7 S + 3 | score minus the starting set's score | [-1, 1] |
    | 7 S + 4 | budget left / budget | [0, 1] |

    ## Rewards

    ``score(after) - score(before) - feature_cost * (n_after - n_before)`` per step (0 for the stop), with
    ``feature_cost=0.005`` by default: dropping a feature gives its cost back, so an episode's return is the
    final set's gain over the starting set minus ``feature_cost`` per feature it added, net. Scores are
    cross-validated accuracy (classification) or R2 (regression) on the train rows, ``folds`` folds, fixed.

    ## Starting State

    The dataset's raw features in slots ``0..n-1``, the rest free. A dataset with more raw features than
    ``max_features`` (breast_cancer's 30 > 16) starts with the ``max_features // 2`` raw features of highest mutual
    information with the target, so there is room to add. The env draws no random numbers: the same actions give
    the same episode, whatever the seed. ``reset(seed=...)`` also clears ``history``.

    ## Episode End

    * Termination: the stop action, or the ``budget``-th non-stop step.
    * Truncation: never (an episode has at most ``budget + 1`` steps).

    ## Information

    Every step and reset: ``score``, ``raw_score`` (the starting set's), ``best_score`` (of the episode),
    ``expressions`` (the set, slot order), ``n_features``; every step: ``action`` (what it did, in words) and
    ``invalid_action``. The last step adds ``test_score`` (the final set, fitted on all train rows, scored on the
    test rows), ``best_expressions`` and ``stopped``; ``history`` holds an :class:`EpisodeResult` per episode.

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/FeatureEngineering-v0")  # synthetic dataset, linear model
    env = gym.make("trendgym/FeatureEngineering-v0", dataset="breast_cancer", model="gbm", render_mode="human")
    env = gym.make("trendgym/FeatureEngineering-v0", storage="sqlite:///runs/features/cache.db", budget=12)
    ```

    * ``dataset``: one of ``synthetic``, ``breast_cancer``, ``wine``, ``diabetes``, or a ``TabularData``.
    * ``model``: ``"linear"`` or ``"gbm"``; ``folds``: cross-validation folds, 2 to 20 (``MAX_FOLDS``).
    * ``max_features``: feature slots S, 2 to 64 (``MAX_SLOTS``: the action space grows as 4 S^2, 16,707 actions
      at 64); ``budget``: non-stop steps per episode, 1 to 1000 (``MAX_BUDGET``).
    * ``feature_cost``: score points charged per feature added (a finite number >= 0).
    * ``storage``: where scores persist (a SQLAlchemy URL or a ``pathlib.Path`` of a SQLite file; None: memory).

    Every argument is checked at once, before anything is built: a wrong type raises a ``TypeError`` (that is
    also a ``ValueError``), a bad value a ``ValueError``, naming it; ``reset`` takes no options.

    :func:`greedy_action` is the one-step-lookahead baseline policy.

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 2,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "features/".
        "metrics_namespace": "features",
        "episode_metrics": ("score", "best_score", "test_score", "n_features"),
        # The episodes make one search: its history (drawn by the renderer) outlives reset(), and a seeded reset
        # starts a new search, so evaluate.py and watch.py seed only the first episode of those they play.
        "search_across_episodes": True,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        dataset: str | TabularData = "synthetic",
        model: str = "linear",
        max_features: int = MAX_FEATURES,
        budget: int = BUDGET,
        feature_cost: float = FEATURE_COST,
        folds: int = 5,
        storage: str | Path | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        check_choice("model", model, MODELS)
        max_features = check_int("max_features", max_features, 2, MAX_SLOTS)
        budget = check_int("budget", budget, 1, MAX_BUDGET)
        folds = check_int("folds", folds, 2, MAX_FOLDS)
        feature_cost = check_float("feature_cost", feature_cost, 0.0)
        check_storage("storage", storage)
        self.render_mode = render_mode
        self.data = _resolve_dataset(dataset)
        self.scorer = FeatureScorer(self.data, model, folds, storage=storage)
        self.model, self.max_features, self.budget = model, max_features, budget
        self.feature_cost = feature_cost

        self.actions = _action_table(self.max_features)
        self.action_space = spaces.Discrete(len(self.actions))
        n_obs = SLOT_FEATURES * self.max_features + GLOBAL_FEATURES
        self.observation_space = spaces.Box(-1.0, 1.0, (n_obs,), dtype=np.float32)
        self._index = {(a.kind, a.op, a.i, a.j): k for k, a in enumerate(self.actions)}

        raw = list(self.data.feature_names)
        if len(raw) > self.max_features:
            chosen = set(select_mutual_information(raw, self.data, self.max_features // 2))
            raw = [name for name in raw if name in chosen]
        self.start: tuple[str, ...] = tuple(raw)
        self.raw_score = self.scorer.score(self.start)
        self.known = KNOWN_FEATURES.get(self.data.name, ())
        self._stats: dict[str, tuple[float, float, float]] = {}  # expression -> relevance, skew, distinct share

        self.history: list[EpisodeResult] = []
        self._slots: list[str | None] = []
        self._done: bool | None = None  # None before the first reset()
        self._renderer = None

    # ---- the feature set -----------------------------------------------------------------------------------

    @property
    def expressions(self) -> tuple[str, ...]:
        """The current feature set, in slot order."""
        return tuple(e for e in self._slots if e is not None)

    @property
    def slots(self) -> tuple[str | None, ...]:
        """Each slot's feature, None for a free slot."""
        return tuple(self._slots)

    def action_index(self, op: str, i: int = -1, j: int = -1) -> int:
        """The action of ``op`` (``"stop"``, a selection rule, a unary operation on slot ``i``, a pair operation on
        slots ``i`` and ``j``; a commutative one in either order)."""
        if op == "stop":
            return 0
        if op in SELECTIONS:
            return self._index[("select", op, -1, -1)]
        if op in COMMUTATIVE and i > j:
            i, j = j, i
        key = ("unary", op, i, -1) if op in UNARY else ("pair", op, i, j)
        if key not in self._index:
            raise ValueError(f"no action applies {op!r} to slots {i}, {j} (slots 0..{self.max_features - 1})")
        return self._index[key]

    def describe_action(self, action: int) -> str:
        """What ``action`` does to the current set, in words: ``mul(x0,x1) -> slot 6``, ``drop x5``, ``stop``."""
        a = self.actions[int(action)]
        if a.kind == "stop":
            return "stop"
        if a.kind == "select":
            dropped = [e for e in self.expressions if e not in self._outcome(a)]
            return f"{a.op}: drop {', '.join(dropped) or 'nothing'}"
        result = self._result(a)
        if result is None:
            slots = f"slot {a.i}" if a.kind == "unary" else f"slots {a.i}, {a.j}"
            return f"{a.op} of {slots} (not applicable)"
        return f"{result} -> slot {self._free_slot()}"

    # ---- Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_options(options, (), "FeatureEngineeringEnv")
        super().reset(seed=seed)
        if seed is not None:
            self.history = []
        self._slots = [*self.start, *[None] * (self.max_features - len(self.start))]
        self._budget_left = self.budget
        self._score = self.raw_score
        self._best = (self.raw_score, self.start)
        self._return = 0.0
        self._curve = [self.raw_score]
        self._last = ("start", 0.0)  # the last action in words, its reward
        self._done = False
        self._refresh()
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done is None or self._done:
            raise gym.error.ResetNeeded("call reset() before step(), and after the episode's end")
        action = self._decode(action)
        invalid = not self._mask[action]
        if invalid:
            allowed = np.flatnonzero(self._mask)
            action = int(allowed[action % len(allowed)])
        chosen = self.actions[action]
        described = self.describe_action(action)
        reward, stopped = 0.0, chosen.kind == "stop"
        if not stopped:
            before_score, before_n = self._score, len(self.expressions)
            self._slots = self._outcome(chosen)
            self._budget_left -= 1
            self._score = self.scorer.score(self.expressions)
            reward = self._score - before_score - self.feature_cost * (len(self.expressions) - before_n)
            if self._score > self._best[0]:
                self._best = (self._score, self.expressions)
            self._refresh()
        terminated = stopped or self._budget_left == 0
        self._return += reward
        self._curve.append(self._score)
        self._last = (described, reward)
        info = self._info()
        info.update(action=described, invalid_action=invalid)
        if terminated:
            self._finish(info, stopped)
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, False, info

    def action_masks(self) -> np.ndarray:
        """The allowed actions (see Action Space), for sb3-contrib's MaskablePPO; all False once the episode has
        ended."""
        if self._done is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        return self._mask & (not self._done)

    def make_renderer(self, human: bool) -> Any:
        from envs.features.feature_rendering import FeatureRenderer

        return FeatureRenderer(human=human)

    def scene(self) -> Any:
        """What the renderer draws: the feature set with each feature's importance, the score curve, the last
        action."""
        from envs.features.feature_rendering import FeatureScene

        if self._done is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        importance = dict(zip(self.expressions, self._importance, strict=True))
        return FeatureScene(
            dataset=self.data.name,
            model=self.model,
            task=self.data.task,
            slots=tuple(self._slots),
            importances=tuple(importance.get(e, 0.0) if e is not None else 0.0 for e in self._slots),
            start=self.start,
            known=self.known,
            curve=tuple(self._curve),
            raw_score=self.raw_score,
            best_score=self._best[0],
            budget=self.budget,
            budget_left=self._budget_left,
            last_action=self._last[0],
            last_reward=self._last[1],
            episodes=len(self.history),
            done=bool(self._done),
        )

    # ---- internals ---------------------------------------------------------------------------------------

    def _decode(self, action: Any) -> int:
        return check_discrete_action(self.action_space, action, " (see action_index())", one_element=True)

    def _free_slot(self) -> int | None:
        return next((k for k, e in enumerate(self._slots) if e is None), None)

    def _result(self, a: Action) -> str | None:
        """The expression a transformation would add (canonical: the slots hold canonical expressions), or None
        when its operands are not there."""
        first = self._slots[a.i]
        if first is None:
            return None
        if a.kind == "unary":
            return f"{a.op}({first})"
        second = self._slots[a.j]
        if second is None:
            return None
        if a.op in COMMUTATIVE and second < first:
            first, second = second, first
        return f"{a.op}({first},{second})"

    def _outcome(self, a: Action) -> list[str | None]:
        """The slots after action ``a`` (not the stop)."""
        slots = list(self._slots)
        if a.kind == "select":
            ranked = sorted(
                (k for k, e in enumerate(slots) if e is not None), key=lambda k: (-self._importance_of[slots[k]], k)
            )
            keep = len(ranked) - 1 if a.op == "drop_weakest" else math.ceil(len(ranked) / 2)
            for k in ranked[keep:]:
                slots[k] = None
        else:
            slots[self._free_slot()] = self._result(a)
        return slots

    def _refresh(self) -> None:
        """Recompute what depends on the set: importances, the mask, the correlations between features."""
        expressions = self.expressions
        self._importance = self.scorer.importances(expressions)
        self._importance_of = dict(zip(expressions, self._importance, strict=True))
        self._mask = self._compute_mask()

    def _compute_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.actions), dtype=bool)
        mask[0] = True
        present = set(self.expressions)
        depth = {e: _depth(e) for e in present}
        room = self._free_slot() is not None
        for k, a in enumerate(self.actions):
            if a.kind == "select":
                mask[k] = len(present) >= (2 if a.op == "drop_weakest" else 3)
            elif a.kind != "stop" and room:
                result = self._result(a)
                if result is not None and result not in present:
                    operands = [self._slots[a.i]] if a.kind == "unary" else [self._slots[a.i], self._slots[a.j]]
                    mask[k] = 1 + max(depth[e] for e in operands) <= MAX_DEPTH
        return mask

    def _feature_stats(self, expression: str) -> tuple[float, float, float]:
        """Relevance to the target, squashed skewness and share of distinct values of a feature (train rows)."""
        found = self._stats.get(expression)
        if found is not None:
            return found
        x = build_matrix([expression], self.data)[:, 0]
        sd = x.std()
        z = (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)
        y = self.data.y_train
        if self.data.task == "classification":  # correlation ratio: sqrt(between-class variance / variance)
            means = np.bincount(y, weights=z) / np.maximum(np.bincount(y), 1)
            relevance = math.sqrt(min(float(np.mean(means[y] ** 2)), 1.0))
        else:
            relevance = abs(float(np.mean(z * (y - y.mean())) / y.std())) if y.std() > 0 else 0.0
        skew = math.tanh(float(np.mean(z**3)) / SKEW_SCALE)
        distinct = len(np.unique(x)) / len(x)
        stats = (min(relevance, 1.0), skew, distinct)
        self._stats[expression] = stats
        return stats

    def _redundancy(self) -> np.ndarray:
        """Each feature's largest absolute correlation with another feature of the set (0 for a lone one)."""
        X = build_matrix(self.expressions, self.data)
        sd = X.std(axis=0)
        Z = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        corr = np.abs(Z.T @ Z) / len(Z)
        np.fill_diagonal(corr, 0.0)
        return np.clip(corr.max(axis=1), 0.0, 1.0) if len(corr) > 1 else np.zeros(len(corr))

    def _observation(self) -> np.ndarray:
        per_slot = np.zeros((self.max_features, SLOT_FEATURES))
        redundancy = dict(zip(self.expressions, self._redundancy(), strict=True))
        for k, e in enumerate(self._slots):
            if e is None:
                continue
            relevance, skew, distinct = self._feature_stats(e)
            per_slot[k] = (1.0, _depth(e) / MAX_DEPTH, relevance, self._importance_of[e], redundancy[e], skew, distinct)
        globals_ = [
            len(self.expressions) / self.max_features,
            self._score,
            self._best[0],
            self._score - self.raw_score,
            self._budget_left / self.budget,
        ]
        obs = np.concatenate([per_slot.ravel(), globals_])
        return np.clip(np.nan_to_num(obs), -1.0, 1.0).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {
            "score": self._score,
            "raw_score": self.raw_score,
            "best_score": self._best[0],
            "expressions": self.expressions,
            "n_features": len(self.expressions),
        }

    def _finish(self, info: dict[str, Any], stopped: bool) -> None:
        self._done = True
        test = self.scorer.test_score(self.expressions)
        info.update(test_score=test, best_expressions=self._best[1], stopped=stopped)
        self.history.append(
            EpisodeResult(self.expressions, self._score, test, self._best[0], self._best[1], self._return)
        )


def _depth(expression: str) -> int:
    """The depth of a canonical expression: its deepest nesting of parentheses."""
    deepest = level = 0
    for ch in expression:
        if ch == "(":
            level += 1
            deepest = max(deepest, level)
        elif ch == ")":
            level -= 1
    return deepest


def _action_table(slots: int) -> tuple[Action, ...]:
    actions = [Action("stop")]
    actions += [Action("unary", op, i) for op in UNARY for i in range(slots)]
    for op in PAIR_OPERATIONS:
        actions += [
            Action("pair", op, i, j)
            for i in range(slots)
            for j in range(slots)
            if (i < j if op in COMMUTATIVE else i != j)
        ]
    actions += [Action("select", op) for op in SELECTIONS]
    return tuple(actions)


def _resolve_dataset(dataset: Any) -> TabularData:
    if isinstance(dataset, TabularData):
        return dataset
    return load_tabular(check_choice("dataset", dataset, FEATURE_DATASETS, "a TabularData"))


def greedy_action(env: gym.Env) -> int:
    """One-step lookahead as a policy (as LunarLander has its ``heuristic``): the allowed action of highest immediate
    reward, or the stop when none is positive. It scores every allowed action's feature set (cached), so a step
    costs one scoring per allowed action: about 0.3 s on the synthetic dataset with the linear model (ridge is
    solved in closed form), tens of seconds on breast_cancer (a logistic regression per set)."""
    env = env.unwrapped
    if not isinstance(env, FeatureEngineeringEnv):
        raise ValueError("greedy_action plays the FeatureEngineeringEnv")
    mask = env.action_masks()
    best, best_reward = 0, 0.0
    n_before = len(env.expressions)
    for action in np.flatnonzero(mask[1:]) + 1:
        slots = env._outcome(env.actions[action])
        expressions = [e for e in slots if e is not None]
        score = env.scorer.score(expressions)
        reward = score - env._score - env.feature_cost * (len(expressions) - n_before)
        if reward > best_reward:
            best, best_reward = int(action), reward
    return best
