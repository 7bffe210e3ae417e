"""``trendgym/ArchitectureSearch-v0`` and ``trendgym/HyperparamSearch-v0``: an RL controller searches a space of
networks one decision at a time, as in Zoph & Le (2017), "Neural Architecture Search with Reinforcement
Learning", ICLR.

An episode is one configuration; the search is the sequence of episodes. The env never trains anything itself: it
asks a :class:`~trends.automl.backends.Backend` (the space's table by default) for the record of each configuration
it completes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.checks import (
    ArgumentTypeError,
    check_bool,
    check_discrete_action,
    check_float,
    check_options,
    check_render_mode,
    check_storage,
    shown,
)
from envs.rendering import SceneRendering
from trends.automl.backends import BACKENDS, Backend, make_backend
from trends.automl.space import SPACES, Config, SearchSpace, get_space

EVALUATIONS_SCALE = 4.0  # decades: the observed evaluation count is log10(1 + n) / 4, so 1 at 9999 evaluations
SEARCH_FEATURES = 3  # best validation accuracy, last validation accuracy, scaled evaluation count


@dataclass
class _Node:
    """A partial configuration of the space, and all the env needs of it, computed once per search space.

    ``path`` is the sequence of option indices chosen so far (one per applicable decision): the node's key and
    a cheap key for counting distinct configurations. ``features`` is the static part of the observation.
    """

    path: tuple[int, ...]
    config: Config
    decision: int | None  # the next decision's index; None when the configuration is complete
    mask: np.ndarray  # bool (max_options,): the next decision's allowed options, padding False
    allowed: np.ndarray  # int: the indices where mask is True
    features: np.ndarray  # float32: choices one-hot, current decision one-hot, mask
    children: dict[int, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode (one configuration) scored, in the order of the episodes."""

    config: Config
    val_accuracy: float
    test_accuracy: float
    parameters: int
    reward: float


class SearchEnv(SceneRendering, gym.Env):
    """
    ## Description

    An RL controller in the manner of Zoph & Le (2017, "Neural Architecture Search with Reinforcement Learning"):
    it designs a child network one decision at a time (a layer's type, then its width, its kernel, whether it
    has a skip connection, then the next layer...; or a learning rate, a batch size, a depth...) and is rewarded
    with the child's validation accuracy once the configuration is complete. An episode is one configuration; a
    *search* is the sequence of episodes, and the env keeps its history: every evaluated configuration, the best
    so far, how many evaluations it has cost. This is the loop of NAS-RL and ENAS with the controller's REINFORCE
    replaced by any Gymnasium agent (PPO, MaskablePPO, DQN...).

    The decisions are those of a :class:`~trends.automl.space.SearchSpace`: conditional (a kernel is chosen only
    for a convolution, the next layer only if the controller did not stop) and constrained (no convolution after
    a dense layer). Decisions that do not apply are skipped, so an episode is as long as its configuration has
    choices: 3 to 11 steps in ``mnist1d-arch``, 3, 6 or 7 in ``digits-hparams``. The child is scored by a backend:
    the space's tabular benchmark by default (a dictionary lookup of a training done once with the space's fixed
    recipe, as NAS-Bench-101/201 do: a step costs microseconds), or a real training through the cached
    evaluator.

    ## Action Space

    ``Discrete(max_options)``, the largest option count of the space's decisions (3 for ``mnist1d-arch``,
    5 for ``digits-hparams``): the index of the option chosen for the current decision. ``action_masks()``
    returns which indices are allowed now (for sb3-contrib's MaskablePPO): True exactly for the options of the
    current decision that the earlier choices allow, False for the padding beyond its option count.

    An action that is masked, or beyond the current decision's option count, is not an error (a policy without
    masks, or gymnasium's ``check_env`` stepping random actions, will take some): it is mapped deterministically
    to ``allowed[action % len(allowed)]``, where ``allowed`` lists the allowed option indices in order, and the
    step's ``info["invalid_action"]`` is True. Anything that is not an integer of the action space (a float, an
    array of another shape, a negative number, ``max_options`` or more) raises ``InvalidAction``.

    ## Observation Space

    ``Box(0, 1, (n,), float32)`` with ``n = sum of the option counts + number of decisions + max_options + 3``
    (44 for ``mnist1d-arch``, 41 for ``digits-hparams``), in this order:

    | part | size | meaning | range |
    |---|---|---|---|
    | choices | sum of option counts | per decision, one-hot of its chosen option (zeros: not yet, or n/a) | {0, 1} |
    | decision | number of decisions | one-hot of the current decision; zeros once the configuration is done | {0, 1} |
    | mask | max_options | the current decision's allowed options (``action_masks()``) | {0, 1} |
    | best | 1 | best validation accuracy of the search so far (0 before the first evaluation) | [0, 1] |
    | last | 1 | validation accuracy of the last configuration evaluated (0 before the first) | [0, 1] |
    | evaluations | 1 | ``min(log10(1 + n) / 4, 1)`` for ``n`` evaluations: 0.25 at 9, 0.5 at 99, 1 at 9999 | [0, 1] |

    The logarithm keeps the count informative over the whole life of a search, from tens to thousands of
    configurations, where ``n / 100`` would saturate early.

    ## Rewards

    0 for every decision except the one that completes the configuration; that one is rewarded with

    ``val_accuracy - size_penalty * log10(parameters)``

    in [0, 1] with the default ``size_penalty=0``: the child's validation accuracy, as in Zoph & Le. A positive
    ``size_penalty`` is the efficient-model trend's option (as MnasNet and the multi-objective NAS rewards trade
    accuracy for size): 0.02 costs a 10x larger network two points of accuracy. A configuration whose training
    diverged scores what the backend recorded (chance-level accuracy); a non-finite accuracy counts as 0.

    ## Starting State

    No configuration chosen; the current decision is the space's first. The search's state (best, last,
    evaluations) carries over from earlier episodes of the same search:

    * ``reset(seed=k)`` starts a **new search**: the history is cleared, so a seeded rollout is reproducible;
    * ``reset()`` without a seed **continues** the search (the next episode of the same search, which is what an
      RL agent's training loop does between episodes);
    * ``reset(options={"new_search": True})`` also clears the history, without a seed (a bool; any other option
      is refused).

    The env draws no random numbers: given the same actions, the same search gives the same observations.

    ## Episode End

    * Termination: the decision that completes the configuration (every applicable decision made).
    * Truncation: never; an episode has at most one step per decision of the space.

    ## Information

    Every step: ``decision`` (the name of the decision just made) and ``invalid_action``. The completing step
    adds ``config`` (the configuration, a dict), ``val_accuracy``, ``test_accuracy``, ``parameters``, ``flops``,
    ``seconds`` (what its training cost), ``best_val_accuracy`` and ``best_test_accuracy`` (the test accuracy of
    the best configuration by validation), ``evaluations`` and ``distinct_evaluations`` of the search so far.
    ``reset`` returns the search's ``evaluations``, ``distinct_evaluations``, ``best_val_accuracy`` and
    ``best_test_accuracy`` (NaN before the first evaluation). ``history`` holds every :class:`EpisodeResult`.

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/ArchitectureSearch-v0")  # mnist1d-arch on its table
    env = gym.make("trendgym/ArchitectureSearch-v0", size_penalty=0.02, render_mode="human")
    env = gym.make("trendgym/HyperparamSearch-v0", backend="train", storage="sqlite:///runs/automl/cache.db")
    ```

    * ``space``: the name of a search space (``mnist1d-arch``, ``mnist1d-hparams``, ``digits-hparams``) or a
      :class:`~trends.automl.space.SearchSpace`.
    * ``backend``: ``"table"`` (the space's tabular benchmark), ``"train"`` (train each new configuration
      through the cached evaluator) or any object with the Backend protocol (``.space``, ``.evaluate(config)``)
      whose space is this env's, e.g. a search runner's backend that records every evaluation.
    * ``storage``, ``device``: the evaluator's storage (a SQLAlchemy URL or a ``pathlib.Path`` of a SQLite file;
      None: ``runs/automl/cache.db``) and torch device, for ``backend="train"``.
    * ``size_penalty``: the weight of ``log10(parameters)`` subtracted from the reward (a finite number >= 0).

    The env has no size argument to bound: its sizes are the search space's. Every argument is checked at once: a
    wrong type raises a ``TypeError`` (that is also a ``ValueError``), a bad value a ``ValueError``, naming it.

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 4,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "search/".
        "metrics_namespace": "search",
        "episode_metrics": ("val_accuracy", "best_val_accuracy", "parameters", "evaluations"),
        # The episodes make one search: its history (drawn by the renderer) outlives reset(), and a seeded reset
        # starts a new search, so evaluate.py and watch.py seed only the first episode of those they play.
        "search_across_episodes": True,
        # Episode metrics that describe the whole search so far: an evaluation reports them at the search's end.
        "search_metrics": ("best_val_accuracy", "evaluations"),
    }

    def __init__(
        self,
        render_mode: str | None = None,
        space: str | SearchSpace = "mnist1d-arch",
        backend: str | Backend = "table",
        storage: str | Path | None = None,
        size_penalty: float = 0.0,
        device: str = "cpu",
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        self.space = _resolve_space(space)
        size_penalty = check_float("size_penalty", size_penalty, 0.0)
        check_storage("storage", storage)  # checked even when the backend given makes no use of it
        if not isinstance(device, str):
            raise ArgumentTypeError(f"device must be a str such as 'cpu', 'cuda' or 'auto', got {shown(device)}")
        self.render_mode = render_mode
        self.size_penalty = size_penalty
        self.backend = _resolve_backend(self.space, backend, storage, device)

        decisions = self.space.decisions
        self._n_decisions = len(decisions)
        self._max_options = self.space.max_options
        # Offsets of each decision's one-hot in the observation, then of the other parts.
        self._choice_offsets = np.cumsum([0] + [len(d.options) for d in decisions])[:-1].tolist()
        self._decision_offset = sum(len(d.options) for d in decisions)
        self._mask_offset = self._decision_offset + self._n_decisions
        self._search_offset = self._mask_offset + self._max_options
        n_features = self._search_offset + SEARCH_FEATURES
        self.action_space = spaces.Discrete(self._max_options)
        self.observation_space = spaces.Box(0.0, 1.0, (n_features,), dtype=np.float32)

        self._root = self._make_node((), {})
        self._node: _Node | None = None
        self.history: list[EpisodeResult] = []
        self._distinct: set[tuple[int, ...]] = set()
        self._best: int | None = None  # index in history of the best validation accuracy
        self._renderer = None

    # ---- the search --------------------------------------------------------------------------------------

    def new_search(self) -> None:
        """Forget the history: the next episode is the first of a new search."""
        self.history = []
        self._distinct = set()
        self._best = None

    @property
    def best(self) -> EpisodeResult | None:
        """The search's best configuration by validation accuracy so far (the first of equals)."""
        return None if self._best is None else self.history[self._best]

    @property
    def config(self) -> Config:
        """The configuration being built (complete after the last step of an episode)."""
        return dict(self._node.config) if self._node is not None else {}

    @property
    def decision(self) -> int | None:
        """The index of the current decision; None before reset() and once the configuration is complete."""
        return None if self._node is None else self._node.decision

    # ---- Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = check_options(options, ("new_search",), "SearchEnv")
        new_search = check_bool("options['new_search']", options.get("new_search", False))
        super().reset(seed=seed)
        if seed is not None or new_search:
            self.new_search()
        self._node = self._root
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._search_info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        node = self._node
        if node is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if node.decision is None:
            raise gym.error.ResetNeeded("the configuration is complete; call reset() to start the next one")
        action = self._decode(action)
        invalid = not node.mask[action]
        if invalid:
            action = int(node.allowed[action % len(node.allowed)])
        child = node.children.get(action)
        if child is None:
            child = node.children[action] = self._make_node(
                (*node.path, action), self.space.choose(node.config, action)
            )
        info: dict[str, Any] = {"decision": self.space.decisions[node.decision].name, "invalid_action": invalid}
        reward = 0.0
        terminated = child.decision is None
        if terminated:  # if the backend raises (a budget spent, a failed training), the env stays where it was
            reward = self._evaluate(child, info)
        self._node = child
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """The allowed options of the current decision (length ``max_options``), for sb3-contrib's MaskablePPO.
        All False once the configuration is complete: there is no decision left until reset()."""
        if self._node is None:
            raise gym.error.ResetNeeded("call reset() before action_masks()")
        return self._node.mask.copy()

    def make_renderer(self, human: bool) -> Any:
        from envs.automl.search_rendering import SearchRenderer

        return SearchRenderer(human=human)

    def scene(self) -> Any:
        """What the renderer draws: the configuration being built and the search's history."""
        from envs.automl.search_rendering import SearchScene

        if self._node is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return SearchScene.of(self.space, self._node.config, self._node.decision, self._node.mask, self.history)

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Number keys for ``gymnasium.utils.play``: 1 chooses the first option, 2 the second..."""
        return {(ord("1") + i,): i for i in range(min(self._max_options, 9))}

    # ---- internals ---------------------------------------------------------------------------------------

    def _decode(self, action: Any) -> int:
        return check_discrete_action(self.action_space, action, " (an option of the current decision)")

    def _make_node(self, path: tuple[int, ...], config: Config) -> _Node:
        """The node of a partial configuration: its next decision, mask and observation features. Called once per
        partial configuration the env meets (the space's walk is the slow part; the node tree caches it)."""
        decision = self.space.next_decision(config)
        mask = np.zeros(self._max_options, dtype=bool)
        features = np.zeros(self._search_offset, dtype=np.float32)
        for name, value in config.items():
            i = self.space.names.index(name)
            features[self._choice_offsets[i] + self.space.decisions[i].index(value)] = 1.0
        if decision is not None:
            options = self.space.valid_options(config)
            mask[: len(options)] = options
            features[self._decision_offset + decision] = 1.0
            features[self._mask_offset : self._search_offset] = mask
        return _Node(path, config, decision, mask, np.flatnonzero(mask), features)

    def _evaluate(self, node: _Node, info: dict[str, Any]) -> float:
        """Score the completed configuration through the backend, record it in the history, fill ``info``."""
        record = self.backend.evaluate(dict(node.config))
        val = float(record.val_accuracy) if math.isfinite(record.val_accuracy) else 0.0
        test = float(record.test_accuracy) if math.isfinite(record.test_accuracy) else 0.0
        parameters = int(record.parameters)
        reward = val - self.size_penalty * math.log10(max(parameters, 1))
        self.history.append(EpisodeResult(dict(node.config), val, test, parameters, reward))
        self._distinct.add(node.path)
        if self._best is None or val > self.history[self._best].val_accuracy:
            self._best = len(self.history) - 1
        info.update(
            config=dict(node.config),
            val_accuracy=val,
            test_accuracy=test,
            parameters=parameters,
            flops=int(record.flops),
            seconds=float(record.seconds),
            **self._search_info(),
        )
        return reward

    def _observation(self) -> np.ndarray:
        obs = np.empty(self.observation_space.shape, dtype=np.float32)
        obs[: self._search_offset] = self._node.features
        n = len(self.history)
        obs[self._search_offset] = self.history[self._best].val_accuracy if n else 0.0
        obs[self._search_offset + 1] = self.history[-1].val_accuracy if n else 0.0
        obs[self._search_offset + 2] = min(math.log10(1 + n) / EVALUATIONS_SCALE, 1.0)
        return obs

    def _search_info(self) -> dict[str, Any]:
        best = self.best
        return {
            "best_val_accuracy": best.val_accuracy if best else math.nan,
            "best_test_accuracy": best.test_accuracy if best else math.nan,
            "evaluations": len(self.history),
            "distinct_evaluations": len(self._distinct),
        }


def _resolve_space(space: Any) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, str):
        return get_space(space)
    raise ArgumentTypeError(f"space must be one of {', '.join(SPACES)} or a SearchSpace, got {shown(space)}")


def _resolve_backend(space: SearchSpace, backend: Any, storage: str | Path | None, device: str) -> Backend:
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or a Backend object")
        return make_backend(space, backend, storage=storage, device=device)
    if not callable(getattr(backend, "evaluate", None)) or not isinstance(getattr(backend, "space", None), SearchSpace):
        raise ArgumentTypeError(
            f"backend must be 'table', 'train' or an object with .space and .evaluate(), got {shown(backend)}"
        )
    if backend.space.name != space.name:
        raise ValueError(f"the backend scores space {backend.space.name!r}, but the env searches {space.name!r}")
    return backend
