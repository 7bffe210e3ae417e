"""Structured and unstructured pruning of child networks, and fine-tuning after it."""

from __future__ import annotations

import copy
import statistics
import time

import pytest
import torch
from torch import nn

from trends.compression.prune import (
    coupled_layers,
    fine_tune,
    prunable_layers,
    prune_structured,
    prune_unstructured,
    sparsity,
)
from trends.data import load_dataset
from trends.models import LayerSpec, NetworkSpec, build_network, count_flops, count_parameters
from trends.training import Trainer, TrainRecipe

torch.set_num_threads(1)

CONV1D = NetworkSpec(  # MNIST-1D: identity skip (conv2), projection skip (conv3), dense after the pool
    (
        LayerSpec("conv", 16, 5),
        LayerSpec("conv", 16, 3, skip=True),
        LayerSpec("conv", 32, 3, skip=True),
        LayerSpec("dense", 64),
        LayerSpec("dense", 64, skip=True, dropout=0.1),
        LayerSpec("dense", 32, skip=True, activation="tanh"),
    )
)
CONV2D = NetworkSpec(  # digits: 2-D convs with a projection skip, a dense layer with a linear projection
    (LayerSpec("conv", 8), LayerSpec("conv", 16, skip=True), LayerSpec("dense", 32, skip=True))
)
MLP = NetworkSpec((LayerSpec("dense", 48), LayerSpec("dense", 48, skip=True), LayerSpec("dense", 24)))
NETWORKS = {"conv1d": (CONV1D, (1, 40)), "conv2d": (CONV2D, (1, 8, 8)), "mlp": (MLP, (1, 8, 8))}


def make(name: str, seed: int = 0) -> tuple[nn.Sequential, tuple[int, ...]]:
    spec, shape = NETWORKS[name]
    torch.manual_seed(seed)
    return build_network(spec, shape, 10), shape


def widths(model: nn.Sequential) -> dict[str, int]:
    return {name: layer.weight.shape[0] for name, layer in prunable_layers(model)}


@pytest.mark.parametrize("name", NETWORKS)
def test_structured_pruning_really_shrinks_the_network(name: str) -> None:
    model, shape = make(name)
    original = copy.deepcopy(model.state_dict())
    before = widths(model)
    pruned = prune_structured(model, shape, 0.5)

    assert widths(pruned) == {layer: width // 2 for layer, width in before.items()}
    # halving every hidden width about quarters the work between two hidden layers; the input and classes stay
    assert count_parameters(pruned) < 0.4 * count_parameters(model)
    assert 0.2 * count_flops(model, shape) < count_flops(pruned, shape) < 0.4 * count_flops(model, shape)
    out = pruned.eval()(torch.randn(7, *shape))
    assert out.shape == (7, 10) and torch.isfinite(out).all()
    # the original is untouched
    assert widths(model) == before
    assert all(torch.equal(value, original[key]) for key, value in model.state_dict().items())


@pytest.mark.parametrize("name", NETWORKS)
def test_preserving_everything_is_the_identity(name: str) -> None:
    model, shape = make(name)
    pruned = prune_structured(model, shape, 1.0)
    x = torch.randn(16, *shape)
    assert torch.equal(pruned.eval()(x), model.eval()(x))
    assert pruned is not model


def test_a_layer_whose_output_joins_the_input_cannot_be_pruned() -> None:
    spec = NetworkSpec((LayerSpec("dense", 64, skip=True), LayerSpec("dense", 32)))  # identity skip from the input
    torch.manual_seed(0)
    model = build_network(spec, (1, 8, 8), 10)
    assert [name for name, _ in prunable_layers(model)] == ["dense2"]
    pruned = prune_structured(model, (1, 8, 8), 0.5)
    assert pruned.dense1.layer.out_features == 64 and pruned.dense2.layer.out_features == 16
    assert pruned(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_per_layer_ratios_and_coupled_layers() -> None:
    model, shape = make("conv1d")
    assert [name for name, _ in prunable_layers(model)] == ["conv1", "conv2", "conv3", "dense1", "dense2", "dense3"]
    # conv2's identity skip couples it with conv1, dense2's with dense1: each pair follows its first layer's ratio
    groups = [("conv1", "conv2"), ("conv3",), ("dense1", "dense2"), ("dense3",)]
    assert coupled_layers(model, shape) == groups
    assert coupled_layers(make("conv2d")[0], (1, 8, 8)) == [("conv1",), ("conv2",), ("dense1",)]
    pruned = prune_structured(model, shape, {"conv1": 0.25, "conv2": 1.0, "conv3": 0.5, "dense2": 0.5})
    assert widths(pruned) == {"conv1": 4, "conv2": 4, "conv3": 16, "dense1": 64, "dense2": 64, "dense3": 32}
    in_order = prune_structured(model, shape, [0.25, 1.0, 0.5, 1.0, 0.5, 1.0])
    assert widths(in_order) == widths(pruned)
    tiny = prune_structured(model, shape, 0.01)
    assert set(widths(tiny).values()) == {1}  # at least one channel stays
    assert tiny(torch.randn(2, *shape)).shape == (2, 10)


def test_the_norm_ranks_the_neurons() -> None:
    torch.manual_seed(0)
    model = build_network(NetworkSpec((LayerSpec("dense", 2),)), (4,), 3)
    with torch.no_grad():
        model.dense1.layer.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]]))
    # row 0 has the larger L1 norm (4 > 3), row 1 the larger L2 norm (3 > 2)
    l1 = prune_structured(model, (4,), 0.5, norm="l1").dense1.layer.weight
    l2 = prune_structured(model, (4,), 0.5, norm="l2").dense1.layer.weight
    assert torch.equal(l1, model.dense1.layer.weight[:1]) and torch.equal(l2, model.dense1.layer.weight[1:])
    assert torch.equal(prune_structured(model, (4,), 0.5).head.weight, model.head.weight[:, :1])


@pytest.mark.parametrize(
    "ratios, message",
    [(0.0, "in \\(0, 1\\]"), (1.5, "in \\(0, 1\\]"), ([0.5], "3 prunable"), ({"conv9": 0.5}, "no prunable layer")],
)
def test_bad_ratios_are_refused(ratios: object, message: str) -> None:
    model, shape = make("conv2d")
    with pytest.raises(ValueError, match=message):
        prune_structured(model, shape, ratios)
    with pytest.raises(ValueError, match="unknown norm"):
        prune_structured(model, shape, 0.5, norm="l3")


def test_a_pruned_wide_network_is_faster() -> None:
    spec = NetworkSpec(
        (
            LayerSpec("conv", 64, 5),
            LayerSpec("conv", 64, skip=True),
            LayerSpec("conv", 128, skip=True),
            LayerSpec("dense", 256),
        )
    )
    torch.manual_seed(0)
    model = build_network(spec, (1, 40), 10).eval()
    pruned = prune_structured(model, (1, 40), 0.5).eval()
    x = torch.randn(256, 1, 40)
    timings: dict[nn.Module, list[float]] = {model: [], pruned: []}
    with torch.no_grad():
        for _ in range(3):  # warm-up
            model(x), pruned(x)
        for _ in range(12):  # interleaved, so a burst of load elsewhere slows both alike
            for net in (model, pruned):
                start = time.perf_counter()
                net(x)
                timings[net].append(time.perf_counter() - start)
    # a quarter of the FLOPs measured about half the time on one core; a generous margin for a shared machine
    assert statistics.median(timings[pruned]) < 0.85 * statistics.median(timings[model])


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_pruning_zeroes_weights_and_keeps_shapes(scope: str) -> None:
    model, shape = make("conv1d")
    original = copy.deepcopy(model.state_dict())
    pruned = prune_unstructured(model, 0.6, scope=scope)
    assert sparsity(pruned) == pytest.approx(0.6, abs=0.01) and sparsity(model) == 0.0
    assert {k: v.shape for k, v in pruned.state_dict().items()} == {k: v.shape for k, v in original.items()}
    assert count_parameters(pruned) == count_parameters(model)
    assert all(torch.equal(value, original[key]) for key, value in model.state_dict().items())
    assert not any(m._forward_pre_hooks for m in pruned.modules())  # pruning made permanent, no masks left
    if scope == "layer":
        assert all(sparsity(layer) == pytest.approx(0.6, abs=0.01) for _, layer in prunable_layers(pruned))
    assert pruned(torch.randn(2, *shape)).shape == (2, 10)


def test_unstructured_pruning_can_spare_the_classifier() -> None:
    model, _ = make("conv2d")
    pruned = prune_unstructured(model, 0.5, scope="layer", include_head=False)
    assert torch.equal(pruned.head.weight, model.head.weight)
    assert sparsity(pruned.conv2) == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        prune_unstructured(model, 1.2)


@pytest.fixture(scope="module")
def trained_mlp() -> tuple[nn.Sequential, float]:
    """A digits MLP trained for a few epochs, and its validation accuracy."""
    dataset = load_dataset("digits")
    torch.manual_seed(0)
    model = build_network(NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64))), dataset.sample_shape, 10)
    trainer = Trainer(model, dataset, TrainRecipe(seed=0))
    for _ in range(8):
        trainer.run_epoch()
    return model, trainer.evaluate("val")[1]


def val_accuracy(model: nn.Module) -> float:
    return Trainer(model, load_dataset("digits")).evaluate("val")[1]


def test_fine_tuning_recovers_the_accuracy_structured_pruning_lost(trained_mlp: tuple[nn.Sequential, float]) -> None:
    model, accuracy = trained_mlp
    assert accuracy > 0.85
    pruned = prune_structured(model, (1, 8, 8), 0.3)
    assert count_parameters(pruned) < 0.25 * count_parameters(model)
    pruned_accuracy = val_accuracy(pruned)
    assert pruned_accuracy < accuracy - 0.1
    history = fine_tune(pruned, load_dataset("digits"), epochs=3)
    assert len(history) == 3
    assert val_accuracy(pruned) > pruned_accuracy + 0.1
    val_loss = Trainer(pruned, load_dataset("digits")).evaluate("val")[0]
    assert val_loss == pytest.approx(min(stats.val_loss for stats in history))  # left at the best epoch


def test_fine_tuning_keeps_an_unstructured_pruning_sparse(trained_mlp: tuple[nn.Sequential, float]) -> None:
    model, _ = trained_mlp
    pruned = prune_unstructured(model, 0.9)
    zeros = [layer.weight == 0 for layer in pruned.modules() if isinstance(layer, nn.Linear)]
    before = val_accuracy(pruned)
    fine_tune(pruned, load_dataset("digits"), epochs=2, recipe=TrainRecipe(weight_decay=1e-4))
    after = [layer.weight == 0 for layer in pruned.modules() if isinstance(layer, nn.Linear)]
    assert all(torch.equal(a, b) for a, b in zip(zeros, after, strict=True))
    assert val_accuracy(pruned) > before
