"""The pygame view of ``LearningRateControl-v0``: the training's loss curves, the learning rate chosen for each
epoch and the validation accuracy, drawn with :func:`envs.automl.charts.draw_chart`.

Layout (600 x 400 by default): two header lines, the instance and how its training stands; the training and
validation loss per epoch across the top; below it, the learning rate per epoch (log scale, a step for each
epoch it was used) and the validation accuracy. A crash puts a red line on the loss chart at its epoch and a banner over
the view. Like Gymnasium's own renderers, pygame is imported only where drawing happens, and only
``pygame.display`` (in human mode) and ``pygame.font`` are initialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.automl.charts import Series, draw_chart
from envs.automl.lr_control_env import LOG_LR_MAX, LOG_LR_MIN
from envs.rendering import FrameRenderer, import_pygame

# Colours (RGB)
BACKGROUND = (236, 240, 245)
HEADER_TEXT = (20, 30, 50)
TRAIN_LOSS = (90, 140, 230)
VAL_LOSS = (220, 110, 20)
LEARNING_RATE = (40, 150, 80)
ACCURACY = (150, 60, 190)
CRASH = (215, 30, 30)
BANNER_BACKGROUND = (16, 28, 48, 215)
BANNER_TEXT = (255, 255, 255)

HEADER_FONT_SHARE = 0.05  # font size of the header line, as a share of the window height
CHART_FONT_SHARE = 0.04  # and of the charts' text
LOSS_CHART_SHARE = 0.5  # of the height below the header, for the loss chart
LOSS_RANGE_FACTOR = 1.2  # the loss axis reaches this much above the untrained network's validation loss
MARGIN = 6  # px between panels


@dataclass(frozen=True)
class TrainingScene:
    """Everything one frame shows, as plain data. Losses and accuracies start at epoch 0 (the untrained
    network); ``learning_rates[k]`` is the rate epoch ``k + 1`` trained with."""

    instance: str
    epochs: int  # the episode's budget
    train_losses: tuple[float, ...]
    val_losses: tuple[float, ...]
    val_accuracies: tuple[float, ...]
    learning_rates: tuple[float, ...]
    crashed: bool
    test_accuracy: float | None  # measured at the end of the episode

    @classmethod
    def of(cls, training: Any, epochs: int) -> TrainingScene:
        """The scene of the env's training (an ``_Training``); copies what it keeps."""
        return cls(
            instance=training.instance.name,
            epochs=epochs,
            train_losses=tuple(training.train_losses),
            val_losses=tuple(training.val_losses),
            val_accuracies=tuple(training.val_accuracies),
            learning_rates=tuple(training.learning_rates),
            crashed=training.crashed,
            test_accuracy=training.test_accuracy,
        )

    @property
    def epoch(self) -> int:
        return len(self.learning_rates)

    def header_lines(self) -> tuple[str, str]:
        """The instance and the epoch; then how the training stands, in a practitioner's words."""
        first = f"{self.instance}   epoch {self.epoch}/{self.epochs}"
        if self.crashed:
            return first, f"CRASHED at epoch {self.epoch}: the loss diverged"
        loss, accuracy = self.val_losses, self.val_accuracies[-1]
        second = f"val loss {loss[0]:.3f} -> {loss[-1]:.3f}   val acc {accuracy:.1%}"
        if self.test_accuracy is not None:
            second += f"   test acc {self.test_accuracy:.1%}"
        return first, second


class LearningRateRenderer(FrameRenderer):
    """Draws :class:`TrainingScene` s on a pygame surface; ``rgb_array`` returns it, ``show`` puts it in a
    window (only a renderer made with ``human=True`` opens one)."""

    caption = "trendgym - Learning-rate control"

    def __init__(self, width: int = 600, height: int = 400, human: bool = False) -> None:
        super().__init__(width, height, human)
        pygame = import_pygame()
        pygame.font.init()
        self._font = pygame.font.Font(None, max(12, round(height * HEADER_FONT_SHARE)))
        self._chart_font = pygame.font.Font(None, max(12, round(height * CHART_FONT_SHARE)))

    # ---- public ----------------------------------------------------------------------------------------------

    def draw(self, scene: TrainingScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        top = MARGIN
        for line in scene.header_lines():
            text = self._font.render(line, True, CRASH if scene.crashed and top > MARGIN else HEADER_TEXT)
            self.surface.blit(text, (MARGIN, top))
            top += text.get_height() + 2
        top += MARGIN
        body = self.height - top - MARGIN
        loss_height = round(body * LOSS_CHART_SHARE)
        half = (self.width - 3 * MARGIN) // 2
        below = top + loss_height + MARGIN
        self._draw_losses(pygame.Rect(MARGIN, top, self.width - 2 * MARGIN, loss_height), scene)
        rest = self.height - below - MARGIN
        self._draw_learning_rates(pygame.Rect(MARGIN, below, half, rest), scene)
        self._draw_accuracy(pygame.Rect(2 * MARGIN + half, below, half, rest), scene)
        if scene.crashed:
            self._draw_banner(pygame, ["CRASHED", f"the loss diverged in epoch {scene.epoch}"])
        return self.surface

    # ---- panels ----------------------------------------------------------------------------------------------

    def _draw_losses(self, rect: Any, scene: TrainingScene) -> None:
        epochs = list(range(len(scene.val_losses)))
        ceiling = LOSS_RANGE_FACTOR * max(scene.val_losses[0], scene.train_losses[0])
        series = [
            Series(epochs, scene.train_losses, TRAIN_LOSS, "train loss"),
            Series(epochs, scene.val_losses, VAL_LOSS, "validation loss"),
        ]
        if scene.crashed:  # the diverged loss is NaN or off the chart: a red line marks the epoch it happened
            series.append(Series([scene.epoch, scene.epoch], [0.0, ceiling], CRASH, "crash"))
        draw_chart(
            self.surface,
            rect,
            series,
            title="loss (cross-entropy)",
            x_label="epoch",
            x_range=(0, scene.epochs),
            y_range=(0.0, ceiling),
            font=self._chart_font,
        )

    def _draw_learning_rates(self, rect: Any, scene: TrainingScene) -> None:
        # A step per epoch: the rate of epoch k is drawn from k - 1 to k.
        xs = list(range(scene.epoch + 1))
        ys = [*scene.learning_rates, *scene.learning_rates[-1:]]
        draw_chart(
            self.surface,
            rect,
            [Series(xs[: len(ys)], ys, LEARNING_RATE, style="step")],
            title="learning rate",
            x_label="epoch",
            x_range=(0, scene.epochs),
            y_range=(10.0**LOG_LR_MIN, 10.0**LOG_LR_MAX),
            font=self._chart_font,
            log_y=True,
        )

    def _draw_accuracy(self, rect: Any, scene: TrainingScene) -> None:
        epochs = list(range(len(scene.val_accuracies)))
        draw_chart(
            self.surface,
            rect,
            [Series(epochs, scene.val_accuracies, ACCURACY)],
            title="validation accuracy",
            x_label="epoch",
            x_range=(0, scene.epochs),
            y_range=(0.0, 1.0),
            font=self._chart_font,
        )

    def _draw_banner(self, pygame: Any, lines: list[str]) -> None:
        texts = [self._font.render(line, True, BANNER_TEXT) for line in lines]
        gap = 6
        width = max(t.get_width() for t in texts) + 4 * gap
        height = sum(t.get_height() for t in texts) + gap * (len(texts) + 1)
        box = pygame.Surface((width, height), pygame.SRCALPHA)
        box.fill(BANNER_BACKGROUND)
        left, top = (self.width - width) // 2, (self.height - height) // 2
        self.surface.blit(box, (left, top))
        y = top + gap
        for t in texts:
            self.surface.blit(t, ((self.width - t.get_width()) // 2, y))
            y += t.get_height() + gap
