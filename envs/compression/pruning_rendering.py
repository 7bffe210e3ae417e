"""The pygame view of the pruning env: the network being pruned, its cost against the budget, the search so far.

Top left, the network as a row of layers, one bar per prunable layer (its height: the layer's channels before
pruning), filled to the share it keeps; the current layer is marked, layers not yet decided are drawn whole and
pale, and coupled layers (which share one decision) are joined by a line. Below it, the cost of the network
(FLOPs or parameters, as a share of the original) against the budget, with the least the remaining layers can
reach. Right, the validation accuracy of every pruned network evaluated (:func:`envs.automl.charts.draw_chart`),
against the unpruned network's.

As in the other renderers, pygame is imported only where drawing happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.automl.charts import Series, draw_chart
from envs.rendering import FrameRenderer, import_pygame, make_fonts

WIDTH, HEIGHT = 960, 540  # px, the default frame
LEFT_SHARE = 0.5  # share of the width for the network and its cost
MARGIN = 10  # px
BAR_HEIGHT = 30  # px, the cost bar
FONT_SHARE = 0.034  # font size as a share of the frame height
MAX_DOTS = 2000  # a longer search shows every k-th episode as a dot, so a frame stays cheap

# Colours (RGB)
BACKGROUND = (244, 246, 250)
PANEL = (255, 255, 255)
TEXT = (30, 30, 40)
TEXT_DIM = (150, 150, 160)
EDGE = (150, 160, 175)
KEPT = {"conv": (90, 160, 110), "dense": (110, 130, 200)}
PENDING = (214, 220, 230)  # a layer not decided yet
CURRENT_MARK = (230, 150, 0)
COUPLING = (120, 120, 130)
COST = (40, 110, 220)
REACHABLE = (180, 205, 240)  # the least cost the remaining layers can reach
BUDGET = (220, 70, 40)
EPISODE = (120, 150, 200)
BEST = (220, 70, 40)
ORIGINAL = (60, 60, 60)


@dataclass(frozen=True)
class PruningScene:
    """Everything one frame shows, as plain data."""

    model: str
    groups: tuple[tuple[tuple[str, ...], str, int], ...]  # per decision: its layer names, kind, channels
    keeps: tuple[int, ...]  # channels each group keeps (the whole layer where not decided yet)
    current: int | None  # the group being decided; None once the episode is over
    target: str  # "flops" or "params"
    cost_ratio: float  # the network's cost now, a share of the original's
    lowest_ratio: float  # the least it can still reach, with the remaining layers at min_preserve
    preserve: float  # the budget
    original_val_accuracy: float
    val_accuracy: tuple[float, ...]  # per episode so far
    cost_ratios: tuple[float, ...]  # per episode so far

    def summary(self) -> list[str]:
        """The lines of numbers under the network."""
        lines = [f"{self.model}: {self.target} {self.cost_ratio:.3f} of the original, budget {self.preserve:g}"]
        if self.val_accuracy:
            best = int(np.argmax(self.val_accuracy))
            lines.append(
                f"last val acc {self.val_accuracy[-1]:.3f}, best {self.val_accuracy[best]:.3f} (episode {best + 1}), "
                f"unpruned {self.original_val_accuracy:.3f}"
            )
        else:
            lines.append(f"no pruned network evaluated yet; unpruned val acc {self.original_val_accuracy:.3f}")
        return lines


class PruningRenderer(FrameRenderer):
    """Draws :class:`PruningScene` s on a ``width`` x ``height`` pygame surface; ``show`` needs ``human=True``."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, human: bool = False) -> None:
        super().__init__(width, height, human)
        self._font, self._small_font = make_fonts(height, FONT_SHARE)

    def window_caption(self, scene: PruningScene) -> str:
        return f"trendgym - pruning {scene.model}"

    def draw(self, scene: PruningScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        split = round(self.width * LEFT_SHARE)
        line_height = self._font.get_linesize()
        text_height = 2 * line_height + 12
        left = pygame.Rect(MARGIN, MARGIN, split - 2 * MARGIN, self.height - 2 * MARGIN)
        network = pygame.Rect(left.x, left.y, left.w, left.h - BAR_HEIGHT - text_height - 2 * MARGIN - line_height)
        self._draw_network(pygame, scene, network)
        bar = pygame.Rect(left.x, network.bottom + MARGIN + line_height, left.w, BAR_HEIGHT)
        self._draw_cost(pygame, scene, bar)
        box = pygame.Rect(left.x, bar.bottom + MARGIN, left.w, left.bottom - bar.bottom - MARGIN)
        pygame.draw.rect(self.surface, PANEL, box)
        for i, line in enumerate(scene.summary()):
            self.surface.blit(self._small_font.render(line, True, TEXT), (box.x + 6, box.y + 6 + i * line_height))
        self._draw_history(scene, pygame.Rect(split, MARGIN, self.width - split - MARGIN, self.height - 2 * MARGIN))
        return self.surface

    def _draw_network(self, pygame: Any, scene: PruningScene, rect: Any) -> None:
        """One bar per prunable layer, filled to the share it keeps; coupled layers joined below."""
        pygame.draw.rect(self.surface, PANEL, rect)
        title = "pruned network" if scene.current is None else f"deciding layer {scene.current + 1}"
        self.surface.blit(self._font.render(title, True, TEXT), (rect.x + 6, rect.y + 4))
        layers = [(t, name, kind, n) for t, (names, kind, n) in enumerate(scene.groups) for name in names]
        widest = max(n for _, _, _, n in layers)
        top, bottom = rect.y + 30, rect.bottom - 40
        gap = 12
        width = (rect.w - gap * (len(layers) + 1)) / len(layers)
        centres: dict[int, list[float]] = {}
        for i, (t, name, kind, n) in enumerate(layers):
            x = rect.x + gap + i * (width + gap)
            height = (bottom - top) * n / widest
            whole = pygame.Rect(round(x), round(bottom - height), round(width), round(height))
            decided = scene.current is None or t < scene.current
            kept = scene.keeps[t] / n
            pygame.draw.rect(self.surface, PENDING, whole)
            if decided:
                fill = pygame.Rect(whole.x, round(bottom - height * kept), whole.w, round(height * kept))
                pygame.draw.rect(self.surface, KEPT[kind], fill)
            mark = t == scene.current
            pygame.draw.rect(self.surface, CURRENT_MARK if mark else EDGE, whole, 3 if mark else 1)
            label = self._small_font.render(name, True, TEXT)
            self.surface.blit(label, (whole.centerx - label.get_width() // 2, bottom + 4))
            share = f"{scene.keeps[t]}/{n}" if decided else f"{n}"
            text = self._small_font.render(share, True, TEXT if decided else TEXT_DIM)
            self.surface.blit(text, (whole.centerx - text.get_width() // 2, whole.y - text.get_height() - 2))
            centres.setdefault(t, []).append(whole.centerx)
        for xs in centres.values():
            if len(xs) > 1:
                y = bottom + 24
                pygame.draw.line(self.surface, COUPLING, (xs[0], y), (xs[-1], y), 2)
                for x in xs:
                    pygame.draw.circle(self.surface, COUPLING, (x, y), 3)

    def _draw_cost(self, pygame: Any, scene: PruningScene, rect: Any) -> None:
        """The network's cost now (dark), the least it can reach (pale) and the budget (a red line), on [0, 1]."""
        label = f"{scene.target} kept (share of the original)"
        self.surface.blit(self._small_font.render(label, True, TEXT), (rect.x, rect.y - self._font.get_linesize()))
        pygame.draw.rect(self.surface, PANEL, rect)
        pygame.draw.rect(self.surface, REACHABLE, (rect.x, rect.y, round(rect.w * min(scene.lowest_ratio, 1)), rect.h))
        cost = pygame.Rect(rect.x, rect.y + rect.h // 4, round(rect.w * min(scene.cost_ratio, 1)), rect.h // 2)
        pygame.draw.rect(self.surface, COST, cost)
        budget_x = rect.x + round(rect.w * scene.preserve)
        pygame.draw.line(self.surface, BUDGET, (budget_x, rect.y - 3), (budget_x, rect.bottom + 3), 3)
        pygame.draw.rect(self.surface, EDGE, rect, 1)

    def _draw_history(self, scene: PruningScene, rect: Any) -> None:
        n = len(scene.val_accuracy)
        xs = list(range(1, n + 1))
        stride = max(1, -(-n // MAX_DOTS))
        best = np.maximum.accumulate(scene.val_accuracy).tolist() if n else []
        series = [
            Series(xs[::stride], scene.val_accuracy[::stride], EPISODE, "pruned, no fine-tuning", "dots"),
            Series(xs, best, BEST, "best so far", "step"),
            Series([0, max(n, 10) + 0.5], [scene.original_val_accuracy] * 2, ORIGINAL, "unpruned"),
        ]
        draw_chart(
            self.surface,
            rect,
            series,
            title="validation accuracy per episode",
            x_label="episode",
            y_label="val accuracy",
            x_range=(0, max(n, 10) + 0.5),
            y_range=(0.0, 1.0),
            font=self._small_font,
        )
