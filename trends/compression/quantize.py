"""Post-training quantization: three ways to store a trained network's weights in fewer bits, each chosen for
what it is good for on the CPU this project runs on.

- :func:`to_float16` halves the checkpoint. On a CPU, float16 is a storage format, not a speed-up: half
  matrix products have no fast CPU kernels (a digits MLP at batch 256 ran about ten times slower in half than
  in float32), so by default the weights are kept in half and cast up to float32 for each call. Half compute is
  there for devices that have it (``compute="float16"``, the default on CUDA).
- :func:`to_int8_dynamic` is int8 dynamic quantization of the linear layers: weights stored as int8 with a scale
  per output channel, activations quantized on the fly per batch, products in int8 with fbgemm / x86 kernels.
  It is the only real int8 execution CPU torch offers without calibration data.
- :func:`fake_quantize` simulates k-bit weights (1 to 8 bits, per layer) by quantizing and dequantizing them in
  float32. No kernel runs 3-bit arithmetic, but accuracy at a bit width is what a mixed-precision search (HAQ,
  Wang et al. 2019) needs, with :func:`quantized_size_bytes` for the size the weights would take.

Every function returns a quantized copy; the model passed in is not changed.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call

from trends.models import FLOP_LAYERS

MIN_BITS, MAX_BITS = 1, 8
CLIP_CANDIDATES = 20  # clipping thresholds tried per channel, evenly spaced fractions of the channel's max |w|
MIN_CLIP_FRACTION = 0.2  # the smallest threshold tried, as a fraction of max |w|
FLOAT_BITS = 32  # what a layer takes when no bit width is given for it

BitWidths = Mapping[str, int] | Sequence[int]


class Float16Model(nn.Module):
    """A model whose floating-point weights and buffers are stored in float16 (its state dict, and so its
    checkpoint, is half the size), taking and returning float32 tensors.

    :param model: the float32 model; it is copied
    :param compute: ``"float16"`` runs the model in half (fast where half kernels exist: GPUs); ``"float32"``
        casts the half weights up for every call and computes in float32, which on a CPU is much faster than half
        compute and gives the accuracy of float16 weights exactly. The cast costs a fixed few hundredths of a
        millisecond a call (a digits MLP: 0.06 ms at batch 1 against 0.017 ms in float32; 0.12 against 0.076 ms at
        batch 256), a price paid for the smaller checkpoint; a deployment that only wants the smaller file loads
        the half state dict into a float32 model instead
    """

    def __init__(self, model: nn.Module, compute: str = "float32") -> None:
        super().__init__()
        if compute not in ("float16", "float32"):
            raise ValueError(f"compute must be 'float16' or 'float32', got {compute!r}")
        self.model = copy.deepcopy(model).half()
        self.compute = compute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.compute == "float16":
            return self.model(x.half()).float()
        tensors = {name: t.float() for name, t in _named_tensors(self.model) if t.is_floating_point()}
        return functional_call(self.model, tensors, (x.float(),))


def _named_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(), *model.named_buffers()]


def to_float16(model: nn.Module, compute: str = "auto") -> Float16Model:
    """A copy of ``model`` with float16 weights (see :class:`Float16Model`). ``compute="auto"`` computes in half
    on CUDA, and in float32 from the half weights elsewhere, because CPU half arithmetic is slow."""
    if compute == "auto":
        parameter = next(model.parameters(), None)
        compute = "float16" if parameter is not None and parameter.device.type == "cuda" else "float32"
    return Float16Model(model, compute)


def to_int8_dynamic(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode whose ``nn.Linear`` layers are int8 dynamically quantized, with a weight
    scale per output channel (more accurate than one per tensor, at no speed cost).

    Only linear layers change: dynamic quantization in torch covers Linear and recurrent layers, not
    convolutions, so a CNN's convolutions stay float32 and only its dense layers and head shrink. Int8 pays off
    with batches; at batch size 1 the cost of quantizing the activations each call can make it slower than
    float32 (measure it with :func:`trends.compression.measure.measure`).

    Why ``torch.ao.quantization.quantize_dynamic``, which torch 2.13 marks deprecated in favour of torchao:
    torchao is a separate package aimed mostly at GPUs, and the torch.ao path is still the one with CPU int8
    kernels in the torch this project pins. Its deprecation warnings are silenced around this one call only, so
    they neither alarm a user nor hide other warnings; when torch drops it, this function is the one place to
    change.
    """
    quantization = torch.ao.quantization
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        float_model = copy.deepcopy(model).eval()
        return quantization.quantize_dynamic(
            float_model, {nn.Linear: quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The linear and convolution layers of ``model`` as ``(name, module)`` pairs in definition order (for a
    :func:`trends.models.build_network` model, the order data flows through them): the layers a bit width is
    chosen for, one decision each."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, FLOP_LAYERS)]


def _bit_widths(model: nn.Module, bits: BitWidths) -> dict[str, int]:
    """``bits`` as ``{layer name: bits}``, checked: known layer names, one width per layer for a sequence, widths
    in [MIN_BITS, MAX_BITS]. Layers a mapping leaves out stay float."""
    names = [name for name, _ in quantizable_layers(model)]
    if isinstance(bits, Mapping):
        unknown = sorted(set(bits) - set(names))
        if unknown:
            raise ValueError(f"no quantizable layer named {', '.join(unknown)}; the layers are {', '.join(names)}")
        widths = dict(bits)
    else:
        if len(bits) != len(names):
            raise ValueError(f"got {len(bits)} bit widths for {len(names)} quantizable layers ({', '.join(names)})")
        widths = dict(zip(names, bits, strict=True))
    checked = {}
    for name, width in widths.items():
        if not (isinstance(width, numbers.Integral) and MIN_BITS <= width <= MAX_BITS):
            raise ValueError(f"bit widths must be integers from {MIN_BITS} to {MAX_BITS}, got {width!r} for {name}")
        checked[name] = int(width)  # numpy integers (an environment's action) become plain ones
    return checked


def fake_quantize(model: nn.Module, bits: BitWidths) -> nn.Module:
    """A copy of ``model`` whose layer weights are quantized to ``bits`` and dequantized back to float32.

    :param bits: a bit width from 1 to 8 per layer of :func:`quantizable_layers`, as a sequence in that order or
        a mapping from layer name (layers left out keep float32 weights)

    Symmetric linear quantization with one scale per output channel: a channel's weights become
    ``scale * clamp(round(w / scale), -(2^(b-1) - 1), 2^(b-1) - 1)``. The clipping threshold (and so the scale)
    is chosen per channel by a small search for the lowest squared error among ``CLIP_CANDIDATES`` fractions of
    the channel's largest weight. HAQ chose it by minimising KL divergence; squared error is simpler, needs no
    histogram, and matters most where it was chosen for: at 2-4 bits plain min-max wastes the few levels on the
    rare largest weights (at 2 bits, min-max rounds most weights to zero and is worse than 1 bit). One bit is
    ``sign(w) * mean|w|`` per channel, the binary weights with the lowest squared error (XNOR-Net).
    Biases stay float32; they are a small share of the weights.
    """
    widths = _bit_widths(model, bits)
    quantized = copy.deepcopy(model)
    layers = dict(quantizable_layers(quantized))
    with torch.no_grad():
        for name, width in widths.items():
            weight = layers[name].weight
            weight.copy_(quantize_weight(weight, width))
    return quantized


def quantize_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` (output channels first) quantized to ``bits`` per output channel and dequantized, as
    :func:`fake_quantize` describes."""
    channels = weight.detach().reshape(weight.shape[0], -1).float()
    if bits == 1:
        scale = channels.abs().mean(dim=1, keepdim=True)
        return (torch.where(channels >= 0, 1.0, -1.0) * scale).reshape(weight.shape).to(weight.dtype)
    levels = 2 ** (bits - 1) - 1
    max_abs = channels.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    best, best_error = channels, torch.full_like(max_abs, math.inf)
    for fraction in torch.linspace(MIN_CLIP_FRACTION, 1.0, CLIP_CANDIDATES).tolist():
        scale = max_abs * fraction / levels
        candidate = torch.clamp(torch.round(channels / scale), -levels, levels) * scale
        error = (candidate - channels).square().sum(dim=1, keepdim=True)
        better = error < best_error
        best = torch.where(better, candidate, best)
        best_error = torch.where(better, error, best_error)
    return best.reshape(weight.shape).to(weight.dtype)


def quantized_size_bytes(model: nn.Module, bits: BitWidths) -> int:
    """Bytes the layer weights of ``model`` take at ``bits`` (as :func:`fake_quantize` takes them; layers a mapping
    leaves out at 32 bits), packed: the sum over layers of weight count x bits, divided by 8 and rounded up.

    Only the weights of :func:`quantizable_layers` are counted, as in HAQ's size budget: the per-channel scales
    and the float32 biases add 64 bits per output channel, a small and bit-width-independent share.
    """
    widths = _bit_widths(model, bits)
    total_bits = sum(module.weight.numel() * widths.get(name, FLOAT_BITS) for name, module in quantizable_layers(model))
    return math.ceil(total_bits / 8)
