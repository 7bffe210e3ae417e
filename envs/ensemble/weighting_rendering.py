"""The pygame view of the ensemble-weighting env: the members' weights and the ensemble's accuracy as it grows.

Left, one horizontal bar per member of the pool, its length the member's weight in the ensemble (a full bar is
weight 1), its name beside it and its own validation accuracy at the end of the row; below, the numbers. Right,
the ensemble's validation accuracy after each step of the episode (:func:`envs.automl.charts.draw_chart`), against
the best single member's and the best episode's so far: the picture of "two hands are better than one".

As in the other renderers, pygame is imported only where drawing happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.automl.charts import Series, draw_chart
from envs.rendering import FrameRenderer, draw_text_box, import_pygame, make_fonts, side_by_side

WIDTH, HEIGHT = 960, 540  # px, the default frame
LEFT_SHARE = 0.5  # share of the width for the members
MARGIN = 10  # px
NAME_SHARE = 0.38  # share of the members panel for the names
FONT_SHARE = 0.03  # font size as a share of the frame height
SUMMARY_LINES = 2
MAX_BAR_HEIGHT = 22  # px, so that a small pool's bars stay bars
Y_MARGIN = 0.02  # accuracy, below and (three times, for the legend) above what the chart shows

# Colours (RGB)
BACKGROUND = (244, 246, 250)
PANEL = (255, 255, 255)
TEXT = (30, 30, 40)
TEXT_DIM = (150, 150, 160)
EDGE = (200, 205, 215)
WEIGHT = (70, 130, 200)
BEST_MEMBER = (220, 70, 40)  # the best single member's name and its reference line
ENSEMBLE = (40, 110, 60)
BEST_EPISODE = (170, 170, 185)


@dataclass(frozen=True)
class WeightingScene:
    """Everything one frame shows, as plain data."""

    dataset: str
    names: tuple[str, ...]  # one per member
    weights: tuple[float, ...]  # the ensemble's, one per member (all zero for the empty ensemble)
    member_accuracy: tuple[float, ...]  # each member's own validation accuracy
    curve: tuple[float, ...]  # the ensemble's validation accuracy at the start and after each step
    max_steps: int  # the length of the x axis: max_members (1 for the continuous variant)
    best_single: float  # the best member's validation accuracy
    best_episode: float | None  # the best final validation accuracy of the episodes so far
    episodes: int  # finished episodes so far
    done: bool  # the episode has ended

    def summary(self) -> list[str]:
        """The lines of numbers under the members."""
        state = "final" if self.done else "current"
        lines = [
            f"{self.dataset}: {state} ensemble val acc {self.curve[-1]:.3f}, best single {self.best_single:.3f}",
        ]
        best = "none yet" if self.best_episode is None else f"best val acc {self.best_episode:.3f}"
        lines.append(f"{self.episodes} episodes finished, {best}")
        return lines


class WeightingRenderer(FrameRenderer):
    """Draws :class:`WeightingScene` s on a ``width`` x ``height`` pygame surface; ``show`` needs ``human=True``."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, human: bool = False) -> None:
        super().__init__(width, height, human)
        self._font, self._small_font = make_fonts(height, FONT_SHARE)

    def window_caption(self, scene: WeightingScene) -> str:
        return f"trendgym - ensemble weighting ({scene.dataset})"

    def draw(self, scene: WeightingScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        line_height = self._font.get_linesize()
        summary_height = SUMMARY_LINES * line_height + 12
        members, box, chart = map(
            pygame.Rect, side_by_side(self.width, self.height, LEFT_SHARE, MARGIN, summary_height)
        )
        self._draw_members(pygame, scene, members)
        draw_text_box(self.surface, box, PANEL, scene.summary(), self._small_font, TEXT, line_height)
        self._draw_curve(scene, chart)
        return self.surface

    def _draw_members(self, pygame: Any, scene: WeightingScene, rect: Any) -> None:
        """One row per member: name, a bar of its weight, its own validation accuracy."""
        pygame.draw.rect(self.surface, PANEL, rect)
        self.surface.blit(self._font.render("member weights", True, TEXT), (rect.x + 6, rect.y + 4))
        best = max(range(len(scene.names)), key=lambda i: scene.member_accuracy[i])
        top = rect.y + self._font.get_linesize() + 8
        row = (rect.bottom - 4 - top) / len(scene.names)
        name_width = round(rect.w * NAME_SHARE)
        accuracy_width = self._small_font.size("acc 0.000")[0] + 8
        bar_x, bar_width = rect.x + name_width, rect.w - name_width - accuracy_width
        rows = zip(scene.names, scene.weights, scene.member_accuracy, strict=True)
        for i, (name, weight, accuracy) in enumerate(rows):
            y = top + i * row
            middle = round(y + row / 2)
            label = self._small_font.render(_fit(self._small_font, name, name_width - 12), True, TEXT)
            self.surface.blit(label, (rect.x + 6, middle - label.get_height() // 2))
            height = max(2, min(round(row * 0.7), MAX_BAR_HEIGHT))
            outline = pygame.Rect(bar_x, middle - height // 2, bar_width, height)
            pygame.draw.rect(self.surface, EDGE, outline, 1)
            if weight > 0:
                filled = max(1, round(bar_width * weight))
                pygame.draw.rect(self.surface, WEIGHT, (bar_x, outline.y, filled, height))
                share = self._small_font.render(f"{weight:.2f}", True, TEXT)
                self.surface.blit(share, (bar_x + filled + 4, middle - share.get_height() // 2))
            colour = BEST_MEMBER if i == best else TEXT_DIM
            text = self._small_font.render(f"acc {accuracy:.3f}", True, colour)
            self.surface.blit(text, (rect.right - accuracy_width + 4, middle - text.get_height() // 2))

    def _draw_curve(self, scene: WeightingScene, rect: Any) -> None:
        steps = list(range(len(scene.curve)))
        x_range = (0, max(scene.max_steps, 1) + 0.5)
        series = [Series(steps, scene.curve, ENSEMBLE, "ensemble", "line")]
        series.append(Series(x_range, [scene.best_single] * 2, BEST_MEMBER, "best single member"))
        if scene.best_episode is not None:
            series.append(Series(x_range, [scene.best_episode] * 2, BEST_EPISODE, "best episode"))
        # Zoomed on the members' range: the empty ensemble's chance-level start would squash the part that matters.
        shown = [*(scene.curve[1:] or scene.curve), scene.best_single]
        if scene.best_episode is not None:
            shown.append(scene.best_episode)
        low, high = max(0.0, min(shown) - Y_MARGIN), min(1.0, max(shown) + 3 * Y_MARGIN)
        draw_chart(
            self.surface,
            rect,
            series,
            title="ensemble validation accuracy",
            x_label="step (members added)",
            y_label="val accuracy",
            x_range=x_range,
            y_range=(low, high),
            font=self._small_font,
        )


def _fit(font: Any, text: str, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if font.size(text)[0] <= width:
        return text
    while text and font.size(text + "...")[0] > width:
        text = text[:-1]
    return text + "..."
