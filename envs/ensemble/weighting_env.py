"""``trendgym/EnsembleWeighting-v0``: an agent builds an ensemble from a pool of trained models, adding one member
at a time (with replacement) or weighting them all at once, rewarded by the ensemble's validation accuracy.

This is Caruana et al. (2004), "Ensemble Selection from Libraries of Models", ICML, made a decision process: their
greedy forward selection with replacement is one policy of this env (always add the member that helps most), and
Partalas et al. (2009), "Pruning an Ensemble of Classifiers via Reinforcement Learning", Neurocomputing, learned
such a policy with Q-learning. The env works from the members' saved probabilities
(:class:`~trends.ensemble.pool.MemberPool`) alone: a step is a weighted average of arrays, no model is run.
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
    check_bool,
    check_box_action,
    check_choice,
    check_discrete_action,
    check_int,
    check_options,
    check_path,
    check_render_mode,
)
from envs.rendering import SceneRendering
from trends.ensemble.metrics import accuracy, disagreement, ensemble_proba, log_loss, member_accuracies
from trends.ensemble.pool import MemberPool

REWARDS = ("accuracy", "log-loss")
STARTS = ("empty", "best")
POOLS = ("digits", "mnist1d")
MAX_MEMBERS = 20  # additions per episode: Caruana's ensembles plateau after a few tens of additions
# The bound of max_members, far beyond any use: 500 times the default, more additions than Caruana et al. made from
# libraries of 2000 models; an addition is a weighted average of the pool's probabilities, so it is the time of an
# episode, not memory, that grows with it.
MAX_ADDITIONS = 10_000
N_ENSEMBLE_FEATURES = 3  # accuracy, exp(-log-loss), share of the additions used


@dataclass(frozen=True)
class EpisodeResult:
    """The ensemble one episode ended with, in the order of the episodes."""

    weights: np.ndarray  # (members,), sums to 1 (all zero for an empty ensemble)
    size: int  # members added, with repeats (continuous: members of non-zero weight)
    val_accuracy: float
    val_log_loss: float
    test_accuracy: float
    test_log_loss: float
    episode_return: float


@dataclass(frozen=True)
class EnsembleScore:
    """How an ensemble predicts one split: its accuracy, its log-loss and its class probabilities."""

    accuracy: float
    log_loss: float
    proba: np.ndarray | None  # (samples, classes); None for the empty ensemble, which predicts nothing


class EnsembleWeightingEnv(SceneRendering, gym.Env):
    """
    ## Description

    Caruana et al.'s ensemble selection as a decision process. A pool of ``M`` trained classifiers (logistic
    regression, random forests, small networks... :mod:`trends.ensemble`) has predicted class probabilities for
    every validation and test sample. The ensemble's prediction is the weighted average of its members'
    probabilities; the agent chooses the weights:

    * discrete (default): each step adds one member to the ensemble, with replacement, so a member added ``k``
      times out of ``n`` additions weighs ``k / n``, as in Caruana's forward selection; or stops;
    * continuous (``continuous=True``): one step, one weight per member.

    The agent sees the validation split only; the test split is scored at the end of an episode and reported in
    ``info``, never in the observation or the reward, so that a search on this env cannot select on the test set.

    ## Action Space

    * Discrete: ``Discrete(M + 1)``. Action ``m < M`` adds member ``m``; action ``M`` stops. ``action_masks()``
      (for sb3-contrib's MaskablePPO) allows every member always and the stop whenever the ensemble is not empty.
      An agent that ignores the mask may still stop an empty ensemble: the episode then ends with it (see
      Rewards), so that PPO and DQN can act in the env too. An integer (or a 0-d or one-element integer array) outside
      ``0..M``, or anything else (a bool, a float, a string), raises ``InvalidAction``.
    * Continuous: ``Box(0, 1, (M,), float32)``, one raw weight per member, normalised to sum to 1; values outside
      [0, 1] are clipped, as Gymnasium's continuous-control envs clip, and an all-zero action means no preference:
      the uniform average. An action that is not an array (or list) of ``M`` finite real numbers raises
      ``InvalidAction``.

    ## Observation Space

    ``Box(0, 1, (3 + 3M,), float32)``:

    | index | component | range |
    |---|---|---|
    | 0 | the ensemble's validation accuracy | [0, 1] |
    | 1 | exp(-validation log-loss): the geometric mean of the probability the ensemble gives the true class | [0, 1] |
    | 2 | additions so far / ``max_members`` (continuous: 0 before the step, 1 after) | [0, 1] |
    | 3 .. 3+M | each member's weight in the ensemble | [0, 1] |
    | 3+M .. 3+2M | each member's own validation accuracy | [0, 1] |
    | 3+2M .. 3+3M | each member's disagreement with the ensemble (*) | [0, 1] |

    (*) The share of validation samples on which the member's predicted class and the ensemble's differ.

    The empty ensemble predicts the uniform prior: accuracy ``1/C`` (a uniformly random guess among ``C``
    classes), log-loss ``ln C``, and every member disagrees with it on a share ``1 - 1/C`` of the samples. A tie
    between classes goes to the first (``argmax``).

    ## Rewards

    * ``reward="accuracy"`` (default): the change of the ensemble's validation accuracy with each step, in
      [-1, 1]; the stop is rewarded 0. An episode's return is therefore its final validation accuracy minus the
      start's (``1/C`` from the empty ensemble): no intermediate shaping to game.
    * ``reward="log-loss"``: the decrease of the validation log-loss (the change of the negative log-loss), a
      smoother signal than the accuracy, which moves in steps of ``1/n_val``; probabilities are clipped at
      float32's resolution (:func:`trends.ensemble.metrics.log_loss`), so a step's reward is within +-16.
    * Continuous: the ensemble's validation accuracy (or negative log-loss) itself, in the one step.

    ## Starting State

    ``start="empty"`` (default): no member yet. ``start="best"``: the member of best validation accuracy (the
    first of equals), added once, as Caruana's sorted initialisation with one model. The env draws no random
    numbers: the same actions give the same episode. ``reset(seed=...)`` seeds ``np_random`` (unused) and clears
    the history of episodes.

    ## Episode End

    * Termination: the stop action; or the ``max_members``-th addition, since the size budget is part of the task
      and the observation shows how much of it is used (index 2), so the state it leaves is terminal; the
      continuous variant after its one step.
    * Truncation: never. (Gymnasium's truncation is for limits outside the task, whose state the agent cannot see.)

    ## Information

    Every step (and reset): ``weights`` (M,), ``size`` (members added, with repeats; continuous: members of
    non-zero weight), ``val_accuracy``,
    ``val_log_loss``. The last step adds ``test_accuracy``, ``test_log_loss``, ``distinct_members`` and
    ``stopped`` (the agent stopped, rather than reaching ``max_members``). Every finished episode is appended to
    ``env.history`` (:class:`EpisodeResult`).

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/EnsembleWeighting-v0")  # the digits pool, built and cached on first use
    env = gym.make("trendgym/EnsembleWeighting-v0", pool="mnist1d", reward="log-loss", max_members=10)
    env = gym.make("trendgym/EnsembleWeighting-v0", continuous=True, render_mode="rgb_array")
    ```

    * ``pool``: ``"digits"`` or ``"mnist1d"`` (built by :func:`trends.ensemble.members.load_pool` and cached in
      ``cache_dir``), or a :class:`~trends.ensemble.pool.MemberPool`.
    * ``reward``: ``"accuracy"`` or ``"log-loss"``.
    * ``max_members``: additions per episode, 1 to 10000 (``MAX_ADDITIONS``; discrete only).
    * ``start``: ``"empty"`` or ``"best"`` (discrete only).
    * ``continuous``: one Box step of weights instead of additions.
    * ``cache_dir``: where named pools are cached (None: the pool module's default, ``runs/ensemble/pools``).

    Every argument is checked at once: a wrong type raises a ``TypeError`` (that is also a ``ValueError``), a bad
    value a ``ValueError``, naming it; ``reset`` takes no options.

    :func:`greedy_action` gives the baseline policy: Caruana's greedy forward selection, stopping at its first
    plateau.

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 4,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "ensemble/".
        "metrics_namespace": "ensemble",
        "episode_metrics": ("val_accuracy", "val_log_loss", "size", "distinct_members"),
        # The episodes make one search: its history (drawn by the renderer) outlives reset(), and a seeded reset
        # starts a new search, so evaluate.py and watch.py seed only the first episode of those they play.
        "search_across_episodes": True,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        pool: str | MemberPool = "digits",
        reward: str = "accuracy",
        max_members: int = MAX_MEMBERS,
        start: str = "empty",
        continuous: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        check_choice("reward", reward, REWARDS)
        check_choice("start", start, STARTS)
        max_members = check_int("max_members", max_members, 1, MAX_ADDITIONS)
        continuous = check_bool("continuous", continuous)
        cache_dir = check_path("cache_dir", cache_dir)
        self.render_mode = render_mode
        self.pool = _resolve_pool(pool, cache_dir)
        self.reward_kind, self.max_members, self.start, self.continuous = reward, max_members, start, continuous

        m, c = self.pool.n_members, self.pool.n_classes
        self.empty = EnsembleScore(1.0 / c, math.log(c), None)
        self.member_accuracy = member_accuracies(self.pool, "val").astype(np.float32)
        self.best_member = int(np.argmax(self.member_accuracy))
        if continuous:
            self.action_space: spaces.Space = spaces.Box(0.0, 1.0, (m,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(m + 1)
        self.observation_space = spaces.Box(0.0, 1.0, (N_ENSEMBLE_FEATURES + 3 * m,), dtype=np.float32)

        self.history: list[EpisodeResult] = []
        self._counts = np.zeros(m, dtype=np.int64)
        self._weights = np.zeros(m)
        self._current = self.empty
        self._curve: list[float] = []  # the ensemble's validation accuracy after each step of the episode
        self._return = 0.0
        self._done: bool | None = None  # None before the first reset()
        self._renderer = None

    @property
    def stop_action(self) -> int:
        """The discrete action that stops the episode: the last one."""
        return self.pool.n_members

    @property
    def weights(self) -> np.ndarray:
        """The current ensemble's weights (a copy; all zero for the empty ensemble)."""
        return self._weights.copy()

    # ---- Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_options(options, (), "EnsembleWeightingEnv")
        super().reset(seed=seed)
        if seed is not None:
            self.history = []
        self._counts[:] = 0
        if self.start == "best" and not self.continuous:
            self._counts[self.best_member] = 1
        self._set_weights(self._weights_of_counts())
        self._curve = [self._current.accuracy]
        self._return = 0.0
        self._done = False
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done is None or self._done:
            raise gym.error.ResetNeeded("call reset() before step(), and after the episode's end")
        before = self._current
        stopped = False
        if self.continuous:
            self._set_weights(self._decode_weights(action))
            reward = self._value(self._current)
            terminated = True
        else:
            member = self._decode_member(action)
            stopped = member is None
            if not stopped:
                self._counts[member] += 1
                self._set_weights(self._weights_of_counts())
            reward = self._value(self._current) - self._value(before)
            terminated = stopped or int(self._counts.sum()) - self._start_size() >= self.max_members
        self._curve.append(self._current.accuracy)
        self._return += reward
        info = self._info()
        if terminated:
            self._finish(info, stopped)
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, False, info

    def action_masks(self) -> np.ndarray:
        """The allowed discrete actions, for sb3-contrib's MaskablePPO: every member, and the stop unless the
        ensemble is empty (an empty ensemble is no classifier). All False once the episode has ended."""
        if self.continuous:
            raise AttributeError("the continuous variant has no discrete actions to mask")
        if self._done is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        mask = np.full(self.pool.n_members + 1, not self._done)
        mask[self.stop_action] = not self._done and self._counts.sum() > 0
        return mask

    def make_renderer(self, human: bool) -> Any:
        from envs.ensemble.weighting_rendering import WeightingRenderer

        return WeightingRenderer(human=human)

    def scene(self) -> Any:
        """What the renderer draws: the members' weights, the accuracy curve of the episode, the references."""
        from envs.ensemble.weighting_rendering import WeightingScene

        if self._done is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        best = max(self.history, key=lambda e: e.val_accuracy, default=None)
        return WeightingScene(
            dataset=self.pool.dataset,
            names=tuple(self.pool.names),
            weights=tuple(float(w) for w in self._weights),
            member_accuracy=tuple(float(a) for a in self.member_accuracy),
            curve=tuple(self._curve),
            max_steps=1 if self.continuous else self.max_members,
            best_single=float(self.member_accuracy[self.best_member]),
            best_episode=None if best is None else best.val_accuracy,
            episodes=len(self.history),
            done=bool(self._done),
        )

    # ---- scoring -----------------------------------------------------------------------------------------

    def score(self, weights: np.ndarray, split: str = "val") -> EnsembleScore:
        """The ensemble of ``weights`` (non-negative, summing to 1, or all zero: the empty ensemble) on ``split``
        (``"val"`` or ``"test"``), measured as every combination rule of :mod:`trends.ensemble` measures it."""
        if not np.any(weights):
            return self.empty
        proba = self.pool.val_proba if split == "val" else self.pool.test_proba
        labels = self.pool.y_val if split == "val" else self.pool.y_test
        mixed = ensemble_proba(proba, weights)
        return EnsembleScore(float(accuracy(mixed, labels)), float(log_loss(mixed, labels)), mixed)

    def _value(self, score: EnsembleScore) -> float:
        """What the reward measures of an ensemble: its accuracy, or its negative log-loss."""
        return score.accuracy if self.reward_kind == "accuracy" else -score.log_loss

    # ---- internals ---------------------------------------------------------------------------------------

    def _start_size(self) -> int:
        return 1 if self.start == "best" and not self.continuous else 0

    def _weights_of_counts(self) -> np.ndarray:
        total = self._counts.sum()
        return self._counts / total if total else np.zeros(len(self._counts))

    def _set_weights(self, weights: np.ndarray) -> None:
        self._weights = weights
        self._current = self.score(weights)

    def _decode_member(self, action: Any) -> int | None:
        """The member an action adds, or None for the stop."""
        n = self.pool.n_members
        member = check_discrete_action(self.action_space, action, f" (a member, or {n} to stop)", one_element=True)
        return None if member == n else member

    def _decode_weights(self, action: Any) -> np.ndarray:
        m = self.pool.n_members
        wanted = f"{m} finite weights in [0, 1] (one per member)"
        raw = check_box_action(self.action_space, action, wanted, clip=True)
        total = raw.sum()
        return raw / total if total > 0 else np.full(m, 1.0 / m)

    def _disagreement(self) -> np.ndarray:
        if self._current.proba is None:
            return np.full(self.pool.n_members, 1.0 - 1.0 / self.pool.n_classes)
        return np.asarray(disagreement(self.pool.val_proba, self._current.proba))

    def _observation(self) -> np.ndarray:
        used = (1.0 if self._done else 0.0) if self.continuous else self._additions() / self.max_members
        ensemble = [self._current.accuracy, math.exp(-self._current.log_loss), used]
        obs = np.concatenate([ensemble, self._weights, self.member_accuracy, self._disagreement()])
        return np.clip(obs, 0.0, 1.0).astype(np.float32)

    def _additions(self) -> int:
        return int(self._counts.sum()) - self._start_size()

    def _size(self) -> int:
        return int(np.count_nonzero(self._weights)) if self.continuous else int(self._counts.sum())

    def _info(self) -> dict[str, Any]:
        return {
            "weights": self._weights.copy(),
            "size": self._size(),
            "val_accuracy": self._current.accuracy,
            "val_log_loss": self._current.log_loss,
        }

    def _finish(self, info: dict[str, Any], stopped: bool) -> None:
        """End the episode: score the test split, record the episode, complete ``info``."""
        self._done = True
        test = self.score(self._weights, "test")
        info.update(
            test_accuracy=test.accuracy,
            test_log_loss=test.log_loss,
            distinct_members=int(np.count_nonzero(self._weights)),
            stopped=stopped,
        )
        self.history.append(
            EpisodeResult(
                self._weights.copy(),
                info["size"],
                self._current.accuracy,
                self._current.log_loss,
                test.accuracy,
                test.log_loss,
                self._return,
            )
        )


def _resolve_pool(pool: Any, cache_dir: Path | None) -> MemberPool:
    if isinstance(pool, MemberPool):
        return pool
    check_choice("pool", pool, POOLS, "a MemberPool")
    from trends.ensemble.members import DEFAULT_CACHE, load_pool  # trains the pool on first use: imported late

    return load_pool(pool, cache_dir if cache_dir is not None else DEFAULT_CACHE)


def greedy_action(env: gym.Env) -> int:
    """Caruana et al.'s forward selection as a policy of the discrete env (as LunarLander has its ``heuristic``):
    add the member whose addition scores best on the validation split, measured as the reward measures it
    (accuracy, then log-loss on a tie; log-loss, then accuracy, for ``reward="log-loss"``), or stop when no
    addition beats the current ensemble. :func:`trends.ensemble.combine.caruana_selection` walks on through such a
    plateau and keeps the best ensemble it met; a policy cannot go back, so this one stops at the first."""
    env = env.unwrapped
    if not isinstance(env, EnsembleWeightingEnv) or env.continuous:
        raise ValueError("greedy_action plays the discrete EnsembleWeightingEnv")
    pool, current, size = env.pool, env._current, int(env._counts.sum())
    candidates = pool.val_proba if current.proba is None else (size * current.proba + pool.val_proba) / (size + 1)
    scores = np.atleast_1d(accuracy(candidates, pool.y_val)), -np.atleast_1d(log_loss(candidates, pool.y_val))
    now = current.accuracy, -current.log_loss
    if env.reward_kind == "log-loss":
        scores, now = scores[::-1], now[::-1]
    best = int(np.lexsort((-scores[1], -scores[0]))[0])  # the first of the best
    if current.proba is not None and (scores[0][best], scores[1][best]) <= now:
        return env.stop_action
    return best
