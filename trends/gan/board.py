"""TensorBoard for the GANs: scalars under ``losses/`` and ``charts/``, and pictures of what the generator (the
counterfeiter) currently makes: a scatter plot over the real modes for the 2-D benchmarks, a grid of digits per
label for the conditional GAN. Pictures are what tell a person at a glance that a GAN has collapsed; the losses
of a GAN do not (they oscillate whether it learns or not)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trends.gan.mixtures import QUALITY_STDS, Mixture

DIGIT_ZOOM = 4  # an 8x8 digit is shown as 32x32 pixels


class GanBoard:
    """One TensorBoard run: a thin layer over ``torch.utils.tensorboard.SummaryWriter`` that knows how to draw
    samples. Close it (or use it in a ``with``) so the last events reach the disk."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(str(self.log_dir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write ``{"losses/discriminator": ..., "charts/modes_covered": ...}`` at ``step``."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def scatter(self, tag: str, step: int, samples: np.ndarray, mixture: Mixture) -> None:
        """The generated 2-D samples over the real modes (their 3-std circles), as an image."""
        self.writer.add_figure(tag, scatter_figure(samples, mixture, title=f"step {step}"), step)

    def digits(self, tag: str, step: int, images: np.ndarray) -> None:
        """A grid of ``(n, 1, 8, 8)`` images in [0, 1], a row per 10 (one label per column when ordered so)."""
        zoomed = np.kron(np.clip(images, 0.0, 1.0), np.ones((1, 1, DIGIT_ZOOM, DIGIT_ZOOM), dtype=images.dtype))
        self.writer.add_images(tag, zoomed, step, dataformats="NCHW")

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> GanBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scatter_figure(samples: np.ndarray, mixture: Mixture, title: str = "") -> object:
    """A matplotlib figure (Agg, never a window) of ``samples`` over ``mixture``'s modes."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from matplotlib.figure import Figure  # a bare Figure is not registered with pyplot, so nothing leaks

    figure = Figure(figsize=(4, 4), dpi=72)
    axes = figure.add_subplot()
    radius = QUALITY_STDS * mixture.std
    for x, y in mixture.means:
        axes.add_patch(_circle((x, y), max(radius, 0.04)))
    axes.scatter(samples[:, 0], samples[:, 1], s=2, c="black", alpha=0.4)
    span = np.abs(mixture.means).max() * 1.5
    axes.set_xlim(-span, span)
    axes.set_ylim(-span, span)
    axes.set_aspect("equal")
    axes.set_title(title)
    return figure


def _circle(center: tuple[float, float], radius: float) -> object:
    from matplotlib.patches import Circle

    return Circle(center, radius, color="tab:red", alpha=0.5)


def mode_gan_probe(board: GanBoard, mixture: Mixture) -> Callable[[int, dict[str, float], np.ndarray], None]:
    """The probe of :func:`trends.gan.packing.train_mode_gan` that writes its scalars and a scatter plot."""

    def probe(step: int, scalars: dict[str, float], view: np.ndarray) -> None:
        board.scalars(step, scalars)
        board.scatter("samples/generated", step, view, mixture)

    return probe


def conditional_probe(board: GanBoard, per_label: int = 4) -> Callable[[int, dict[str, float], Any], None]:
    """The probe of :func:`trends.gan.conditional.train_conditional_gan` that writes its scalars and a grid of
    ``per_label`` forgeries of every digit (fixed noise, so the grids of successive steps compare)."""

    def probe(step: int, scalars: dict[str, float], gan: Any) -> None:
        board.scalars(step, scalars)
        labels = np.tile(np.arange(gan.n_classes), per_label)
        board.digits("samples/generated", step, gan.generate(labels, seed=0))

    return probe
