"""Knowledge distillation of a classifier: a small student learns from a large teacher's softened outputs.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", arXiv:1503.02531.

The teacher's logits ``z_t`` and the student's ``z_s`` are softened by a temperature ``T``; the student minimises

    L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(softmax(z_s), y)

The ``T^2`` keeps the soft term's gradients the same size whatever the temperature (they scale as ``1 / T^2``,
section 2 of the paper), so ``alpha`` means the same mix at every ``T``. ``alpha = 0`` is training on labels
alone and reproduces :func:`trends.training.train_network` exactly for the same spec and seed.

The teacher is fixed, so its logits on the training split are computed once, before the first epoch, and then
indexed like the labels. Everything else is :mod:`trends.training`'s loop: tensors made once, seeded
permutation batches, one torch thread, early stopping on the validation loss (the student's cross-entropy on
the true labels, so that a distilled student and a label-trained one stop by the same rule and are measured
the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trends.data import Dataset
from trends.models import NetworkSpec, build_network
from trends.training import (
    EVAL_BATCH_SIZE,
    TORCH_THREADS,
    Trainer,
    TrainRecipe,
    TrainResult,
    fit,
)


@dataclass(frozen=True)
class DistillConfig:
    """How a student is distilled; frozen and hashable, like :class:`~trends.training.TrainRecipe`."""

    temperature: float = 4.0  # T: softens both softmaxes; 1 is the plain softmax, larger shows the dark knowledge
    alpha: float = 0.9  # weight of the soft (teacher) term; 1 - alpha weighs the hard (label) cross-entropy
    epochs: int = 40  # passes over the training split at most
    batch_size: int = 64  # training samples per gradient step
    learning_rate: float = 1e-3  # Adam's step size
    seed: int = 0  # the student's initial weights, batch order and dropout masks
    patience: int = 5  # epochs without a new best validation loss before training stops

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"the temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        self.recipe  # noqa: B018  the recipe checks epochs, batch size, learning rate and patience

    @property
    def recipe(self) -> TrainRecipe:
        """The training recipe of the student (validates epochs, batch size, learning rate and patience)."""
        return TrainRecipe(
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_epochs=self.epochs,
            patience=self.patience,
            seed=self.seed,
        )


@dataclass
class DistillResult(TrainResult):
    """A distilled student's record (the same fields as a label-trained network's, the student as ``model``, at
    its best epoch's weights) and its teacher's test accuracy."""

    teacher_test_accuracy: float = math.nan

    @property
    def student(self) -> nn.Module | None:
        return self.model


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    """Hinton et al.'s loss, averaged over the batch: ``alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(q, y)``
    with ``p_T = softmax(z_t / T)`` and ``q_T = softmax(z_s / T)``."""
    hard_loss = F.cross_entropy(student_logits, labels)
    if alpha == 0.0:
        return hard_loss  # no soft term at all, so that alpha = 0 is bit-for-bit label training
    log_q_T = F.log_softmax(student_logits / temperature, dim=1)
    log_p_T = F.log_softmax(teacher_logits / temperature, dim=1)
    soft_loss = F.kl_div(log_q_T, log_p_T, reduction="batchmean", log_target=True)
    return alpha * temperature**2 * soft_loss + (1.0 - alpha) * hard_loss


class DistillationTrainer(Trainer):
    """:class:`~trends.training.Trainer` with the distillation loss in place of the cross-entropy on the
    training split; validation and test are measured as the Trainer measures them (cross-entropy, accuracy)."""

    def __init__(
        self, student: nn.Module, teacher: nn.Module, dataset: Dataset, config: DistillConfig, device: str = "cpu"
    ) -> None:
        super().__init__(student, dataset, config.recipe, device=device)
        self.config = config
        self.teacher_logits = _logits(teacher.to(self.device), self.splits["train"][0])  # z_t, once

    def batch_loss(self, batch: torch.Tensor) -> torch.Tensor:
        x, y = self.splits["train"]
        z_s = self.model(x[batch])
        return distillation_loss(z_s, self.teacher_logits[batch], y[batch], self.config.temperature, self.config.alpha)


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[start : start + EVAL_BATCH_SIZE]) for start in range(0, len(x), EVAL_BATCH_SIZE)])
    finally:
        model.train(was_training)


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Accuracy of ``model`` (in eval mode) on arrays or tensors ``x``, ``y``."""
    x, y = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y))  # copies: a dataset's arrays are read-only
    return float((_logits(model, x).argmax(dim=1) == y).float().mean())


def distill(
    teacher: nn.Module, student_spec: NetworkSpec, dataset: Dataset, config: DistillConfig = DistillConfig()
) -> DistillResult:
    """Build the student ``student_spec`` describes and train it on ``dataset`` to match ``teacher``.

    :param teacher: any trained module mapping a batch of samples to ``dataset.n_classes`` logits; it is only
        evaluated (in eval mode, without gradients), never changed
    :param student_spec: the (usually much smaller) network to distil into
    :param dataset: the training split is where the teacher's knowledge is transferred (the "transfer set"),
        the validation split decides early stopping, the test split is only reported
    :param config: temperature, soft/hard mix and the training recipe

    The student's weights are seeded as :func:`~trends.training.train_network` seeds them, so with ``alpha = 0``
    the result is that of ``train_network(student_spec, dataset, config.recipe)``.
    """
    torch.set_num_threads(TORCH_THREADS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        student = build_network(student_spec, dataset.sample_shape, dataset.n_classes)
    trainer = DistillationTrainer(student, teacher, dataset, config)
    result = fit(trainer)
    x_test, y_test = trainer.splits["test"]
    return DistillResult(
        **{f.name: getattr(result, f.name) for f in fields(TrainResult)},
        teacher_test_accuracy=accuracy(teacher, x_test, y_test),
    )
