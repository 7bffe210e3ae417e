"""``trendgym/Quantization-v0``: an agent chooses a bit width for each layer of a trained network, as in Wang et al.
(2019), "HAQ: Hardware-Aware Automated Quantization with Mixed Precision", CVPR.

An episode is one mixed-precision policy; the env quantizes nothing during the episode and scores the policy once,
at its end, by the validation accuracy of the fake-quantized network (:func:`trends.compression.fake_quantize`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from torch import nn

from envs.checks import (
    check_bool,
    check_box_action,
    check_choice,
    check_discrete_action,
    check_float,
    check_options,
    check_path,
    check_render_mode,
)
from envs.rendering import SceneRendering
from trends.compression.distill import accuracy
from trends.compression.quantize import MAX_BITS, MIN_BITS, fake_quantize, quantizable_layers
from trends.compression.zoo import DEFAULT_CACHE, ZOO, load_trained

FLOAT_BITS = 32  # bits of an unquantized weight: the size budget is a share of the float32 size, as in HAQ
DEFAULT_BUDGET = 0.1  # share of the float32 weight size: 3.2 bits a weight on average
REWARD_SCALE = 0.1  # HAQ's lambda: reward = lambda * (quantized accuracy - original accuracy)
N_FEATURES = 10  # see the Observation Space table


@dataclass(frozen=True)
class Layer:
    """A quantizable layer of the network and the static part of its observation."""

    name: str
    kind: str  # "conv" | "dense"
    in_channels: int
    out_channels: int
    kernel: int  # weights per input-output channel pair (1 for a dense layer)
    weights: int


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode (one bit-width policy, after the budget was enforced) scored, in episode order."""

    bits: tuple[int, ...]
    size_ratio: float
    val_accuracy: float
    test_accuracy: float
    reward: float


class QuantizationEnv(SceneRendering, gym.Env):
    """
    ## Description

    Mixed-precision quantization in the manner of HAQ (Wang et al. 2019, "HAQ: Hardware-Aware Automated Quantization
    with Mixed Precision"): the agent walks through the linear and convolution layers of a trained network, first to
    last, and chooses how many bits (1 to 8) each layer's weights keep. Layers differ in how much they weigh and in
    how much accuracy they lose at few bits, so a good policy spends bits where they matter. The network's weight
    size is limited by a budget, enforced at the end of the episode as HAQ's released code does it; the reward is
    the accuracy change of the quantized network, without fine-tuning.

    The networks are those of :mod:`trends.compression.zoo` (trained once, then loaded from the cache):
    ``mnist1d-cnn`` (6 quantizable layers: three convolutions, a 1x1 shortcut, a dense layer, the classifier;
    16,160 weights) and ``digits-mlp`` (3 dense layers, 17,024 weights). Quantization is symmetric, per output
    channel, with a clipping threshold searched per channel; biases stay float.

    ## Action Space

    ``Discrete(8)`` by default: action ``a`` gives the current layer ``a + 1`` bits. With ``continuous=True``,
    ``Box(0, 1, (1,), float32)`` as in HAQ's DDPG agent: ``a`` gives ``min(1 + floor(8 a), 8)`` bits, eight equal
    intervals. An action outside the space (a float, a bool or a negative number for ``Discrete``; NaN, a value
    outside [0, 1], a bool, a string or a complex number for ``Box``; a wrong shape) raises ``InvalidAction``.

    ## Observation Space

    ``Box(0, 1, (10,), float32)``, HAQ's layer embedding. The static columns are min-max scaled over the network's
    layers (0 for the smallest value, 1 for the largest, 0 where all layers agree):

    | index | feature | range |
    |---|---|---|
    | 0 | layer index | [0, 1] |
    | 1 | convolution (1) or dense (0) | {0, 1} |
    | 2 | input channels (features) | [0, 1] |
    | 3 | output channels (features) | [0, 1] |
    | 4 | kernel size (weights per channel pair) | [0, 1] |
    | 5 | weight count | [0, 1] |
    | 6 | the layer's share of the network's weights (not scaled) | [0, 1] |
    | 7 | share of the network's weights in the layers after this one (not scaled) | [0, 1] |
    | 8 | bits chosen for the previous layer, ``(b - 1) / 7`` (1 for the first layer) | [0, 1] |
    | 9 | size of the layers chosen so far against the budget, ``min(bytes / budget bytes, 1)`` | [0, 1] |

    The observation returned with termination repeats the last layer's features with columns 8 and 9 updated.

    ## Rewards

    0 for every layer but the last; after the last, the policy is made to fit the budget and the reward is HAQ's

    ``reward_scale * (val_accuracy(quantized) - val_accuracy(float32))``

    with ``reward_scale = 0.1`` (HAQ's lambda) by default, so about -0.09 to +0.003: a network that loses nothing
    scores about 0, one reduced to chance (10 classes) scores about -0.08.

    ## Starting State

    The first layer to decide, no bits chosen. As in ``trendgym/ArchitectureSearch-v0``, the env keeps the
    history of the episodes (``history``, drawn by the renderer): ``reset(seed=k)`` or
    ``reset(options={"new_search": True})`` clears it, ``reset()`` continues it. The env draws no random numbers:
    the same actions give the same observations, reward and accuracy. Accuracies are cached by bit tuple, so a
    policy seen before is scored instantly.

    ## Episode End

    * Termination: after the last layer's bits are chosen (one step per free layer: 6 for ``mnist1d-cnn``, 3 for
      ``digits-mlp``; 4 and 1 with ``fix_first_last``).
    * Truncation: never.

    **The budget** (``size_budget``, a share of the float32 weight size; 0.25 is what uniform 8 bits takes) is met by
    every episode whatever the actions: if the chosen bits exceed it, the free layers lose one bit at a time, from
    the last layer back to the first and round again, until the size fits (``_final_action_wall`` in HAQ's code).
    A budget that even 1-bit free layers cannot meet raises ``ValueError`` when the env is made.

    ## Information

    Every step: ``layer`` (the name of the layer just decided) and ``chosen_bits`` (its bits). The last step adds
    ``bits`` (every layer's bits after the budget, fixed layers included), ``requested_bits`` (before the budget),
    ``size_bytes`` (packed weights at those bits), ``size_ratio`` (against float32), ``budget_ratio``,
    ``val_accuracy`` and ``test_accuracy`` of the quantized network, ``original_val_accuracy`` and
    ``original_test_accuracy`` of the float32 one.

    ## Arguments

    ```python
    import gymnasium as gym
    import envs  # registers the trendgym/ ids

    env = gym.make("trendgym/Quantization-v0")  # mnist1d-cnn, a tenth of the float32 size
    env = gym.make("trendgym/Quantization-v0", model="digits-mlp", size_budget=0.05, continuous=True)
    ```

    * ``model``: ``"mnist1d-cnn"`` or ``"digits-mlp"``, a model of the compression zoo.
    * ``size_budget``: the largest weight size allowed, as a share of the float32 size, in (0, 1]; 0.25 or more
      allows 8 bits everywhere.
    * ``fix_first_last``: keep the first and last layer at 8 bits, as HAQ did; they are then not decided (no step),
      and appear in ``bits`` at 8. Off by default: ``digits-mlp`` would be left with one decision.
    * ``continuous``: a ``Box(0, 1)`` action (HAQ's) instead of ``Discrete(8)``.
    * ``reward_scale``: lambda in the reward (> 0).
    * ``cache_dir``: where the zoo keeps its trained models (default and None: ``runs/compression``).

    The env has no size argument to bound: its sizes are the network's. Every argument is checked at once: a wrong
    type raises a ``TypeError`` (that is also a ``ValueError``; ``fix_first_last="x"`` is not taken for True), a bad
    value a ``ValueError``, naming it. ``reset`` takes the one option ``new_search`` (a bool).

    ## Version History

    * v0: first version.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "render_fps": 4,
        # What trendgym's TensorBoard callback logs at the end of each episode, under "compress/".
        "metrics_namespace": "compress",
        "episode_metrics": ("val_accuracy", "size_ratio"),
        # The episodes make one search: its history (drawn by the renderer) outlives reset(), and a seeded reset
        # starts a new search, so evaluate.py and watch.py seed only the first episode of those they play.
        "search_across_episodes": True,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        model: str = "mnist1d-cnn",
        size_budget: float = DEFAULT_BUDGET,
        fix_first_last: bool = False,
        continuous: bool = False,
        reward_scale: float = REWARD_SCALE,
        cache_dir: str | Path | None = DEFAULT_CACHE,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        check_choice("model", model, ZOO)
        size_budget = check_float("size_budget", size_budget, 0.0, 1.0, low_open=True)
        self.reward_scale = check_float("reward_scale", reward_scale, 0.0, low_open=True)
        self.render_mode = render_mode
        self.continuous = check_bool("continuous", continuous)
        self.fix_first_last = check_bool("fix_first_last", fix_first_last)

        trained = load_trained(model, check_path("cache_dir", cache_dir, DEFAULT_CACHE))
        self.model_name = model
        self.network: nn.Module = trained.model
        self.dataset = trained.dataset
        self.layers = [_describe(name, module) for name, module in quantizable_layers(self.network)]
        n = len(self.layers)
        self.fixed = tuple(self.fix_first_last and i in (0, n - 1) for i in range(n))
        self.free = [i for i in range(n) if not self.fixed[i]]
        self.float_bytes = sum(layer.weights for layer in self.layers) * FLOAT_BITS // 8
        self.budget_bytes = size_budget * self.float_bytes
        self.size_budget = size_budget
        smallest = self.size_bytes(self._with_fixed([MIN_BITS] * n))
        if smallest > self.budget_bytes:
            raise ValueError(
                f"size_budget {size_budget:g} is below what {model} takes with its free layers at {MIN_BITS} bit "
                f"({smallest / self.float_bytes:.4f} of float32); raise it or set fix_first_last=False"
            )
        self.original_val_accuracy = accuracy(self.network, self.dataset.x_val, self.dataset.y_val)
        self.original_test_accuracy = accuracy(self.network, self.dataset.x_test, self.dataset.y_test)

        self.action_space: spaces.Space = (
            spaces.Box(0.0, 1.0, (1,), dtype=np.float32) if self.continuous else spaces.Discrete(MAX_BITS)
        )
        self.observation_space = spaces.Box(0.0, 1.0, (N_FEATURES,), dtype=np.float32)
        self._static = _static_features(self.layers)
        self._scores: dict[tuple[int, ...], tuple[float, float]] = {}
        self._bits: list[int] = []  # bits of the layers decided so far (fixed layers included)
        self._position: int | None = None  # index into self.free of the layer to decide; None before reset
        self.last: EpisodeResult | None = None
        self.history: list[EpisodeResult] = []
        self._renderer = None

    # ---- what a policy costs and scores ---------------------------------------------------------------------

    def size_bytes(self, bits: list[int] | tuple[int, ...]) -> int:
        """Packed weight bytes of the network at ``bits`` (one width per quantizable layer), as
        :func:`~trends.compression.quantized_size_bytes` counts them."""
        return math.ceil(sum(layer.weights * b for layer, b in zip(self.layers, bits, strict=True)) / 8)

    def fit_budget(self, bits: list[int] | tuple[int, ...]) -> tuple[int, ...]:
        """``bits`` made to fit the budget as HAQ's ``_final_action_wall`` does: the free layers lose a bit each, from
        the last to the first and round again, checking the size after every change."""
        bits = list(bits)
        while self.size_bytes(bits) > self.budget_bytes:
            for i in reversed(self.free):
                if bits[i] > MIN_BITS:
                    bits[i] -= 1
                    if self.size_bytes(bits) <= self.budget_bytes:
                        break
        return tuple(bits)

    def evaluate(self, bits: tuple[int, ...]) -> tuple[float, float]:
        """Validation and test accuracy of the network fake-quantized to ``bits``, cached by bit tuple."""
        bits = tuple(int(b) for b in bits)
        if bits not in self._scores:
            quantized = fake_quantize(self.network, bits)
            self._scores[bits] = (
                accuracy(quantized, self.dataset.x_val, self.dataset.y_val),
                accuracy(quantized, self.dataset.x_test, self.dataset.y_test),
            )
        return self._scores[bits]

    # ---- Gymnasium API -----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = check_options(options, ("new_search",), "QuantizationEnv")
        new_search = check_bool("options['new_search']", options.get("new_search", False))
        super().reset(seed=seed)
        if seed is not None or new_search:
            self.history = []
            self.last = None
        self._position = 0
        self._bits = self._fixed_prefix(0)
        if self.render_mode == "human":
            self.render()
        return self._observation(self.free[0]), {}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._position is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._position >= len(self.free):
            raise gym.error.ResetNeeded("every layer has its bits; call reset() to start the next episode")
        bits = self._decode(action)
        layer = self.free[self._position]
        self._bits.append(bits)
        self._position += 1
        info: dict[str, Any] = {"layer": self.layers[layer].name, "chosen_bits": bits}
        terminated = self._position == len(self.free)
        reward = 0.0
        if terminated:
            self._bits += [MAX_BITS] * (len(self.layers) - len(self._bits))  # a fixed last layer
            reward = self._finish(info)
            obs = self._observation(layer, prev_bits=bits)
        else:
            self._bits = self._fixed_prefix(len(self._bits))
            obs = self._observation(self.free[self._position])
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, info

    def make_renderer(self, human: bool) -> Any:
        from envs.compression.quantization_rendering import QuantizationRenderer

        return QuantizationRenderer(human=human)

    def scene(self) -> Any:
        """What the renderer draws: the layers and their bits, the size against the budget, the accuracies."""
        from envs.compression.quantization_rendering import QuantizationScene

        if self._position is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        done = self._position >= len(self.free)
        bits = tuple(self.last.bits) if done and self.last else tuple(self._bits)
        return QuantizationScene(
            model=self.model_name,
            names=tuple(layer.name for layer in self.layers),
            kinds=tuple(layer.kind for layer in self.layers),
            weights=tuple(layer.weights for layer in self.layers),
            fixed=self.fixed,
            bits=bits,
            current=None if done else self.free[self._position],
            float_bytes=self.float_bytes,
            budget_bytes=self.budget_bytes,
            original_val_accuracy=self.original_val_accuracy,
            history=tuple((r.size_ratio, r.val_accuracy) for r in self.history),
            last=self.last if done else None,
        )

    def get_keys_to_action(self) -> dict[tuple[int, ...], int]:
        """Number keys for ``gymnasium.utils.play`` (discrete actions): key 1 gives 1 bit ... key 8 gives 8 bits."""
        return {(ord("1") + i,): i for i in range(MAX_BITS)}

    # ---- internals ---------------------------------------------------------------------------------------

    def _with_fixed(self, bits: list[int]) -> list[int]:
        return [MAX_BITS if fixed else b for fixed, b in zip(self.fixed, bits, strict=True)]

    def _fixed_prefix(self, start: int) -> list[int]:
        """8 bits for the fixed layers from ``start`` up to the next free one (the decided bits are kept)."""
        bits = list(self._bits[:start])
        while len(bits) < len(self.layers) and self.fixed[len(bits)]:
            bits.append(MAX_BITS)
        return bits

    def _decode(self, action: Any) -> int:
        if self.continuous:
            value = check_box_action(self.action_space, action, "an array of shape (1,) with a value in [0, 1]")[0]
            return min(MIN_BITS + math.floor(value * MAX_BITS), MAX_BITS)
        return check_discrete_action(self.action_space, action, " (bits minus one)") + MIN_BITS

    def _finish(self, info: dict[str, Any]) -> float:
        requested = tuple(self._bits)
        bits = self.fit_budget(requested)
        val, test = self.evaluate(bits)
        size = self.size_bytes(bits)
        reward = self.reward_scale * (val - self.original_val_accuracy)
        self.last = EpisodeResult(bits, size / self.float_bytes, val, test, reward)
        self.history.append(self.last)
        info.update(
            bits=list(bits),
            requested_bits=list(requested),
            size_bytes=size,
            size_ratio=size / self.float_bytes,
            budget_ratio=self.size_budget,
            val_accuracy=val,
            test_accuracy=test,
            original_val_accuracy=self.original_val_accuracy,
            original_test_accuracy=self.original_test_accuracy,
        )
        return reward

    def _observation(self, layer: int, prev_bits: int | None = None) -> np.ndarray:
        obs = self._static[layer].copy()
        if prev_bits is None:
            prev_bits = self._bits[layer - 1] if layer > 0 else MAX_BITS
        obs[8] = (prev_bits - MIN_BITS) / (MAX_BITS - MIN_BITS)
        decided = self._bits + [0] * (len(self.layers) - len(self._bits))  # the layers decided so far, fixed ones too
        spent = self.size_bytes(decided)
        obs[9] = min(spent / self.budget_bytes, 1.0)
        return obs


def _describe(name: str, module: nn.Module) -> Layer:
    weight = module.weight
    if isinstance(module, nn.Linear):
        return Layer(name, "dense", module.in_features, module.out_features, 1, weight.numel())
    return Layer(name, "conv", module.in_channels, module.out_channels, math.prod(weight.shape[2:]), weight.numel())


def _minmax(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    span = array.max() - array.min()
    return (array - array.min()) / span if span > 0 else np.zeros_like(array)


def _static_features(layers: list[Layer]) -> np.ndarray:
    """Columns 0-7 of the observation for every layer (8 and 9 are filled per step)."""
    total = sum(layer.weights for layer in layers)
    after = [sum(later.weights for later in layers[i + 1 :]) / total for i in range(len(layers))]
    columns = [
        _minmax(list(range(len(layers)))),
        np.array([layer.kind == "conv" for layer in layers], dtype=np.float64),
        _minmax([layer.in_channels for layer in layers]),
        _minmax([layer.out_channels for layer in layers]),
        _minmax([layer.kernel for layer in layers]),
        _minmax([layer.weights for layer in layers]),
        np.array([layer.weights / total for layer in layers]),
        np.array(after),
        np.zeros(len(layers)),
        np.zeros(len(layers)),
    ]
    return np.stack(columns, axis=1).astype(np.float32)
