"""The trained models compression works on: trained once with a fixed recipe and seed, then loaded from a cache.

A pruning or quantization environment evaluates hundreds of compressed variants of one trained network; training
that network again for every environment, test or benchmark would cost more than everything else. So each model
of :data:`ZOO` is trained the first time it is asked for and its weights are written (atomically) to
``runs/compression/<name>.pt``; later calls, in any process, load them. The dataset, spec and recipe are part of
the file, so a changed definition is trained again rather than served stale.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trends.data import Dataset, load_dataset
from trends.files import atomic_write
from trends.models import LayerSpec, NetworkSpec, build_network
from trends.training import TrainRecipe, train_network

DEFAULT_CACHE = Path("runs") / "compression"  # relative to the working directory, like every run


@dataclass(frozen=True)
class ZooEntry:
    """What a zoo model is: the dataset it classifies, its architecture and how it is trained."""

    dataset: str
    spec: NetworkSpec
    recipe: TrainRecipe


ZOO: dict[str, ZooEntry] = {
    # An MNIST-1D CNN with residual connections, the shape AMC prunes: coupled channels, then a dense head.
    "mnist1d-cnn": ZooEntry(
        "mnist1d",
        NetworkSpec(
            (
                LayerSpec("conv", 32, kernel=5),
                LayerSpec("conv", 32, kernel=3, skip=True),
                LayerSpec("conv", 64, kernel=3, skip=True),
                LayerSpec("dense", 64),
            )
        ),
        TrainRecipe(learning_rate=3e-3, batch_size=64, max_epochs=30, patience=5, seed=0),
    ),
    # A digits MLP: the smallest network the course's "phone" story starts from.
    "digits-mlp": ZooEntry(
        "digits",
        NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64))),
        TrainRecipe(learning_rate=1e-3, batch_size=32, max_epochs=40, patience=5, seed=0),
    ),
}


@dataclass
class TrainedModel:
    """A zoo model with its weights, the dataset it was trained on and the accuracies it reached."""

    name: str
    dataset: Dataset
    spec: NetworkSpec
    model: nn.Module  # in eval mode
    val_accuracy: float
    test_accuracy: float


def load_trained(name: str, cache_dir: Path = DEFAULT_CACHE) -> TrainedModel:
    """The zoo model ``name``, from the cache when it is there, else trained now and cached. ValueError naming
    the models for an unknown name."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(ZOO)}")
    entry = ZOO[name]
    dataset = load_dataset(entry.dataset)
    path = Path(cache_dir) / f"{name}.pt"
    identity = json.dumps({"dataset": entry.dataset, "spec": repr(entry.spec), "recipe": repr(entry.recipe)})
    saved = torch.load(path, weights_only=True) if path.exists() else None
    model = build_network(entry.spec, dataset.sample_shape, dataset.n_classes)
    if saved is not None and saved.get("identity") == identity:
        model.load_state_dict(saved["state_dict"])
        val_accuracy, test_accuracy = float(saved["val_accuracy"]), float(saved["test_accuracy"])
    else:
        result = train_network(entry.spec, dataset, entry.recipe)
        model = result.model
        val_accuracy, test_accuracy = result.val_accuracy, result.test_accuracy
        record = {
            "identity": identity,
            "state_dict": model.state_dict(),
            "val_accuracy": val_accuracy,
            "test_accuracy": test_accuracy,
        }
        buffer = io.BytesIO()
        torch.save(record, buffer)
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
    model.eval()
    return TrainedModel(name, dataset, entry.spec, model, val_accuracy, test_accuracy)
