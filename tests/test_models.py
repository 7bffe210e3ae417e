"""The child-network family: specs build networks of the right shapes for flat, 1-D and 2-D samples, parameters
and multiply-accumulates are counted as by hand, and a bad spec fails with its reason."""

import pytest
import torch
from torch import nn

from trends.models import (
    ACTIVATIONS,
    LayerSpec,
    NetworkSpec,
    build_network,
    count_flops,
    count_parameters,
)

DENSE = LayerSpec("dense", 16)
CONV = LayerSpec("conv", 8)


def logits_shape(spec: NetworkSpec, sample_shape: tuple[int, ...], n_classes: int = 10) -> tuple[int, ...]:
    model = build_network(spec, sample_shape, n_classes)
    return tuple(model(torch.randn(5, *sample_shape)).shape)


@pytest.mark.parametrize("sample_shape", [(20,), (1, 40), (1, 8, 8)], ids=["flat", "signal", "image"])
@pytest.mark.parametrize("skip", [False, True])
def test_dense_networks_take_any_sample_shape(sample_shape, skip):
    spec = NetworkSpec((DENSE, LayerSpec("dense", 16, skip=skip), LayerSpec("dense", 4, skip=skip)))
    assert logits_shape(spec, sample_shape) == (5, 10)


@pytest.mark.parametrize(("sample_shape", "conv_type"), [((1, 40), nn.Conv1d), ((1, 8, 8), nn.Conv2d)])
@pytest.mark.parametrize("skip", [False, True])
def test_conv_networks_are_1d_or_2d_by_the_sample_shape(sample_shape, conv_type, skip):
    spec = NetworkSpec(
        (
            LayerSpec("conv", 8, kernel=5),
            LayerSpec("conv", 8, skip=skip),  # same width: identity shortcut
            LayerSpec("conv", 12, kernel=1, skip=skip),  # new width: 1x1 projection
            LayerSpec("dense", 6, activation="gelu", dropout=0.3, skip=skip),
        )
    )
    model = build_network(spec, sample_shape, 3)
    assert logits_shape(spec, sample_shape, 3) == (5, 3)
    assert all(isinstance(m, conv_type) for m in model.modules() if isinstance(m, nn.Conv1d | nn.Conv2d))
    assert list(dict(model.named_children())) == ["conv1", "conv2", "conv3", "pool", "dense1", "head"]
    if skip:
        assert isinstance(model.conv2.shortcut, nn.Identity)
        projection = model.conv3.shortcut
        assert isinstance(projection, conv_type) and set(projection.kernel_size) == {1}


def test_conv_only_and_empty_specs_build():
    assert logits_shape(NetworkSpec((CONV,)), (1, 40)) == (5, 10)
    linear = build_network(NetworkSpec(), (1, 8, 8), 10)
    assert count_parameters(linear) == 64 * 10 + 10, "no layers: the linear model"


def test_a_skip_layer_adds_its_input():
    """With the layer's weights at zero, a residual block passes its input through unchanged."""
    model = build_network(NetworkSpec((LayerSpec("dense", 20, skip=True),)), (20,), 2)
    nn.init.zeros_(model.dense1.layer.weight)
    nn.init.zeros_(model.dense1.layer.bias)
    x = torch.randn(3, 20)
    assert torch.equal(model.dense1(x), x)


def test_count_parameters_matches_a_hand_count():
    spec = NetworkSpec((DENSE, LayerSpec("dense", 16, skip=True), LayerSpec("dense", 8, skip=True)))
    model = build_network(spec, (1, 8, 8), 10)
    by_hand = (
        (64 * 16 + 16)  # dense1 on the 64 flattened pixels
        + (16 * 16 + 16)  # dense2, identity shortcut
        + (16 * 8 + 8 + 16 * 8)  # dense3 and its bias-free projection
        + (8 * 10 + 10)  # head
    )
    assert count_parameters(model) == by_hand == 1666
    model.head.weight.requires_grad_(False)
    assert count_parameters(model) == by_hand - 80, "frozen weights are not trainable parameters"


def test_count_flops_of_single_layers_by_hand():
    assert count_flops(nn.Linear(5, 3), (5,)) == 5 * 3
    assert count_flops(nn.Conv1d(2, 4, 5), (2, 40)) == 4 * 36 * (2 * 5), "4 channels x 36 positions, 2x5 inputs"
    assert count_flops(nn.Conv2d(1, 3, 3, padding=1), (1, 8, 8)) == 3 * 64 * 9


def test_count_flops_of_networks_by_hand():
    mlp = build_network(NetworkSpec((LayerSpec("dense", 7),)), (20,), 3)
    assert count_flops(mlp, (20,)) == 20 * 7 + 7 * 3
    cnn = build_network(NetworkSpec((LayerSpec("conv", 4, kernel=5, skip=True),)), (2, 40), 3)
    conv, projection, head = 4 * 40 * 2 * 5, 4 * 40 * 2, 4 * 3
    assert count_flops(cnn, (2, 40)) == conv + projection + head


def test_count_flops_leaves_the_model_as_it_was():
    model = build_network(NetworkSpec((LayerSpec("dense", 7, dropout=0.5),)), (20,), 3)
    model.train()
    count_flops(model, (20,))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_describe_names_what_differs_from_the_defaults():
    spec = NetworkSpec(
        (
            LayerSpec("conv", 32, kernel=5),
            LayerSpec("conv", 64, skip=True),
            LayerSpec("dense", 128, activation="tanh", dropout=0.2),
        )
    )
    assert spec.describe() == "conv32k5-conv64k3+skip-dense128:tanh-d0.2"
    assert NetworkSpec().describe() == "linear"


def test_specs_are_hashable_values():
    """A spec keys the evaluator's cache: equal specs hash equal, even one made from a list."""
    a = NetworkSpec([DENSE, CONV][::-1])
    b = NetworkSpec((CONV, DENSE))
    assert a == b and hash(a) == hash(b) and isinstance(a.layers, tuple)


def test_every_activation_builds():
    for name in ACTIVATIONS:
        assert logits_shape(NetworkSpec((LayerSpec("conv", 4, activation=name),)), (1, 40)) == (5, 10)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: NetworkSpec((DENSE, CONV)), "conv layers must come before dense ones"),
        (lambda: LayerSpec("dense", 8, activation="swish"), "unknown activation 'swish'"),
        (lambda: LayerSpec("conv", 8, kernel=4), "kernel must be odd"),
        (lambda: LayerSpec("conv", 8, kernel=0), "kernel must be odd"),
        (lambda: LayerSpec("dense", 0), "width of at least 1"),
        (lambda: LayerSpec("dense", 8, dropout=1.0), r"dropout must be in \[0, 1\)"),
        (lambda: LayerSpec("dense", 8, dropout=-0.1), r"dropout must be in \[0, 1\)"),
        (lambda: LayerSpec("lstm", 8), "unknown layer kind 'lstm'"),
        (lambda: build_network(NetworkSpec((CONV,)), (20,), 10), "conv layers need"),
        (lambda: build_network(NetworkSpec(), (1, 2, 3, 4), 10), "samples must be shaped"),
    ],
)
def test_invalid_specs_say_why_in_one_line(make, reason):
    with pytest.raises(ValueError, match=reason) as error:
        make()
    assert "\n" not in str(error.value)
