"""The child-network family of the AutoML, compression and ensemble trends: a network described by a small,
hashable configuration (:class:`NetworkSpec`) and built from it for a dataset's sample shape.

A network is convolution blocks, then a global average pool, then dense blocks, then a linear classifier. That
one shape covers the linear model (no layers), MLPs, and 1-D / 2-D CNNs with residual connections, which is the
range an architecture search on digits and MNIST-1D explores. The spec is frozen so it can key a cache of
trained results; it is checked when it is made, so a bad configuration fails with a one-line reason before
anything is trained.

The built model is an ``nn.Sequential`` of named blocks (``conv1``, ``pool``, ``dense1``, ``head``...), so the
compression modules can walk it layer by layer.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic

ACTIVATIONS = ("relu", "tanh", "gelu", "elu", "leaky_relu")
LAYER_KINDS = ("dense", "conv")
FLOP_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)  # the layers count_flops counts; all a child network computes with
INT8_LINEAR = quantized_dynamic.Linear  # what int8 dynamic quantization turns a Linear into (not an nn.Linear)

_ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer of a child network.

    :param kind: ``"dense"`` (a linear layer) or ``"conv"`` (a convolution; 1-D or 2-D follows the sample shape)
    :param width: units of a dense layer, output channels of a convolution
    :param kernel: convolution kernel size; odd, so that 'same' padding keeps the length and a residual adds up
    :param activation: one of :data:`ACTIVATIONS`
    :param dropout: probability of zeroing an activation during training, in [0, 1)
    :param skip: add the layer's input to its output (a residual connection); when the widths differ, the input
        goes through a linear / 1x1-convolution projection first
    """

    kind: str
    width: int
    kernel: int = 3
    activation: str = "relu"
    dropout: float = 0.0
    skip: bool = False

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; choose one of {', '.join(LAYER_KINDS)}")
        if self.width < 1:
            raise ValueError(f"a {self.kind} layer needs a width of at least 1, got {self.width}")
        if self.kind == "conv" and (self.kernel < 1 or self.kernel % 2 == 0):
            raise ValueError(f"a conv kernel must be odd and positive (for 'same' padding), got {self.kernel}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def describe(self) -> str:
        """``conv64k3+skip``, ``dense128:tanh-d0.2``: kind and width, then only what differs from the defaults."""
        text = f"{self.kind}{self.width}" + (f"k{self.kernel}" if self.kind == "conv" else "")
        text += "+skip" if self.skip else ""
        text += f":{self.activation}" if self.activation != "relu" else ""
        return text + (f"-d{self.dropout:g}" if self.dropout else "")


@dataclass(frozen=True)
class NetworkSpec:
    """A child network: its hidden layers in order, convolutions first. The global average pool between the
    convolutions and the dense layers, and the linear classifier at the end, are added by :func:`build_network`;
    no layers at all is the linear (multinomial logistic) model."""

    layers: tuple[LayerSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))  # a list would make the spec unhashable
        kinds = [layer.kind for layer in self.layers]
        if "dense" in kinds and "conv" in kinds[kinds.index("dense") :]:
            raise ValueError(f"conv layers must come before dense ones, got {' -> '.join(kinds)}")

    @property
    def has_conv(self) -> bool:
        return any(layer.kind == "conv" for layer in self.layers)

    def describe(self) -> str:
        """A short human string, e.g. ``conv32k5-conv64k3+skip-dense128-d0.2``; ``linear`` for no layers."""
        return "-".join(layer.describe() for layer in self.layers) or "linear"


class Block(nn.Module):
    """One hidden layer: ``dropout(activation(layer(x)))``, plus ``shortcut(x)`` when it has a skip.

    The shortcut is added after the activation, so a residual block can pass its input through unchanged when
    its layer learns nothing useful, which is what lets a search stack layers without hurting the network.
    """

    def __init__(self, layer: nn.Module, activation: str, dropout: float, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.layer = layer
        self.activation = _ACTIVATION_MODULES[activation]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.activation(self.layer(x)))
        return out if self.shortcut is None else out + self.shortcut(x)


def build_network(spec: NetworkSpec, sample_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """The network ``spec`` describes, for samples shaped ``sample_shape`` (channels first: ``(features,)``,
    ``(C, L)`` or ``(C, H, W)``) and ``n_classes`` logits. Weights are initialised from torch's global random
    state; seed it (or let :func:`trends.training.train_network` do it) for a reproducible network."""
    sample_shape = tuple(sample_shape)
    if not 1 <= len(sample_shape) <= 3:
        raise ValueError(f"samples must be shaped (features,), (C, L) or (C, H, W), got {sample_shape}")
    if spec.has_conv and len(sample_shape) == 1:
        raise ValueError(f"conv layers need (C, L) or (C, H, W) samples, got the flat shape {sample_shape}")
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    spatial_dims = len(sample_shape) - 1
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    width = sample_shape[0]
    for i, layer in enumerate((lay for lay in spec.layers if lay.kind == "conv"), start=1):
        modules[f"conv{i}"] = _conv_block(layer, width, spatial_dims)
        width = layer.width
    if spec.has_conv:
        pool = nn.AdaptiveAvgPool1d(1) if spatial_dims == 1 else nn.AdaptiveAvgPool2d(1)
        modules["pool"] = nn.Sequential(pool, nn.Flatten())
    elif len(sample_shape) > 1:
        modules["flatten"] = nn.Flatten()
        width = math.prod(sample_shape)
    for i, layer in enumerate((lay for lay in spec.layers if lay.kind == "dense"), start=1):
        modules[f"dense{i}"] = _dense_block(layer, width)
        width = layer.width
    modules["head"] = nn.Linear(width, n_classes)
    return nn.Sequential(modules)


def _conv_block(layer: LayerSpec, in_channels: int, spatial_dims: int) -> Block:
    conv_type = nn.Conv1d if spatial_dims == 1 else nn.Conv2d
    conv = conv_type(in_channels, layer.width, layer.kernel, padding=layer.kernel // 2)
    shortcut = None
    if layer.skip:
        shortcut = nn.Identity() if in_channels == layer.width else conv_type(in_channels, layer.width, 1, bias=False)
    return Block(conv, layer.activation, layer.dropout, shortcut)


def _dense_block(layer: LayerSpec, in_features: int) -> Block:
    shortcut = None
    if layer.skip:
        shortcut = nn.Identity() if in_features == layer.width else nn.Linear(in_features, layer.width, bias=False)
    return Block(nn.Linear(in_features, layer.width), layer.activation, layer.dropout, shortcut)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (weights and biases), the size measure a search penalises."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, sample_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass of one sample through the model's linear and convolution layers
    (activations, pooling and bias additions, a small share of the work, are not counted).

    Counted from the output shapes a forward hook sees, so it follows whatever path the model really takes,
    residual projections included, and through int8 dynamic linear layers (model compression). The model is run
    once, in eval mode, on a float32 zero sample; its mode is restored.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _macs(module, output)

    counted = (*FLOP_LAYERS, INT8_LINEAR)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *sample_shape), device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a linear or convolution layer on a batch of one: every output value
    is a dot product over ``in_features`` inputs (linear) or ``in_channels / groups x kernel`` inputs (conv)."""
    if isinstance(module, (nn.Linear, INT8_LINEAR)):
        return output.numel() * module.in_features
    kernel = math.prod(module.kernel_size)
    return output.numel() * (module.in_channels // module.groups) * kernel
