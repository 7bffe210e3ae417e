"""The pygame view of ``trendgym/Quantization-v0``: the network's bit widths, its size, and the episodes so far.

Left, the network as a row of layers, first to last: each a column whose bar is as tall, and as warm in colour, as
the bits its weights keep (8 bits a full blue bar, 1 bit a short red one), the layer being decided outlined, the
layers held at 8 bits marked "fixed". Under it, the weight size against the budget (a bar on the scale of the
8-bit size, the budget a vertical line) and the accuracies. Right, every episode of the search as a dot of
validation accuracy against size (:func:`envs.automl.charts.draw_chart`), with the float32 accuracy and the budget
as lines.

pygame is imported only where drawing happens (:mod:`envs.rendering`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.automl.charts import Series, draw_chart
from envs.rendering import FrameRenderer, import_pygame, make_fonts
from trends.compression.quantize import MAX_BITS, MIN_BITS

WIDTH, HEIGHT = 960, 540  # px, the default frame
LEFT_SHARE = 0.55  # share of the width for the network panel
MARGIN = 10  # px
FONT_SHARE = 0.034  # font size as a share of the frame height
SIZE_BAR_HEIGHT = 26  # px
TEXT_LINES = 3  # lines of numbers under the size bar
EIGHT_BIT_SHARE = MAX_BITS / 32  # the size bar spans 0 to the 8-bit size, as a share of float32

# Colours (RGB)
BACKGROUND = (244, 246, 250)
PANEL = (255, 255, 255)
TEXT = (30, 30, 40)
TEXT_DIM = (150, 150, 160)
SLOT = (228, 230, 236)  # the empty part of a layer's column
FEW_BITS = (215, 70, 50)  # the colour of a 1-bit bar
MANY_BITS = (40, 110, 220)  # the colour of an 8-bit bar
CURRENT = (230, 150, 0)
FITS = (70, 160, 90)  # the size bar when the weights fit the budget
OVER = (215, 70, 50)  # the size bar when they do not (yet: the episode's end enforces the budget)
BUDGET = (30, 30, 40)
EPISODE = (120, 150, 200)
LAST = (220, 70, 40)
ORIGINAL = (70, 160, 90)


@dataclass(frozen=True)
class QuantizationScene:
    """Everything one frame shows, as plain data (the env may go on stepping while a frame is kept)."""

    model: str
    names: tuple[str, ...]
    kinds: tuple[str, ...]  # "conv" | "dense" per layer
    weights: tuple[int, ...]
    fixed: tuple[bool, ...]
    bits: tuple[int, ...]  # of the layers decided so far (a prefix), or of every layer once the episode is over
    current: int | None  # the layer being decided; None once the episode is over
    float_bytes: int
    budget_bytes: float
    original_val_accuracy: float
    history: tuple[tuple[float, float], ...]  # (size ratio, val accuracy) of every episode of the search
    last: Any = None  # the episode's EpisodeResult once it is over

    @property
    def size_bytes(self) -> float:
        """Bytes of the layers decided so far."""
        return sum(w * b for w, b in zip(self.weights, self.bits, strict=False)) / 8

    def summary(self) -> list[str]:
        """The lines of numbers under the size bar."""
        share = self.size_bytes / self.float_bytes
        budget = self.budget_bytes / self.float_bytes
        lines = [
            f"{self.model}: {sum(self.weights):,} weights, float32 val acc {self.original_val_accuracy:.3f}",
            f"size {share:.4f} of float32 ({self.size_bytes:,.0f} B), budget {budget:.4f} ({self.budget_bytes:,.0f} B)",
        ]
        if self.last is not None:
            lines.append(
                f"quantized: val acc {self.last.val_accuracy:.3f}, test {self.last.test_accuracy:.3f}, "
                f"reward {self.last.reward:+.4f}"
            )
        elif self.current is not None:
            lines.append(f"deciding layer {self.current}: {self.names[self.current]}")
        return lines


def bits_colour(bits: int) -> tuple[int, int, int]:
    """From FEW_BITS at 1 bit to MANY_BITS at 8, linearly."""
    t = (bits - MIN_BITS) / (MAX_BITS - MIN_BITS)
    return tuple(round(a + (b - a) * t) for a, b in zip(FEW_BITS, MANY_BITS, strict=True))


class QuantizationRenderer(FrameRenderer):
    """Draws :class:`QuantizationScene` s on a ``width`` x ``height`` pygame surface; ``show`` needs ``human=True``."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, human: bool = False) -> None:
        super().__init__(width, height, human)
        self._font, self._small_font = make_fonts(height, FONT_SHARE, 0.8)

    def window_caption(self, scene: QuantizationScene) -> str:
        return f"trendgym - quantization {scene.model}"

    def draw(self, scene: QuantizationScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        split = round(self.width * LEFT_SHARE)
        line_height = self._font.get_linesize()
        bottom_height = SIZE_BAR_HEIGHT + TEXT_LINES * line_height + 3 * MARGIN
        layers = pygame.Rect(MARGIN, MARGIN, split - 2 * MARGIN, self.height - bottom_height - 2 * MARGIN)
        numbers = pygame.Rect(MARGIN, layers.bottom + MARGIN, split - 2 * MARGIN, bottom_height)
        self._draw_layers(pygame, scene, layers)
        self._draw_size(pygame, scene, numbers)
        self._draw_history(scene, pygame.Rect(split, MARGIN, self.width - split - MARGIN, self.height - 2 * MARGIN))
        return self.surface

    def _draw_layers(self, pygame: Any, scene: QuantizationScene, rect: Any) -> None:
        pygame.draw.rect(self.surface, PANEL, rect)
        title = self._font.render("bits per layer", True, TEXT)
        self.surface.blit(title, (rect.x + 6, rect.y + 4))
        n = len(scene.names)
        column = (rect.w - 12) / n
        label_height = 3 * self._small_font.get_linesize()
        top, bottom = rect.y + title.get_height() + 12, rect.bottom - label_height - 6
        for i, name in enumerate(scene.names):
            slot = pygame.Rect(round(rect.x + 6 + i * column + 4), top, round(column) - 8, bottom - top)
            pygame.draw.rect(self.surface, SLOT, slot, border_radius=3)
            if i < len(scene.bits):
                bits = scene.bits[i]
                height = round(slot.h * bits / MAX_BITS)
                bar = pygame.Rect(slot.x, slot.bottom - height, slot.w, height)
                pygame.draw.rect(self.surface, bits_colour(bits), bar, border_radius=3)
                text = self._font.render(f"{bits} bit" + ("s" if bits > 1 else ""), True, TEXT)
                self.surface.blit(text, (slot.centerx - text.get_width() // 2, bar.y - text.get_height() - 2))
            if i == scene.current:
                pygame.draw.rect(self.surface, CURRENT, slot.inflate(6, 6), 3, border_radius=4)
            labels = [name, f"{scene.kinds[i]} {scene.weights[i]:,} w", "fixed" if scene.fixed[i] else ""]
            for k, label in enumerate(labels):
                text = self._small_font.render(label, True, TEXT if k == 0 else TEXT_DIM)
                y = bottom + 4 + k * self._small_font.get_linesize()
                self.surface.blit(text, (slot.centerx - text.get_width() // 2, y))

    def _draw_size(self, pygame: Any, scene: QuantizationScene, rect: Any) -> None:
        pygame.draw.rect(self.surface, PANEL, rect)
        scale = EIGHT_BIT_SHARE * scene.float_bytes  # bytes at the right end of the bar
        bar = pygame.Rect(rect.x + 8, rect.y + MARGIN, rect.w - 16, SIZE_BAR_HEIGHT)
        pygame.draw.rect(self.surface, SLOT, bar)
        size = scene.size_bytes
        filled = bar.copy()
        filled.w = round(bar.w * min(size / scale, 1.0))
        pygame.draw.rect(self.surface, FITS if size <= scene.budget_bytes else OVER, filled)
        x = bar.x + round(bar.w * min(scene.budget_bytes / scale, 1.0))
        pygame.draw.line(self.surface, BUDGET, (x, bar.y - 4), (x, bar.bottom + 4), 3)
        for i, line in enumerate(scene.summary()):
            text = self._font.render(line, True, TEXT)
            self.surface.blit(text, (rect.x + 8, bar.bottom + 8 + i * self._font.get_linesize()))

    def _draw_history(self, scene: QuantizationScene, rect: Any) -> None:
        sizes = [s for s, _ in scene.history]
        accuracies = [a for _, a in scene.history]
        budget = scene.budget_bytes / scene.float_bytes
        low = min([*accuracies, scene.original_val_accuracy, 0.9])
        series = [
            Series(sizes, accuracies, EPISODE, "episodes", "dots"),
            Series([0.0, EIGHT_BIT_SHARE], [scene.original_val_accuracy] * 2, ORIGINAL, "float32"),
            Series([budget, budget], [0.0, 1.0], BUDGET, "budget"),
        ]
        if scene.last is not None:
            series.append(Series([scene.last.size_ratio], [scene.last.val_accuracy], LAST, "this episode", "dots"))
        draw_chart(
            self.surface,
            rect,
            series,
            title="accuracy against size",
            x_label="size / float32 size",
            y_label="val accuracy",
            x_range=(0.0, EIGHT_BIT_SHARE * 1.05),
            y_range=(max(0.0, int(low * 10) / 10), 1.0),
            font=self._small_font,
        )
