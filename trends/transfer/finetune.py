"""Transfer to the target task with few labels: a pre-trained encoder plus a new head, trained on a fraction of
the target's training labels, against the same network trained from scratch.

Modes (the issue's comparison):

- ``linear_probe``: the encoder is frozen and only the new linear head learns; measures how good the features
  are as they are.
- ``fine_tune``: everything learns, the encoder at ``encoder_lr_scale`` times the head's learning rate, so a
  few noisy labels adjust the features without wiping out what pre-training put there.
- ``scratch``: the same architecture from a random initialisation, everything trained (no pre-training).

``pretraining="none"`` with ``linear_probe`` is the frozen random encoder plus a head: the floor any pre-training
must beat, the check that a learnt encoder carries something. Every run is :func:`trends.training.fit`, early
stopping on the target's validation loss, measured on the target's test split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from trends.data import Dataset, load_dataset
from trends.models import count_parameters
from trends.training import EVAL_BATCH_SIZE, Trainer, TrainRecipe, fit
from trends.transfer.encoders import (
    DEFAULT_CACHE,
    HEAD,
    PRETRAININGS,
    PretrainConfig,
    encoder_modules,
    encoder_spec,
    load_encoder,
    new_classifier,
)
from trends.transfer.tasks import target_task

MODES = ("fine_tune", "linear_probe", "scratch")
LABEL_FRACTIONS = (0.01, 0.05, 0.1, 1.0)


@dataclass(frozen=True)
class TransferConfig:
    """How the target task is trained. Epochs are cheap at 1% of the labels (a step or two each), so the budget
    is generous and early stopping, with ``patience`` counted in epochs, does the rest."""

    learning_rate: float = 3e-3  # the head's (and a scratch network's) Adam step size
    encoder_lr_scale: float = 0.1  # fine_tune: the encoder learns at this share of the head's rate
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 10
    probe_max_epochs: int = 1000  # a linear probe trains on features computed once, so early stopping ends it
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


@dataclass
class TransferResult:
    """One target-task training run."""

    dataset: str
    pretraining: str
    mode: str
    label_fraction: float
    seed: int
    n_labels: int  # target training samples with their label
    test_accuracy: float
    val_accuracy: float
    epochs: int
    seconds: float  # target-task training only; pre-training is in ``pretrain_seconds``
    trainable_parameters: int
    pretrain_seconds: float = 0.0  # 0 when the encoder came from the cache or there was none
    pretrain_metric: float = math.nan  # source validation accuracy (supervised) or NT-Xent loss (contrastive)


def run_transfer(
    dataset: str,
    pretraining: str = "supervised",
    mode: str = "fine_tune",
    label_fraction: float = 1.0,
    seed: int = 0,
    config: TransferConfig = TransferConfig(),
    cache_dir: Path | None = DEFAULT_CACHE,
) -> TransferResult:
    """Train the target task (classes 5-9 of ``dataset``) on ``label_fraction`` of its training labels.

    :param pretraining: ``"supervised"`` (on classes 0-4), ``"contrastive"`` (SimCLR on all training inputs) or
        ``"none"`` (a random encoder)
    :param mode: one of :data:`MODES`; ``scratch`` goes with ``pretraining="none"``, ``fine_tune`` needs an
        encoder worth keeping (with ``"none"`` it would be scratch at a lower learning rate)
    :param seed: the label subsample, the classifier's initial weights (head included), the batch order, and
        the pre-training of the encoder
    :param cache_dir: where pre-trained encoders are cached (None: trained every time)
    """
    check_arm(pretraining, mode)
    encoder_spec(dataset)  # a one-line error for an unknown dataset before anything is trained
    task = target_task(load_dataset(dataset), label_fraction, seed)
    model = new_classifier(dataset, seed)
    encoder = None
    if pretraining != "none":
        encoder = load_encoder(dataset, pretraining, seed, config.pretrain, cache_dir)
        missing, unexpected = model.load_state_dict(encoder.state, strict=False)
        assert not unexpected and all(k.startswith(f"{HEAD}.") for k in missing), (missing, unexpected)
    recipe = TrainRecipe(
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        max_epochs=config.max_epochs,
        patience=config.patience,
        seed=seed,
    )
    if mode == "linear_probe":
        model, task = model.get_submodule(HEAD), frozen_features(model, task)
        recipe = replace(recipe, max_epochs=config.probe_max_epochs)
    trainer = Trainer(model, task, recipe)
    if mode == "fine_tune":
        trainer.optimizer = _two_speed_adam(model, config)
    result = fit(trainer)
    return TransferResult(
        dataset=dataset,
        pretraining=pretraining,
        mode=mode,
        label_fraction=label_fraction,
        seed=seed,
        n_labels=len(task.y_train),
        test_accuracy=result.test_accuracy,
        val_accuracy=result.val_accuracy,
        epochs=result.epochs,
        seconds=result.seconds,
        trainable_parameters=count_parameters(model),  # the head alone, for a linear probe
        pretrain_seconds=0.0 if encoder is None or encoder.from_cache else encoder.seconds,
        pretrain_metric=math.nan if encoder is None else encoder.metric,
    )


@torch.no_grad()
def frozen_features(network: nn.Sequential, task: Dataset) -> Dataset:
    """``task`` with every input replaced by the encoder's features of it. A linear probe is the head trained on
    these: the same numbers as training the whole network with the encoder frozen (it has no dropout or
    normalisation to behave differently in training), at the cost of one forward pass instead of one per epoch."""
    encoder = nn.Sequential(encoder_modules(network)).eval()
    arrays = {}
    for split in ("train", "val", "test"):
        x = torch.tensor(getattr(task, f"x_{split}"))
        chunks = [encoder(chunk) for chunk in x.split(EVAL_BATCH_SIZE)]
        arrays[f"x_{split}"] = torch.cat(chunks).numpy()
    return replace(task, **arrays)


def check_arm(pretraining: str, mode: str) -> None:
    """ValueError with the reason when ``pretraining`` and ``mode`` are unknown or make no sense together."""
    if pretraining not in (*PRETRAININGS, "none"):
        raise ValueError(f"unknown pre-training {pretraining!r}; choose one of {', '.join(PRETRAININGS)}, none")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "scratch" and pretraining != "none":
        raise ValueError("scratch trains from a random initialisation: use pretraining 'none'")
    if mode == "fine_tune" and pretraining == "none":
        raise ValueError("fine_tune needs a pre-trained encoder; without one, use mode 'scratch'")


def _two_speed_adam(model: nn.Module, config: TransferConfig) -> torch.optim.Optimizer:
    """Adam with the head at the full learning rate and the encoder at ``encoder_lr_scale`` of it."""
    head = [p for name, p in model.named_parameters() if name.startswith(f"{HEAD}.")]
    body = [p for name, p in model.named_parameters() if not name.startswith(f"{HEAD}.")]
    return torch.optim.Adam(
        [
            {"params": body, "lr": config.learning_rate * config.encoder_lr_scale},
            {"params": head, "lr": config.learning_rate},
        ]
    )
