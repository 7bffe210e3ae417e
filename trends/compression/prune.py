"""Pruning of child networks: structured (whole output channels / neurons removed, so the network really gets
smaller and faster), unstructured (single weights set to zero), and a short fine-tune to recover accuracy.

Library choice. Structured pruning uses torch-pruning's dependency graph (Fang et al., "DepGraph: Towards Any
Structural Pruning", CVPR 2023). Removing a layer's output channels means removing the matching input channels
of every layer that reads them, and, through a residual addition, the same channels of every layer the addition
couples with: an identity skip ties a block's output to the previous block's, a projection skip ties the block's
layer to its 1x1 / linear projection, and the global average pool ties the last convolution's channels to the
first dense layer's inputs. torch-pruning traces the model once and finds these groups for us; checked on
conv1d, conv2d and dense networks with identity and projection skips, with torch 2.13. ``torch.nn.utils.prune``
only multiplies weights by a mask, which makes nothing smaller, so it serves the unstructured pruning alone.

Importance is the L1 or L2 norm of a channel's (a neuron's) incoming weights, summed over the layers whose outputs
the channel couples (Li et al. 2017, "Pruning Filters for Efficient ConvNets"). Ratios are *preserve* ratios,
the share of a layer's output channels kept, as in AMC (He et al. 2018), whose agent picks one per layer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import prune as torch_prune

from trends.data import Dataset
from trends.models import Block
from trends.training import TORCH_THREADS, EpochStats, Trainer, TrainRecipe

NORMS = {"l1": 1, "l2": 2}
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)

PreserveRatios = Mapping[str, float] | Sequence[float] | float


def prunable_layers(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """The layers whose output channels (neurons) can be removed, in forward order, named by their block
    (``conv1``, ``dense2``...): every hidden convolution and linear layer of a network built by
    :func:`trends.models.build_network`, but not the classifier, whose outputs are the classes.

    A layer whose output an identity skip adds to the network's input (directly or through a chain of identity
    skips) is left out too: the input's features cannot be removed, so neither can the layer's.
    """
    layers: list[tuple[str, nn.Module]] = []
    tied_to_input = True  # whether the current features are the network's input features
    for name, module in model.named_children():
        if isinstance(module, Block):
            tied_to_input = tied_to_input and isinstance(module.shortcut, nn.Identity)
            if not tied_to_input:
                layers.append((name, module.layer))
    return layers


def prune_structured(
    model: nn.Sequential,
    sample_shape: tuple[int, ...],
    preserve_ratios: PreserveRatios,
    norm: Literal["l1", "l2"] = "l1",
) -> nn.Sequential:
    """A copy of ``model`` with the least important output channels / neurons of its hidden layers removed.

    :param model: a network built by :func:`trends.models.build_network`; it is not changed
    :param sample_shape: the shape of one sample, channels first; the copy is traced on a zero batch of one
    :param preserve_ratios: the share of each layer's outputs kept, in (0, 1]: one number for every layer, one per
        layer of :func:`prunable_layers` in order, or a mapping from layer name to ratio (missing layers are kept
        whole). At least one output of every layer is kept. Layers that a residual addition couples lose the same
        channels, so they share one ratio: that of the first of them in forward order, the others' are ignored
    :param norm: ``"l1"`` or ``"l2"``, the norm of a channel's weights that ranks it
    :return: the smaller network, a regular ``nn.Sequential`` of the same blocks with narrower layers, in the
        original's training mode
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
    ratios = _resolve_ratios(model, preserve_ratios)
    pruned = copy.deepcopy(model)
    was_training = pruned.training
    graph = _dependency_graph(pruned, sample_shape)
    for name, layer, coupled in _coupled_groups(pruned, graph):
        # ranked on the weights as they are now: earlier groups' pruning removed some of these layers' inputs
        scores = _channel_norms(coupled, NORMS[norm])
        keep = max(1, math.floor(ratios[name] * len(scores) + 0.5))
        if keep < len(scores):
            removed = torch.argsort(scores)[: len(scores) - keep].tolist()
            graph.get_pruning_group(layer, _out_channel_pruner(layer), idxs=removed).prune()
    return pruned.train(was_training)


def coupled_layers(model: nn.Sequential, sample_shape: tuple[int, ...]) -> list[tuple[str, ...]]:
    """The prunable layers grouped by the output channels they must lose together, in forward order: the first
    name of a group is the one whose preserve ratio :func:`prune_structured` applies to the whole group. An
    identity skip couples a block with the block before it; e.g. ``[("conv1", "conv2"), ("conv3",)]``."""
    traced = copy.deepcopy(model)  # the original stays untouched by the tracing
    graph = _dependency_graph(traced, sample_shape)
    order = {layer: (i, name) for i, (name, layer) in enumerate(prunable_layers(traced))}
    return [
        tuple(name for _, name in sorted(order[m] for m in coupled if m in order))
        for _, _, coupled in _coupled_groups(traced, graph)
    ]


def _dependency_graph(model: nn.Module, sample_shape: tuple[int, ...]) -> tp.DependencyGraph:
    """torch-pruning's graph of which channels depend on which, traced on a zero sample in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=torch.zeros((1, *sample_shape), device=device), verbose=False
        )
    finally:
        model.train(was_training)


def _coupled_groups(model: nn.Sequential, graph: tp.DependencyGraph) -> list[tuple[str, nn.Module, list[nn.Module]]]:
    """Per group of coupled layers, in forward order: the first prunable layer's name, that layer, and every
    layer whose output channels the group shares (residual projections included)."""
    groups, seen = [], set()
    for name, layer in prunable_layers(model):
        if layer in seen:
            continue
        group = graph.get_pruning_group(layer, _out_channel_pruner(layer), idxs=list(range(_out_channels(layer))))
        coupled = [dep.target.module for dep, _ in group if graph.is_out_channel_pruning_fn(dep.handler)]
        coupled = [layer] + [m for m in coupled if m is not layer]
        seen.update(coupled)
        groups.append((name, layer, coupled))
    return groups


def _resolve_ratios(model: nn.Sequential, preserve_ratios: PreserveRatios) -> dict[str, float]:
    names = [name for name, _ in prunable_layers(model)]
    if isinstance(preserve_ratios, Mapping):
        unknown = sorted(set(preserve_ratios) - set(names))
        if unknown:
            raise ValueError(f"no prunable layer named {', '.join(unknown)}; the model's are {', '.join(names)}")
        ratios = {name: float(preserve_ratios.get(name, 1.0)) for name in names}
    elif isinstance(preserve_ratios, Sequence):
        if len(preserve_ratios) != len(names):
            raise ValueError(f"got {len(preserve_ratios)} preserve ratios for {len(names)} prunable layers")
        ratios = dict(zip(names, map(float, preserve_ratios), strict=True))
    else:
        ratios = dict.fromkeys(names, float(preserve_ratios))
    for name, ratio in ratios.items():
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"a preserve ratio must be in (0, 1], got {ratio} for {name}")
    return ratios


def _out_channel_pruner(layer: nn.Module) -> tp.pruner.function.BasePruningFunc:
    return tp.prune_linear_out_channels if isinstance(layer, nn.Linear) else tp.prune_conv_out_channels


def _out_channels(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


@torch.no_grad()
def _channel_norms(layers: Iterable[nn.Module], p: int) -> torch.Tensor:
    """Per output channel, the L``p`` norm of its incoming weights, summed over coupled layers (biases aside)."""
    return sum(layer.weight.flatten(1).norm(p=p, dim=1) for layer in layers if isinstance(layer, WEIGHT_LAYERS))


def prune_unstructured(
    model: nn.Module,
    amount: float,
    scope: Literal["global", "layer"] = "global",
    include_head: bool = True,
) -> nn.Module:
    """A copy of ``model`` with the share ``amount`` of its convolution and linear weights of smallest magnitude
    set to zero, for good (``torch.nn.utils.prune`` then ``prune.remove``: no masks or hooks are left behind).

    Shapes and the parameter count stay; only the number of nonzero weights drops. Dense CPU and GPU kernels
    multiply zeros as fast as any other number, so this alone makes the network neither faster nor smaller in
    memory; it pays off with sparse storage / kernels or compression on disk, and it tells how much redundancy
    a network has. Biases are not pruned.

    :param amount: share of weights zeroed, in [0, 1]
    :param scope: ``"global"`` ranks all weights together, so layers lose different shares; ``"layer"`` zeroes
        ``amount`` of every layer's weights
    :param include_head: prune the classifier too
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"the share of weights to prune must be in [0, 1], got {amount}")
    if scope not in ("global", "layer"):
        raise ValueError(f"unknown scope {scope!r}; choose 'global' or 'layer'")
    pruned = copy.deepcopy(model)
    head = getattr(pruned, "head", None)
    targets = [
        (m, "weight") for m in pruned.modules() if isinstance(m, WEIGHT_LAYERS) and (include_head or m is not head)
    ]
    if scope == "global":
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=amount)
    else:
        for module, param in targets:
            torch_prune.l1_unstructured(module, param, amount=amount)
    for module, param in targets:
        torch_prune.remove(module, param)
    return pruned


def sparsity(model: nn.Module) -> float:
    """The share of convolution and linear weights that are exactly zero."""
    weights = [m.weight for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def fine_tune(
    model: nn.Module,
    dataset: Dataset,
    epochs: int = 3,
    recipe: TrainRecipe | None = None,
    keep_zeros: bool = True,
    device: str = "cpu",
) -> list[EpochStats]:
    """Train a pruned ``model`` in place for ``epochs`` epochs with the project's training loop, and leave it at
    the weights of the epoch with the lowest validation loss.

    :param recipe: optimiser, learning rate, batch size and seed (the default recipe when None); its ``max_epochs``
        and ``patience`` are unused
    :param keep_zeros: freeze the weights that are exactly zero when fine-tuning starts (their gradients are
        masked), so an unstructured pruning stays sparse; it changes nothing after a structured one
    :return: one record per epoch
    """
    if epochs < 1:
        raise ValueError(f"fine-tuning needs at least 1 epoch, got {epochs}")
    torch.set_num_threads(TORCH_THREADS)
    # the trainer moves the model to its device, so it comes before the gradient masks, made on that device
    trainer = Trainer(model, dataset, recipe or TrainRecipe(), device=device)
    handles = _freeze_zeros(model) if keep_zeros else []
    try:
        history, best_loss, best_state = [], math.inf, trainer.state()
        for _ in range(epochs):
            stats = trainer.run_epoch()
            history.append(stats)
            if stats.val_loss < best_loss:
                best_loss, best_state = stats.val_loss, trainer.state()
        model.load_state_dict(best_state)
    finally:
        for handle in handles:
            handle.remove()
    return history


def _freeze_zeros(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Zero the gradients of zero weights. With a zero gradient and a zero weight, Adam's and SGD's updates
    (weight decay, momentum and AdamW's decoupled decay included) are zero, so those weights stay zero."""
    handles = []
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS) and bool((module.weight == 0).any()):
            mask = (module.weight != 0).to(module.weight.dtype)
            handles.append(module.weight.register_hook(lambda grad, mask=mask: grad * mask))
    return handles
