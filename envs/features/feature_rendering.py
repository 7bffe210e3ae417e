"""The pygame view of the feature-engineering env: the feature set as it grows, and the score it earns.

Left, one row per slot: the feature's expression (raw features plain, derived ones in colour, a dataset's known
features starred), a bar of its share of the model's importance, its depth; free slots are dashed. Below, the last
action and its reward, and the budget. Right, the cross-validated score after each step of the episode
(:func:`envs.automl.charts.draw_chart`), against the starting set's score and the best of the episode.

As in the other renderers, pygame is imported only where drawing happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.automl.charts import Series, draw_chart
from envs.rendering import FrameRenderer, draw_text_box, import_pygame, make_fonts, side_by_side

WIDTH, HEIGHT = 960, 540  # px, the default frame
LEFT_SHARE = 0.55  # share of the width for the feature list
MARGIN = 10  # px
NAME_SHARE = 0.55  # share of the feature panel for the expressions
FONT_SHARE = 0.03  # font size as a share of the frame height
SUMMARY_LINES = 3
MAX_ROW = 26  # px

# Colours (RGB)
BACKGROUND = (244, 246, 250)
PANEL = (255, 255, 255)
TEXT = (30, 30, 40)
TEXT_DIM = (160, 160, 170)
EDGE = (200, 205, 215)
RAW = (110, 130, 160)  # bars of the starting features
DERIVED = (40, 140, 90)  # bars of the features the agent added
KNOWN = (220, 120, 0)  # the star of a known feature (synthetic: the target's building blocks)
SCORE = (40, 110, 220)
START = (150, 150, 160)
BEST = (220, 70, 40)


@dataclass(frozen=True)
class FeatureScene:
    """Everything one frame shows, as plain data."""

    dataset: str
    model: str
    task: str
    slots: tuple[str | None, ...]  # each slot's expression, None when free
    importances: tuple[float, ...]  # each slot's share of the model's importance (0 when free)
    start: tuple[str, ...]  # the episode's starting features
    known: tuple[str, ...]  # the dataset's known features (may be empty)
    curve: tuple[float, ...]  # the score at the start and after each step
    raw_score: float
    best_score: float
    budget: int
    budget_left: int
    last_action: str
    last_reward: float
    episodes: int
    done: bool

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "R2"

    def summary(self) -> list[str]:
        """The lines under the feature list."""
        n = sum(e is not None for e in self.slots)
        state = "final" if self.done else "current"
        return [
            f"last: {self.last_action}  (reward {self.last_reward:+.4f})",
            f"{state} CV {self.metric} {self.curve[-1]:.4f}, start {self.raw_score:.4f}, best {self.best_score:.4f}",
            f"{n}/{len(self.slots)} features, budget {self.budget_left}/{self.budget} left, "
            f"{self.episodes} episodes done",
        ]


class FeatureRenderer(FrameRenderer):
    """Draws :class:`FeatureScene` s on a ``width`` x ``height`` pygame surface; ``show`` needs ``human=True``."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, human: bool = False) -> None:
        super().__init__(width, height, human)
        self._font, self._small_font = make_fonts(height, FONT_SHARE)

    def window_caption(self, scene: FeatureScene) -> str:
        return f"trendgym - feature engineering ({scene.dataset}, {scene.model})"

    def draw(self, scene: FeatureScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        line_height = self._small_font.get_linesize()
        summary_height = SUMMARY_LINES * line_height + 12
        features, box, chart = map(
            pygame.Rect, side_by_side(self.width, self.height, LEFT_SHARE, MARGIN, summary_height)
        )
        self._draw_features(pygame, scene, features)
        lines = [_fit(self._small_font, line, box.w - 12) for line in scene.summary()]
        draw_text_box(self.surface, box, PANEL, lines, self._small_font, TEXT, line_height)
        self._draw_curve(scene, chart)
        return self.surface

    def _draw_features(self, pygame: Any, scene: FeatureScene, rect: Any) -> None:
        """One row per slot: expression, importance bar, share."""
        pygame.draw.rect(self.surface, PANEL, rect)
        title = f"features of {scene.dataset} (importance to the {scene.model} model)"
        self.surface.blit(self._font.render(_fit(self._font, title, rect.w - 12), True, TEXT), (rect.x + 6, rect.y + 4))
        top = rect.y + self._font.get_linesize() + 8
        row = min(MAX_ROW, (rect.bottom - 4 - top) / max(len(scene.slots), 1))
        name_width = round(rect.w * NAME_SHARE)
        share_width = self._small_font.size("0.00")[0] + 8
        bar_x, bar_width = rect.x + name_width, rect.w - name_width - share_width - 6
        for k, (expression, importance) in enumerate(zip(scene.slots, scene.importances, strict=True)):
            middle = round(top + k * row + row / 2)
            height = max(2, round(row * 0.6))
            if expression is None:
                label = self._small_font.render(f"{k:2d}  (free)", True, TEXT_DIM)
                self.surface.blit(label, (rect.x + 6, middle - label.get_height() // 2))
                continue
            star = " *" if expression in scene.known else ""
            derived = expression not in scene.start
            name = _fit(self._small_font, f"{k:2d}  {expression}", name_width - 24) + star
            label = self._small_font.render(name, True, KNOWN if star else TEXT)
            self.surface.blit(label, (rect.x + 6, middle - label.get_height() // 2))
            outline = pygame.Rect(bar_x, middle - height // 2, bar_width, height)
            pygame.draw.rect(self.surface, EDGE, outline, 1)
            filled = round(bar_width * min(max(importance, 0.0), 1.0))
            if filled > 0:
                pygame.draw.rect(self.surface, DERIVED if derived else RAW, (bar_x, outline.y, filled, height))
            share = self._small_font.render(f"{importance:.2f}", True, TEXT)
            self.surface.blit(share, (rect.right - share_width, middle - share.get_height() // 2))

    def _draw_curve(self, scene: FeatureScene, rect: Any) -> None:
        steps = list(range(len(scene.curve)))
        x_range = (0, scene.budget + 1.5)
        series = [  # the score last, drawn over the reference lines it often touches
            Series(x_range, [scene.raw_score] * 2, START, "start"),
            Series(x_range, [scene.best_score] * 2, BEST, "best of episode"),
            Series(steps, scene.curve, SCORE, f"CV {scene.metric}", "line"),
        ]
        shown = [*scene.curve, scene.raw_score, scene.best_score]
        low, high = min(shown), max(shown)
        pad = max(0.02, 0.1 * (high - low))
        draw_chart(
            self.surface,
            rect,
            series,
            title=f"cross-validated {scene.metric}",
            x_label="step",
            y_label=scene.metric,
            x_range=x_range,
            y_range=(low - pad, high + 3 * pad),
            font=self._small_font,
        )


def _fit(font: Any, text: str, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` pixels."""
    if font.size(text)[0] <= width:
        return text
    while text and font.size(text + "...")[0] > width:
        text = text[:-1]
    return text + "..."
