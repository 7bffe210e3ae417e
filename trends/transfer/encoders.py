"""Pre-trained encoders: a network's feature extractor learnt once per dataset, method and seed, then cached.

The encoder is a :func:`~trends.models.build_network` network without its ``head``: the convolutions, the global
average pool and the dense layer, ``f(x)`` in SimCLR's notation. Supervised pre-training trains the whole network
on the source task (classes 0-4) and keeps all but its head; contrastive pre-training trains ``f`` and a
projection head on the unlabelled pool (:mod:`trends.transfer.contrastive`) and keeps ``f``. Either way what is
transferred is a state dict whose keys are those of a fresh classifier's non-head layers.

A benchmark fine-tunes each encoder at four label fractions in three modes, so an encoder is trained the first
time it is asked for and written atomically to ``runs/transfer/<dataset>-<method>-seed<seed>.pt``, with everything
that defines it (dataset, spec, recipe, augmentation) as its identity: a changed definition is trained again,
never served stale (as :mod:`trends.compression.zoo` does for its models).
"""

from __future__ import annotations

import io
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from trends.data import load_dataset
from trends.files import atomic_write
from trends.models import LayerSpec, NetworkSpec, build_network
from trends.training import TORCH_THREADS, TrainRecipe, fit, train_network
from trends.transfer.contrastive import AUGMENTATIONS, ContrastiveTrainer, projection_head
from trends.transfer.tasks import TARGET_CLASSES, source_task, unlabelled_pool

PRETRAININGS = ("supervised", "contrastive")
DEFAULT_CACHE = Path("runs") / "transfer"  # relative to the working directory, like every run
HEAD = "head"  # build_network's name for the classifier layer, never transferred
PROJECTOR = "projector"  # SimCLR's projection head g, dropped after pre-training

# The encoders. MNIST-1D: the zoo's residual CNN (its classes are shifted, scaled patterns a convolution finds
# wherever they are). digits: an MLP, because build_network's CNNs end in a global average pool, which on an 8x8
# image throws away where the strokes are (a frozen random CNN + head reached 0.54 on the full target task, the
# MLP 0.94; the CNN's linear probes trailed likewise). Both end in a 64-wide dense layer, the representation.
ENCODER_SPECS = {
    "mnist1d": NetworkSpec(
        (
            LayerSpec("conv", 32, kernel=5),
            LayerSpec("conv", 32, kernel=3, skip=True),
            LayerSpec("conv", 64, kernel=3, skip=True),
            LayerSpec("dense", 64),
        )
    ),
    "digits": NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64))),
}


SUPERVISED_RECIPE = TrainRecipe(learning_rate=3e-3, batch_size=64, max_epochs=30, patience=5)
CONTRASTIVE_RECIPE = TrainRecipe(learning_rate=3e-3, batch_size=128, max_epochs=40, patience=5)


@dataclass(frozen=True)
class PretrainConfig:
    """How encoders are pre-trained; part of each cached encoder's identity."""

    supervised: TrainRecipe = SUPERVISED_RECIPE  # on the source task; its seed is replaced by the encoder's
    contrastive: TrainRecipe = CONTRASTIVE_RECIPE  # on the unlabelled pool; SimCLR wants large batches
    temperature: float = 0.2  # NT-Xent's tau (SimCLR: 0.1-0.5; 0.2 beat 0.5 in MNIST-1D probes, one seed)
    projection: int = 32  # output features of the projection head g


@dataclass
class Encoder:
    """A pre-trained encoder's weights and what its pre-training measured."""

    dataset: str
    pretraining: str
    seed: int
    state: dict[str, torch.Tensor]  # the classifier's non-head weights
    metric: float  # supervised: source-task validation accuracy; contrastive: validation NT-Xent loss
    epochs: int
    seconds: float
    from_cache: bool


def encoder_spec(dataset: str) -> NetworkSpec:
    if dataset not in ENCODER_SPECS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(ENCODER_SPECS)}")
    return ENCODER_SPECS[dataset]


def new_classifier(dataset: str, seed: int) -> nn.Sequential:
    """A randomly initialised (from ``seed``) classifier of the target task's five classes."""
    sample_shape = load_dataset(dataset).sample_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(encoder_spec(dataset), sample_shape, len(TARGET_CLASSES))


def encoder_modules(network: nn.Sequential) -> OrderedDict[str, nn.Module]:
    """The blocks of ``network`` before its head (or projection head), by name (shared, not copied)."""
    return OrderedDict((name, module) for name, module in network.named_children() if name not in (HEAD, PROJECTOR))


def encoder_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the encoder's weights: every entry but the head's (and a projection head's)."""
    keep = tuple(encoder_modules(network))
    return {k: v.detach().clone() for k, v in network.state_dict().items() if k.split(".")[0] in keep}


def load_encoder(
    dataset: str,
    pretraining: str,
    seed: int,
    config: PretrainConfig = PretrainConfig(),
    cache_dir: Path | None = DEFAULT_CACHE,
) -> Encoder:
    """The encoder of ``dataset`` pre-trained by ``pretraining`` (one of :data:`PRETRAININGS`) with ``seed``: read
    from ``cache_dir`` when a file with the same identity is there, else trained and written (``cache_dir=None``:
    trained, never cached)."""
    if pretraining not in PRETRAININGS:
        raise ValueError(f"unknown pre-training {pretraining!r}; choose one of {', '.join(PRETRAININGS)}")
    identity = json.dumps(
        {
            "dataset": dataset,
            "pretraining": pretraining,
            "seed": seed,
            "spec": repr(encoder_spec(dataset)),
            "config": repr(config),
            "augmentation": repr(AUGMENTATIONS[dataset]) if pretraining == "contrastive" else None,
        }
    )
    path = None if cache_dir is None else Path(cache_dir) / f"{dataset}-{pretraining}-seed{seed}.pt"
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        if saved.get("identity") == identity:
            return Encoder(dataset, pretraining, seed, saved["state"], *saved["record"], from_cache=True)
    train = _pretrain_supervised if pretraining == "supervised" else _pretrain_contrastive
    start = time.perf_counter()
    state, metric, epochs = train(dataset, seed, config)
    encoder = Encoder(dataset, pretraining, seed, state, metric, epochs, time.perf_counter() - start, False)
    if path is not None:
        buffer = io.BytesIO()
        torch.save({"identity": identity, "state": state, "record": [metric, epochs, encoder.seconds]}, buffer)
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return encoder


def _pretrain_supervised(dataset: str, seed: int, config: PretrainConfig) -> tuple[dict, float, int]:
    """Train the whole classifier on the source classes; the encoder is everything but its head."""
    recipe = replace(config.supervised, seed=seed)
    result = train_network(encoder_spec(dataset), source_task(load_dataset(dataset)), recipe)
    return encoder_state(result.model), result.val_accuracy, result.epochs


def _pretrain_contrastive(dataset: str, seed: int, config: PretrainConfig) -> tuple[dict, float, int]:
    """SimCLR on every training input: the encoder plus a projection head, trained on NT-Xent."""
    torch.set_num_threads(TORCH_THREADS)
    encoder = encoder_modules(new_classifier(dataset, seed))
    width = encoder_spec(dataset).layers[-1].width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(OrderedDict([*encoder.items(), (PROJECTOR, projection_head(width, config.projection))]))
    recipe = replace(config.contrastive, seed=seed)
    pool = unlabelled_pool(load_dataset(dataset))
    result = fit(ContrastiveTrainer(model, pool, AUGMENTATIONS[dataset], config.temperature, recipe))
    return encoder_state(result.model), result.val_loss, result.epochs
