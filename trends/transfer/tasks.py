"""The transfer tasks: one dataset cut into a source task (classes 0-4) and a target task (classes 5-9, relabelled
0-4), the target's training labels thinned to a fraction, and the unlabelled pool self-supervision learns from.

Both tasks keep the dataset's fixed splits, so every pre-training, fine-tuning and scratch run of a seed is
measured on the same target test samples, and the target's validation split decides early stopping. The
validation split is kept whole at every label fraction: the comparison is between ways of using few training
labels, with one stopping rule for all of them (a real 1%-label task would have a smaller validation set too).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from trends.data import Dataset

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


def class_subset(dataset: Dataset, classes: tuple[int, ...], name: str) -> Dataset:
    """The samples of ``classes`` in every split, relabelled ``0..len(classes)-1`` in the order given."""
    relabel = np.full(dataset.n_classes, -1, dtype=np.int64)
    relabel[list(classes)] = np.arange(len(classes))
    arrays = {}
    for split in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        keep = np.isin(y, classes)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x[keep], relabel[y[keep]]
    return replace(dataset, name=name, n_classes=len(classes), **arrays)


def source_task(dataset: Dataset) -> Dataset:
    """Classes 0-4: the large labelled task supervised pre-training learns from."""
    return class_subset(dataset, SOURCE_CLASSES, f"{dataset.name}-source")


def target_task(dataset: Dataset, label_fraction: float = 1.0, seed: int = 0) -> Dataset:
    """Classes 5-9 relabelled 0-4, with ``label_fraction`` of the training samples kept (see
    :func:`stratified_subset`); validation and test splits whole."""
    target = class_subset(dataset, TARGET_CLASSES, f"{dataset.name}-target")
    keep = stratified_subset(target.y_train, label_fraction, seed)
    return replace(target, x_train=target.x_train[keep], y_train=target.y_train[keep])


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``fraction`` of the samples of each class (rounded, at least one per class), drawn with
    ``seed``. At least one per class because 1% of digits' target training set is six samples: a class without a
    single example cannot be learnt from the labels, and the comparison would measure the draw, not the method."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, round(fraction * len(members)))
        chosen.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(chosen))


def unlabelled_pool(dataset: Dataset) -> Dataset:
    """Every training input of every class, labels replaced by zeros: what self-supervised pre-training may see.
    The validation inputs (also unlabelled) measure the pretext loss for early stopping; the test split is
    never trained or stopped on, so no pre-training sees a sample the target task is scored on."""
    zeros = {f"y_{split}": np.zeros(len(getattr(dataset, f"y_{split}")), dtype=np.int64) for split in ("train", "val")}
    return replace(dataset, name=f"{dataset.name}-unlabelled", **zeros)
