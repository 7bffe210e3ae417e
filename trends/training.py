"""The one training loop of trendgym: every child network of the AutoML, compression, ensemble and transfer
modules is trained here, so their accuracies are comparable.

:func:`train_network` trains a :class:`~trends.models.NetworkSpec` with early stopping on validation loss and
reports the accuracy of the best epoch's weights. :class:`Trainer` is the same loop one epoch at a time, with
the learning rate set by the caller each epoch, for the learning-rate-control environment.

Choices made for speed on a small CPU: the dataset's arrays become tensors once and are mini-batched by
indexing with a seeded permutation (measured on MNIST-1D's 3200 training signals: 0.3 ms an epoch, against 8 ms
for a shuffling DataLoader over the same tensors, when a small MLP's whole epoch on digits takes about 5 ms),
evaluation runs in large batches without gradients, and torch uses one thread (on a two-core machine torch's
default thread count can make small networks far slower, not faster).

Determinism: a seed fixes the initial weights, the batch order and the dropout masks. The trainer keeps its
own random state, so a caller using torch's random numbers between epochs (an RL agent, say) changes nothing,
and training changes nothing of the caller's random state.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from trends.data import Dataset
from trends.models import NetworkSpec, build_network, count_flops, count_parameters

OPTIMIZERS = ("adam", "sgd", "adamw")
SGD_MOMENTUM = 0.9
EVAL_BATCH_SIZE = 4096  # evaluation has no gradients to hold, so a whole split of these datasets fits in a batch
TORCH_THREADS = 1
DIVERGENCE_FACTOR = 100.0  # a loss this many times chance level's, ln(n_classes), counts as diverged


@dataclass(frozen=True)
class TrainRecipe:
    """How a child network is trained; frozen and hashable so that it can key a cache of results."""

    learning_rate: float = 1e-3  # the optimiser's step size (the initial one, when a Trainer's caller changes it)
    batch_size: int = 64  # training samples per gradient step
    max_epochs: int = 40  # passes over the training split at most
    patience: int = 5  # epochs without a new best validation loss before training stops
    weight_decay: float = 0.0  # L2 penalty (adam, sgd) or decoupled weight decay (adamw)
    optimizer: str = "adam"  # "adam", "sgd" (with momentum 0.9) or "adamw"
    seed: int = 0  # initial weights, batch order and dropout masks

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not self.learning_rate > 0:
            raise ValueError(f"the learning rate must be positive, got {self.learning_rate}")
        for name in ("batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay}")


@dataclass
class EpochStats:
    """What one epoch did. ``train_loss`` is the mean cross-entropy over the batches it trained on, NaN when the
    epoch diverged or trained on nothing because an earlier one had."""

    epoch: int  # 1 for the first epoch
    train_loss: float
    val_loss: float
    val_accuracy: float
    learning_rate: float  # the learning rate the epoch trained with
    diverged: bool  # a loss was NaN or infinite at or before this epoch; the weights are no longer updated


@dataclass
class TrainResult:
    """A trained child network's record: accuracies of the best epoch's weights, its cost, and its history."""

    val_accuracy: float
    test_accuracy: float
    val_loss: float
    epochs: int  # epochs trained (early stopping or divergence can end training before max_epochs)
    seconds: float  # wall-clock training time, evaluation included
    parameters: int
    flops: int  # multiply-accumulates of one forward pass of one sample
    diverged: bool
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0  # the epoch whose weights are reported; 0 when no epoch had a finite validation loss
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # at the best epoch's weights


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when there is a GPU, else the CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer:
    """Trains ``model`` on ``dataset`` one epoch at a time.

    :param model: any module mapping a batch of samples to class logits
    :param dataset: the train split is trained on, the validation split is reported after every epoch, the test
        split only by :meth:`test_accuracy`
    :param recipe: optimiser, batch size, weight decay, initial learning rate and the seed of the batch order and
        dropout masks (the model's initial weights are the caller's)
    :param device: where the model and the data live
    """

    def __init__(
        self, model: nn.Module, dataset: Dataset, recipe: TrainRecipe = TrainRecipe(), device: str = "cpu"
    ) -> None:
        torch.set_num_threads(TORCH_THREADS)
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.recipe = recipe
        self.splits = {
            split: (self._tensor(getattr(dataset, f"x_{split}")), self._tensor(getattr(dataset, f"y_{split}")))
            for split in ("train", "val", "test")
        }
        self.optimizer = _make_optimizer(model, recipe)
        self.loss_fn = nn.CrossEntropyLoss()
        self.divergence_loss = DIVERGENCE_FACTOR * math.log(dataset.n_classes)
        self.generator = torch.Generator().manual_seed(recipe.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            self._rng_state = torch.get_rng_state()  # dropout's random numbers, kept apart from the caller's
        self.epoch = 0
        self.diverged = False

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.tensor(array, device=self.device)  # a copy: the dataset's arrays are read-only and shared

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def run_epoch(self, learning_rate: float | None = None) -> EpochStats:
        """One pass over the training split at ``learning_rate`` (the current one when None, which is the
        recipe's until a caller sets another), then an evaluation on the validation split.

        A diverged loss marks the training diverged: the step is not taken, and later epochs only evaluate, so
        a runaway learning rate ends in a record, never an exception. A loss is diverged when it is NaN, infinite,
        or above ``DIVERGENCE_FACTOR`` times chance level's: on digits, SGD at a learning rate of 1e6 drove the
        loss past 1e6 and kept it there, finite in float32, for epochs, at chance accuracy.
        """
        if learning_rate is not None:
            self.learning_rate = learning_rate
        self.epoch += 1
        train_loss = math.nan if self.diverged else self._train_one_pass()
        val_loss, val_accuracy = self.evaluate("val")
        if self._is_diverged(val_loss):
            self.diverged = True
        return EpochStats(self.epoch, train_loss, val_loss, val_accuracy, self.learning_rate, self.diverged)

    def _train_one_pass(self) -> float:
        n = len(self.splits["train"][1])
        order = torch.randperm(n, generator=self.generator).to(self.device)
        total, seen = 0.0, 0
        self.model.train()
        with self._own_random_state():
            for batch in order.split(self.recipe.batch_size):
                loss = self.batch_loss(batch)
                batch_loss = loss.item()
                if self._is_diverged(batch_loss):
                    self.diverged = True
                    return math.nan
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += batch_loss * len(batch)
                seen += len(batch)
        return total / seen

    def batch_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The loss minimised on the training samples at indices ``batch``: cross-entropy on their labels. The hook
        a variant of the loop overrides (knowledge distillation puts its soft-target loss here)."""
        x, y = self.splits["train"]
        return self.loss_fn(self.model(x[batch]), y[batch])

    def _is_diverged(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.divergence_loss

    @contextmanager
    def _own_random_state(self) -> Iterator[None]:
        """Draw dropout masks from the trainer's random state, and leave the caller's as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = torch.get_rng_state()

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the model, in eval mode (no dropout), on ``split``."""
        x, y = self.splits[split]
        self.model.eval()
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), EVAL_BATCH_SIZE):
            logits = self.model(x[start : start + EVAL_BATCH_SIZE])
            targets = y[start : start + EVAL_BATCH_SIZE]
            loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == targets).sum())
        return loss_sum / len(y), correct / len(y)

    def test_accuracy(self) -> float:
        """Accuracy on the test split; a search never looks at it, a report does."""
        return self.evaluate("test")[1]

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the model's weights, to come back to with ``model.load_state_dict``."""
        return copy.deepcopy(self.model.state_dict())


def _make_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    params, lr, decay = model.parameters(), recipe.learning_rate, recipe.weight_decay
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=decay)


def train_network(
    spec: NetworkSpec, dataset: Dataset, recipe: TrainRecipe = TrainRecipe(), device: str = "cpu"
) -> TrainResult:
    """Build the network ``spec`` describes, train it with early stopping, and report the best epoch's weights.

    Training stops after ``recipe.patience`` epochs without a new lowest validation loss, at ``max_epochs``, or
    when it diverges; the weights of the epoch with the lowest validation loss are then restored and measured
    (the initial weights, when no epoch had a finite one). The same spec, dataset and recipe give the same
    result on the same machine.
    """
    torch.set_num_threads(TORCH_THREADS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = build_network(spec, dataset.sample_shape, dataset.n_classes)
    return fit(Trainer(model, dataset, recipe, device=device))


def fit(trainer: Trainer) -> TrainResult:
    """Train ``trainer``'s model with early stopping and report it at its best epoch's weights (the model is in
    the result). Every loop variant (a :class:`Trainer` subclass with its own ``batch_loss``) is trained and
    reported this one way."""
    start = time.perf_counter()
    history, best_epoch = train_with_early_stopping(trainer)
    val_loss, val_accuracy = trainer.evaluate("val")
    sample_shape = tuple(trainer.splits["train"][0].shape[1:])
    return TrainResult(
        val_accuracy=val_accuracy,
        test_accuracy=trainer.test_accuracy(),
        val_loss=val_loss,
        epochs=len(history),
        seconds=time.perf_counter() - start,
        parameters=count_parameters(trainer.model),
        flops=count_flops(trainer.model, sample_shape),
        diverged=trainer.diverged,
        history=history,
        best_epoch=best_epoch,
        model=trainer.model,
    )


def train_with_early_stopping(trainer: Trainer) -> tuple[list[EpochStats], int]:
    """Run epochs until patience runs out, and leave the trainer's model at the best epoch's weights."""
    best_state, best_loss, best_epoch = trainer.state(), math.inf, 0
    history: list[EpochStats] = []
    while len(history) < trainer.recipe.max_epochs:
        stats = trainer.run_epoch()
        history.append(stats)
        if stats.diverged:
            break
        if stats.val_loss < best_loss:
            best_state, best_loss, best_epoch = trainer.state(), stats.val_loss, stats.epoch
        elif stats.epoch - best_epoch >= trainer.recipe.patience:
            break
    trainer.model.load_state_dict(best_state)
    return history, best_epoch
