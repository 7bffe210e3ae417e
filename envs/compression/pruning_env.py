"""``trendgym/Pruning-v0``: an agent picks how much of each layer of a trained network to keep, one layer at a
time, under a FLOPs (or parameter) budget, as in He et al. (2018), "AMC: AutoML for Model Compression and
Acceleration on Mobile Devices", ECCV.

The env prunes a model of :mod:`trends.compression.zoo` with :func:`trends.compression.prune.prune_structured`
and scores it without fine-tuning, as AMC does during its search; every cost is computed exactly from the channel
counts (the same numbers ``count_flops`` and ``count_parameters`` give on the pruned network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from envs.checks import (
    check_box_action,
    check_choice,
    check_float,
    check_options,
    check_path,
    check_render_mode,
)
from envs.rendering import SceneRendering
from trends.compression.prune import NORMS, coupled_layers, prune_structured
from trends.compression.zoo import DEFAULT_CACHE, ZOO, TrainedModel, load_trained
from trends.models import FLOP_LAYERS, Block

REWARDS = ("error", "flops-log")  # AMC's R_err and R_FLOPs
TARGETS = ("flops", "params")
N_FEATURES = 10  # AMC's layer embedding: index, type, in, out, kernel, stride, cost, reduced, rest, previous action
EVAL_BATCH_SIZE = 1024  # samples per forward call when scoring a pruned network
TORCH_THREADS = 1  # small networks score fastest on one thread, and the env then shares a CPU politely


@dataclass(frozen=True)
class _WeightLayer:
    """A convolution or linear layer as the cost model sees it. Its input and output channels belong to a group of
    coupled prunable channels (an index into the env's groups) or are fixed (None: the network's input, the
    classes)."""

    in_group: int | None
    out_group: int | None
    in_channels: int
    out_channels: int
    macs_per_pair: int  # multiply-accumulates per (input channel, output channel) pair: kernel x output length
    weights_per_pair: int  # kernel size (1 for a linear layer)
    bias: bool


@dataclass(frozen=True)
class _Group:
    """Prunable layers whose output channels are removed together; the first one's preserve ratio applies."""

    names: tuple[str, ...]
    kind: str  # "conv" or "dense"
    in_channels: int  # of the first layer, before pruning
    out_channels: int
    kernel: int


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode (one pruned network) scored, in the order of the episodes."""

    preserve_ratios: dict[str, float]
    flops_ratio: float
    params_ratio: float
    val_accuracy: float
    test_accuracy: float
    reward: float


class PruningEnv(SceneRendering, gym.Env):
    """
    ## Description

    AMC's channel-pruning agent (He et al. 2018, "AMC: AutoML for Model Compression and Acceleration on Mobile
    Devices"): the env walks a trained network layer by layer, and at each layer the agent chooses the share of its
    output channels (neurons) to keep. Once every layer is decided, the network is pruned (structured: whole
    channels are removed with their weights, so it really gets smaller and faster; the channels of lowest L1 norm
    go first) and scored on the validation split without fine-tuning, as AMC scores its candidates. The budget is
    enforced by the env, not learned: whatever the agent does, the pruned network keeps at most ``preserve`` of the
    original FLOPs (or parameters), so the agent only has to learn *where* to prune.

    Layers whose channels a residual addition ties to an earlier layer's lose the same channels (an identity skip
    adds them up channel by channel), so a decision for them would have no effect: the env has one step per group
    of coupled layers (:func:`trends.compression.prune.coupled_layers`), taken at its first layer. ``mnist1d-cnn``
    has 3 steps (``conv1``+``conv2``, ``conv3``, ``dense1``); ``digits-mlp`` has 2 (``dense1``, ``dense2``). The
    classifier keeps its outputs, the classes.

    ## Action Space

    ``Box(0, 1, (1,), float32)``: the preserve ratio of the current layer, mapped linearly into
    ``[min_preserve, 1]`` (0 keeps ``min_preserve`` of the channels, 1 keeps them all); a layer keeps
    ``max(1, round(ratio x channels))`` channels, as :func:`~trends.compression.prune.prune_structured` rounds.
    Values outside [0, 1] are clipped, as Gymnasium's continuous-control envs clip; an action that is not an array
    (or list) of one finite real number, of shape ``(1,)`` (a bool, a string, a complex number, NaN, a scalar)
    raises ``InvalidAction``.

    The ratio is then lowered if needed so that the budget stays reachable (AMC's Algorithm 2): the env keeps the
    largest channel count for which the choices so far, this layer's, and the most the later layers can remove (all
    of them at ``min_preserve``) stay within the budget. ``info["clipped"]`` tells when that happened. So an
    episode of all-ones actions ends at the budget, with the last layers cut hardest.

    ## Observation Space

    ``Box(0, 1, (10,), float32)``, the current layer's embedding of AMC. The static features are min-max scaled
    over the network's layers (a feature that is the same for every layer is 0); the dynamic ones are shares of
    the original network's cost, in the ``target`` measure (FLOPs or parameters):

    | index | feature | range |
    |---|---|---|
    | 0 | layer index t (of the decisions) | [0, 1] |
    | 1 | type: 1 convolution, 0 dense | {0, 1} |
    | 2 | input channels of the layer, before pruning | [0, 1] |
    | 3 | output channels, before pruning | [0, 1] |
    | 4 | kernel size (1 for dense) | [0, 1] |
    | 5 | stride (1 for every layer here, so 0) | [0, 1] |
    | 6 | cost of the layer, before pruning (*) | [0, 1] |
    | 7 | reduced: share of the original cost removed by the choices so far | [0, 1] |
    | 8 | rest: share of the original cost depending on the later layers' channels, with the choices so far | [0, 1] |
    | 9 | the previous layer's preserve ratio (1 at the first layer) | [0, 1] |

    (*) What removing all its channels would save: its own weights and the next layers' inputs, in the ``target``
    measure.

    The observation returned with the last step is the last layer's, with reduced and previous action updated and
    rest 0.

    ## Rewards

    0 at every step but the last; the last is rewarded with AMC's

    * ``reward="error"`` (default): ``-error``, in [-1, 0], where ``error = 1 - val_accuracy`` of the pruned,
      not fine-tuned network (AMC's R_err, its choice when the budget is enforced, as here);
    * ``reward="flops-log"``: ``-error x ln(FLOPs)`` (AMC's R_FLOPs), e.g. -0.3 x ln(50,000) = -3.2, which also
      pays for going under the budget.

    ## Starting State

    The first layer, nothing pruned. The env draws no random numbers: the same actions give the same episode.
    ``reset(seed=...)`` seeds ``np_random`` (unused) and clears the history of episodes kept for rendering.

    ## Episode End

    * Termination: after the last layer's decision (2 or 3 steps for the zoo models).
    * Truncation: never.

    ## Information

    Every step: ``layer`` (the layer decided), ``preserve_ratio`` (the share of its channels kept), ``requested``
    (the ratio the action asked for) and ``clipped``. The last step adds ``preserve_ratios`` (every prunable layer
    to its share kept; coupled layers share one), ``flops``, ``parameters``, ``flops_ratio``, ``params_ratio`` (of
    the original network's), ``val_accuracy``, ``test_accuracy`` and ``original_val_accuracy``. Scores are cached
    per channel configuration, so a repeated configuration costs nothing (``info["cached"]``).

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/Pruning-v0")  # mnist1d-cnn, keep at most half the FLOPs
    env = gym.make("trendgym/Pruning-v0", model="digits-mlp", target="params", preserve=0.3, render_mode="human")
    ```

    * ``model``: a zoo model name (``mnist1d-cnn``, ``digits-mlp``), trained on first use and cached in
      ``cache_dir`` (default ``runs/compression``), or a :class:`~trends.compression.zoo.TrainedModel`.
    * ``target``: ``"flops"`` or ``"params"``, the cost the budget limits.
    * ``preserve``: the budget, the share of the original cost the pruned network may keep, in (0, 1]; it must be
      reachable with every layer at ``min_preserve``.
    * ``min_preserve``: the smallest share of a layer's channels the agent can keep, in (0, 1] (AMC uses 0.1 or
      0.2 on ImageNet networks).
    * ``reward``: ``"error"`` or ``"flops-log"``.
    * ``norm``: ``"l1"`` or ``"l2"``, the channel ranking of the pruning.
    * ``cache_dir``: where the zoo's trained weights are cached (None: ``runs/compression``).

    The env has no size argument to bound: its sizes are the network's. Every argument is checked at once: a wrong
    type raises a ``TypeError`` (that is also a ``ValueError``), a bad value a ``ValueError``, naming it; ``reset``
    takes no options.

    :func:`uniform_heuristic` gives the baseline policy: the same share kept in every layer, the largest the budget
    allows.

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 2,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "compress/".
        "metrics_namespace": "compress",
        "episode_metrics": ("val_accuracy", "flops_ratio"),
        # The episodes make one search: its history (drawn by the renderer) outlives reset(), and a seeded reset
        # starts a new search, so evaluate.py and watch.py seed only the first episode of those they play.
        "search_across_episodes": True,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        model: str | TrainedModel = "mnist1d-cnn",
        target: str = "flops",
        preserve: float = 0.5,
        min_preserve: float = 0.1,
        reward: str = "error",
        norm: str = "l1",
        cache_dir: str | Path | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        check_choice("target", target, TARGETS)
        check_choice("reward", reward, REWARDS)
        check_choice("norm", norm, NORMS)
        preserve = check_float("preserve", preserve, 0.0, 1.0, low_open=True)
        min_preserve = check_float("min_preserve", min_preserve, 0.0, 1.0, low_open=True)
        cache_dir = check_path("cache_dir", cache_dir, DEFAULT_CACHE)
        self.render_mode = render_mode
        self.target, self.preserve, self.min_preserve = target, preserve, min_preserve
        self.reward_kind, self.norm = reward, norm
        self.trained = _resolve_model(model, cache_dir)
        self.sample_shape = self.trained.dataset.sample_shape
        self.groups, self._layers = _cost_model(self.trained.model, self.sample_shape)
        self._full = np.array([g.out_channels for g in self.groups])
        self._fewest = np.array([_keep(min_preserve, g.out_channels) for g in self.groups])
        self.original_flops, self.original_params = self._costs(self._full)
        self._original_cost = self.original_flops if target == "flops" else self.original_params
        self.budget = preserve * self._original_cost
        lowest = self._cost(self._fewest)
        if lowest > self.budget:
            raise ValueError(
                f"preserve={preserve:g} is out of reach: with every layer at min_preserve={min_preserve:g} the "
                f"{model if isinstance(model, str) else self.trained.name} network keeps "
                f"{lowest / self._original_cost:.3f} of its {target}"
            )
        self._static = self._static_features()
        self.action_space = spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = spaces.Box(0.0, 1.0, (N_FEATURES,), dtype=np.float32)

        data = self.trained.dataset
        self._splits = {
            "val": (torch.from_numpy(np.array(data.x_val)), torch.from_numpy(np.array(data.y_val))),
            "test": (torch.from_numpy(np.array(data.x_test)), torch.from_numpy(np.array(data.y_test))),
        }
        self._scores: dict[tuple[int, ...], tuple[float, float]] = {}  # channel counts -> (val, test) accuracy
        self.history: list[EpisodeResult] = []
        self._keeps = self._full.copy()
        self._t: int | None = None  # the current decision; None before reset()
        self._last_ratio = 1.0
        self._renderer = None

    # ---- Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_options(options, (), "PruningEnv")
        super().reset(seed=seed)
        if seed is not None:
            self.history = []
        self._keeps = self._full.copy()
        self._t = 0
        self._last_ratio = 1.0
        if self.render_mode == "human":
            self.render()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._t is None or self._t >= len(self.groups):
            raise gym.error.ResetNeeded("call reset() before step(), and after the last layer")
        t, group = self._t, self.groups[self._t]
        share = check_box_action(self.action_space, action, "an array of one finite number (a share kept)", clip=True)
        requested = self.min_preserve + (1.0 - self.min_preserve) * float(share[0])
        keep = self._largest_keep(t, _keep(requested, group.out_channels))
        self._keeps[t] = keep
        ratio = keep / group.out_channels
        info: dict[str, Any] = {
            "layer": group.names[0],
            "preserve_ratio": ratio,
            "requested": requested,
            "clipped": keep < _keep(requested, group.out_channels),
        }
        self._last_ratio = ratio
        self._t = t + 1
        terminated = self._t == len(self.groups)
        reward = self._finish(info) if terminated else 0.0
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, False, info

    def make_renderer(self, human: bool) -> Any:
        from envs.compression.pruning_rendering import PruningRenderer

        return PruningRenderer(human=human)

    def scene(self) -> Any:
        """What the renderer draws: the layers with what they keep, the cost against the budget, the history."""
        from envs.compression.pruning_rendering import PruningScene

        if self._t is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        flops, params = self._costs(self._keeps)
        return PruningScene(
            model=self.trained.name,
            groups=tuple((g.names, g.kind, g.out_channels) for g in self.groups),
            keeps=tuple(int(k) for k in self._keeps),
            current=self._t if self._t < len(self.groups) else None,
            target=self.target,
            cost_ratio=(flops if self.target == "flops" else params) / self._original_cost,
            lowest_ratio=self._cost(np.concatenate([self._keeps[: self._t], self._fewest[self._t :]]))
            / self._original_cost,
            preserve=self.preserve,
            original_val_accuracy=self.trained.val_accuracy,
            val_accuracy=tuple(r.val_accuracy for r in self.history),
            cost_ratios=tuple(r.flops_ratio if self.target == "flops" else r.params_ratio for r in self.history),
        )

    # ---- the pruned network ------------------------------------------------------------------------------

    def preserve_ratios(self, keeps: np.ndarray | None = None) -> dict[str, float]:
        """Every prunable layer's share of output channels kept (the current episode's by default)."""
        keeps = self._keeps if keeps is None else keeps
        return {name: int(k) / g.out_channels for g, k in zip(self.groups, keeps, strict=True) for name in g.names}

    def pruned_model(self, keeps: np.ndarray | None = None) -> nn.Sequential:
        """The pruned copy of the network for channel counts ``keeps`` (the current episode's by default)."""
        return prune_structured(self.trained.model, self.sample_shape, self.preserve_ratios(keeps), self.norm)

    def score(self, keeps: np.ndarray) -> tuple[float, float]:
        """Validation and test accuracy of the network pruned to ``keeps``, not fine-tuned; cached per
        configuration (channel counts are exact where rounded ratios are not, and finite in number)."""
        key = tuple(int(k) for k in keeps)
        if key not in self._scores:
            threads = torch.get_num_threads()
            torch.set_num_threads(TORCH_THREADS)
            try:
                model = self.pruned_model(np.array(key)).eval()
                self._scores[key] = (_accuracy(model, *self._splits["val"]), _accuracy(model, *self._splits["test"]))
            finally:
                torch.set_num_threads(threads)
        return self._scores[key]

    # ---- internals ---------------------------------------------------------------------------------------

    def _costs(self, keeps: np.ndarray) -> tuple[int, int]:
        """Exact FLOPs (multiply-accumulates) and parameters of the network with ``keeps`` channels per group."""
        flops = params = 0
        for layer in self._layers:
            n_in = layer.in_channels if layer.in_group is None else int(keeps[layer.in_group])
            n_out = layer.out_channels if layer.out_group is None else int(keeps[layer.out_group])
            flops += layer.macs_per_pair * n_in * n_out
            params += layer.weights_per_pair * n_in * n_out + (n_out if layer.bias else 0)
        return flops, params

    def _cost(self, keeps: np.ndarray) -> int:
        return self._costs(keeps)[0 if self.target == "flops" else 1]

    def _largest_keep(self, t: int, wanted: int) -> int:
        """AMC's Algorithm 2: the most channels, at most ``wanted``, that layer ``t`` can keep while the budget
        stays reachable with every later layer at ``min_preserve``. The fewest channels always qualify: the
        previous step (or the constructor, for the first) left the budget reachable with them."""
        keeps = np.concatenate([self._keeps[:t], [wanted], self._fewest[t + 1 :]])
        for keep in range(wanted, int(self._fewest[t]) - 1, -1):
            keeps[t] = keep
            if self._cost(keeps) <= self.budget:
                return keep
        return int(self._fewest[t])

    def _finish(self, info: dict[str, Any]) -> float:
        info["cached"] = tuple(int(k) for k in self._keeps) in self._scores
        val, test = self.score(self._keeps)
        flops, params = self._costs(self._keeps)
        error = 1.0 - val
        reward = -error if self.reward_kind == "error" else -error * math.log(flops)
        result = EpisodeResult(
            self.preserve_ratios(), flops / self.original_flops, params / self.original_params, val, test, reward
        )
        self.history.append(result)
        info.update(
            preserve_ratios=result.preserve_ratios,
            flops=flops,
            parameters=params,
            flops_ratio=result.flops_ratio,
            params_ratio=result.params_ratio,
            val_accuracy=val,
            test_accuracy=test,
            original_val_accuracy=self.trained.val_accuracy,
        )
        return reward

    def _static_features(self) -> np.ndarray:
        """The static columns of AMC's embedding, one row per group, min-max scaled per column."""
        rows, full = [], self._cost(self._full)
        for t, g in enumerate(self.groups):
            keeps = self._full.copy()
            keeps[t] = 0  # the group's cost is what removing all its channels would save
            rows.append([t, g.kind == "conv", g.in_channels, g.out_channels, g.kernel, 1, full - self._cost(keeps)])
        table = np.array(rows, dtype=np.float64)
        low, high = table.min(axis=0), table.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        return np.where(high > low, (table - low) / span, 0.0).astype(np.float32)

    def _observation(self) -> np.ndarray:
        t = min(self._t, len(self.groups) - 1)
        obs = np.zeros(N_FEATURES, dtype=np.float32)
        obs[:7] = self._static[t]
        decided = np.concatenate([self._keeps[: self._t], self._full[self._t :]])
        obs[7] = (self._original_cost - self._cost(decided)) / self._original_cost
        if self._t + 1 < len(self.groups):
            without_later = decided.copy()
            without_later[self._t + 1 :] = 0
            obs[8] = (self._cost(decided) - self._cost(without_later)) / self._original_cost
        obs[9] = self._last_ratio
        return np.clip(obs, 0.0, 1.0)


def uniform_heuristic(env: PruningEnv) -> np.ndarray:
    """The action that keeps the same share of every layer, the largest share within the budget: the baseline
    AMC compares its agent with (uniform pruning), so the budget clip changes nothing. The share is found by
    bisection, then moved to the middle of the range of shares that round to the same channel counts, so that the
    action's float32 rounding cannot tip a layer over to one more channel."""
    env = getattr(env, "unwrapped", env)
    channels = np.array([g.out_channels for g in env.groups])
    low, high = env.min_preserve, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        fits = env._cost(np.array([_keep(middle, n) for n in channels])) <= env.budget
        low, high = (middle, high) if fits else (low, middle)
    if env.min_preserve == 1.0:  # nothing to choose
        return np.zeros(1, dtype=np.float32)
    keeps = np.array([_keep(low, n) for n in channels])
    share = (max(env.min_preserve, *((keeps - 0.5) / channels)) + min(1.0, *((keeps + 0.5) / channels))) / 2
    return np.array([(share - env.min_preserve) / (1.0 - env.min_preserve)], dtype=np.float32)


def _keep(ratio: float, channels: int) -> int:
    """Channels kept at ``ratio``, rounded as prune_structured rounds."""
    return max(1, math.floor(ratio * channels + 0.5))


def _resolve_model(model: Any, cache_dir: Path) -> TrainedModel:
    if isinstance(model, TrainedModel):
        return model
    return load_trained(check_choice("model", model, ZOO, "a TrainedModel"), cache_dir)


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    logits = torch.cat([model(x[i : i + EVAL_BATCH_SIZE]) for i in range(0, len(x), EVAL_BATCH_SIZE)])
    return float((logits.argmax(dim=1) == y).float().mean())


def _cost_model(model: nn.Sequential, sample_shape: tuple[int, ...]) -> tuple[list[_Group], list[_WeightLayer]]:
    """The groups of coupled prunable channels of a network built by :func:`trends.models.build_network`, and its
    weight layers with the group of their input and output channels: enough to count the FLOPs and parameters of
    any pruning exactly. Checked against :func:`~trends.compression.prune.coupled_layers`."""
    macs_per_pair = _macs_per_pair(model, sample_shape)
    groups: list[list[str]] = []
    first: list[nn.Module] = []
    layers: list[_WeightLayer] = []
    current: int | None = None  # the group of the features flowing through the network; None: the input's

    def add(module: nn.Module, in_group: int | None, out_group: int | None) -> None:
        n_in, n_out = _channels(module)
        kernel, bias = math.prod(getattr(module, "kernel_size", (1,))), module.bias is not None
        layers.append(_WeightLayer(in_group, out_group, n_in, n_out, macs_per_pair[module], kernel, bias))

    for name, block in model.named_children():
        if isinstance(block, Block):
            out = current
            if not isinstance(block.shortcut, nn.Identity):
                out = len(groups)
                groups.append([])
                first.append(block.layer)
                if block.shortcut is not None:
                    add(block.shortcut, current, out)
            if out is not None:
                groups[out].append(name)
            add(block.layer, current, out)
            current = out
        elif isinstance(block, FLOP_LAYERS):  # the classifier
            add(block, current, None)
    expected = coupled_layers(model, sample_shape)
    if [tuple(g) for g in groups] != expected:
        raise ValueError(f"PruningEnv cannot model this network's channel coupling {expected}; got {groups}")
    described = []
    for names, layer in zip(groups, first, strict=True):
        n_in, n_out = _channels(layer)
        kind = "dense" if isinstance(layer, nn.Linear) else "conv"
        described.append(_Group(tuple(names), kind, n_in, n_out, math.prod(getattr(layer, "kernel_size", (1,)))))
    return described, layers


def _channels(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return module.in_channels, module.out_channels


def _macs_per_pair(model: nn.Module, sample_shape: tuple[int, ...]) -> dict[nn.Module, int]:
    """Per convolution and linear layer, its multiply-accumulates per (input, output) channel pair on one sample:
    the output's length (area) times the kernel size; 1 for a linear layer."""
    found: dict[nn.Module, int] = {}

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        spatial = output.numel() // _channels(module)[1]
        found[module] = spatial * math.prod(getattr(module, "kernel_size", (1,)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, FLOP_LAYERS)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, *sample_shape)))
    finally:
        for handle in handles:
            handle.remove()
    return found
