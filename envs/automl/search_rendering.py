"""The pygame view of the search envs: the configuration being built, and the search so far.

Left, the controller's decisions, one row per decision of the space: its options as boxes, the chosen one filled,
the current decision marked with the options the earlier choices forbid greyed out and crossed, and decisions that
do not apply to this configuration dimmed. For the architecture space, a diagram of the network below them. Right,
the search's history (:func:`envs.automl.charts.draw_chart`): the validation accuracy of every configuration
evaluated, and the best so far, with the numbers a person watching a search wants.

As in the ski renderer, pygame is imported only where drawing happens, and only ``pygame.display`` (in human mode)
and ``pygame.font`` are initialised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.automl.charts import Series, draw_chart
from envs.rendering import FrameRenderer, import_pygame, make_fonts
from trends.automl.space import Config, Option, SearchSpace

WIDTH, HEIGHT = 960, 540  # px, the default frame
LEFT_SHARE = 0.45  # share of the width for the decisions panel
MARGIN = 10  # px
NAME_SHARE = 0.36  # share of the decisions panel for the decision names
MAX_ROW = 34  # px, the tallest row of a decision
DIAGRAM_HEIGHT = 70  # px, the architecture diagram under the decisions (architecture spaces only)
FONT_SHARE = 0.034  # font size as a share of the frame height
TEXT_LINES = 4  # lines of numbers under the chart
MAX_DOTS = 2000  # a longer search shows every k-th evaluation as a dot, so a frame stays cheap

# Colours (RGB)
BACKGROUND = (244, 246, 250)
PANEL = (255, 255, 255)
TEXT = (30, 30, 40)
TEXT_DIM = (170, 170, 178)
CURRENT_ROW = (255, 243, 196)  # the band behind the current decision
CURRENT_MARK = (230, 150, 0)
OPTION = (255, 255, 255)
OPTION_EDGE = (150, 160, 175)
CHOSEN = (40, 110, 220)
CHOSEN_TEXT = (255, 255, 255)
MASKED = (212, 214, 220)
MASKED_CROSS = (170, 60, 60)
ALLOWED_EDGE = (230, 150, 0)
EVALUATED = (120, 150, 200)  # dots: each configuration's validation accuracy
BEST = (220, 70, 40)  # the best-so-far line
LAYER_COLOURS = {"conv": (90, 160, 110), "dense": (110, 130, 200), "io": (150, 150, 150)}


@dataclass(frozen=True)
class SearchScene:
    """Everything one frame shows, as plain data (the env may go on stepping while a frame is kept)."""

    space: SearchSpace
    config: Config  # the choices made so far in this episode
    decision: int | None  # the current decision; None once the configuration is complete
    mask: tuple[bool, ...]  # its allowed options
    val_accuracy: tuple[float, ...]  # of every configuration the search evaluated, in order
    test_accuracy: tuple[float, ...]
    parameters: tuple[int, ...]
    last_config: Config | None  # the last configuration evaluated

    @classmethod
    def of(
        cls, space: SearchSpace, config: Config, decision: int | None, mask: np.ndarray, history: Sequence[Any]
    ) -> SearchScene:
        """The scene of a search env: ``history`` holds its :class:`~envs.automl.search_env.EpisodeResult` s."""
        return cls(
            space=space,
            config=dict(config),
            decision=decision,
            mask=tuple(bool(m) for m in mask),
            val_accuracy=tuple(r.val_accuracy for r in history),
            test_accuracy=tuple(r.test_accuracy for r in history),
            parameters=tuple(r.parameters for r in history),
            last_config=dict(history[-1].config) if history else None,
        )

    @property
    def best(self) -> int | None:
        """Index of the best configuration by validation accuracy (the first of equals)."""
        return int(np.argmax(self.val_accuracy)) if self.val_accuracy else None

    def summary(self) -> list[str]:
        """The lines of numbers under the chart."""
        n, best = len(self.val_accuracy), self.best
        if best is None:
            return [f"{self.space.name}: {self.space.size} configurations", "no configuration evaluated yet"]
        return [
            f"{self.space.name}: {n} evaluations of {self.space.size} configurations",
            f"best val acc {self.val_accuracy[best]:.3f} (test {self.test_accuracy[best]:.3f}) at #{best + 1}",
            f"last val acc {self.val_accuracy[-1]:.3f}, {self.parameters[-1]:,} parameters",
        ]


def _option_text(option: Option) -> str:
    if isinstance(option, bool):
        return "yes" if option else "no"
    if isinstance(option, float):
        return f"{option:g}"
    return str(option)


class SearchRenderer(FrameRenderer):
    """Draws :class:`SearchScene` s on a ``width`` x ``height`` pygame surface; ``show`` needs ``human=True``."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, human: bool = False) -> None:
        super().__init__(width, height, human)
        self._font, self._small_font = make_fonts(height, FONT_SHARE)

    # ---- public ------------------------------------------------------------------------------------------

    def window_caption(self, scene: SearchScene) -> str:
        return f"trendgym - search {scene.space.name}"

    def draw(self, scene: SearchScene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it)."""
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        split = round(self.width * LEFT_SHARE)
        left = pygame.Rect(MARGIN, MARGIN, split - 2 * MARGIN, self.height - 2 * MARGIN)
        right = pygame.Rect(split, MARGIN, self.width - split - MARGIN, self.height - 2 * MARGIN)
        diagram = _is_architecture(scene.space)
        decisions = left.copy()
        if diagram:
            decisions.height -= DIAGRAM_HEIGHT + MARGIN
        self._draw_decisions(pygame, scene, decisions)
        if diagram:
            self._draw_network(pygame, scene, pygame.Rect(left.x, decisions.bottom + MARGIN, left.w, DIAGRAM_HEIGHT))
        self._draw_search(pygame, scene, right)
        return self.surface

    # ---- the configuration being built ---------------------------------------------------------------------

    def _draw_decisions(self, pygame: Any, scene: SearchScene, rect: Any) -> None:
        pygame.draw.rect(self.surface, PANEL, rect)
        title = "configuration complete" if scene.decision is None else "choosing"
        text = self._font.render(f"{title}  ({len(scene.config)} choices)", True, TEXT)
        self.surface.blit(text, (rect.x + 6, rect.y + 4))
        top = rect.y + text.get_height() + 10
        decisions = scene.space.decisions
        row = min(MAX_ROW, (rect.bottom - top - 4) // max(len(decisions), 1))
        name_width = round(rect.w * NAME_SHARE)
        box_width = (rect.w - name_width - 12) / scene.space.max_options
        for i, decision in enumerate(decisions):
            y = top + i * row
            current = i == scene.decision
            chosen = decision.name in scene.config
            reached = scene.decision is None or i < scene.decision
            skipped = reached and not chosen  # it did not apply to the earlier choices
            if current:
                pygame.draw.rect(self.surface, CURRENT_ROW, (rect.x + 2, y, rect.w - 4, row - 2))
                pygame.draw.polygon(
                    self.surface,
                    CURRENT_MARK,
                    [(rect.x + 3, y + 3), (rect.x + 11, y + row / 2 - 1), (rect.x + 3, y + row - 5)],
                )
            name = self._small_font.render(decision.name, True, TEXT_DIM if skipped else TEXT)
            self.surface.blit(name, (rect.x + 14, y + (row - 2 - name.get_height()) // 2))
            for j, option in enumerate(decision.options):
                box = pygame.Rect(round(rect.x + name_width + j * box_width), y + 2, round(box_width) - 4, row - 6)
                state = "skipped" if skipped else "pending"
                if chosen:
                    state = "chosen" if _same(scene.config[decision.name], option) else "other"
                elif current:
                    state = "allowed" if scene.mask[j] else "masked"
                self._draw_option(pygame, box, _option_text(option), state)

    def _draw_option(self, pygame: Any, box: Any, label: str, state: str) -> None:
        fill, edge, colour = OPTION, OPTION_EDGE, TEXT
        if state == "chosen":
            fill, edge, colour = CHOSEN, CHOSEN, CHOSEN_TEXT
        elif state == "masked":
            fill, colour = MASKED, TEXT_DIM
        elif state == "allowed":
            edge = ALLOWED_EDGE
        elif state in ("skipped", "other"):
            edge, colour = MASKED, TEXT_DIM
        pygame.draw.rect(self.surface, fill, box, border_radius=3)
        pygame.draw.rect(self.surface, edge, box, 2 if state == "allowed" else 1, border_radius=3)
        text = self._small_font.render(label, True, colour)
        self.surface.blit(text, (box.centerx - text.get_width() // 2, box.centery - text.get_height() // 2))
        if state == "masked":
            pygame.draw.line(self.surface, MASKED_CROSS, box.topleft, box.bottomright, 1)
            pygame.draw.line(self.surface, MASKED_CROSS, box.bottomleft, box.topright, 1)

    def _draw_network(self, pygame: Any, scene: SearchScene, rect: Any) -> None:
        """The network the architecture choices describe so far: input, hidden layers, classifier; an arc for
        each skip connection."""
        pygame.draw.rect(self.surface, PANEL, rect)
        layers = [("input", "io")]
        skips = []
        for k in range(1, 10):
            kind = scene.config.get(f"layer{k}_type")
            if kind not in LAYER_COLOURS:
                break
            width = scene.config.get(f"layer{k}_width", "?")
            kernel = scene.config.get(f"layer{k}_kernel")
            layers.append((f"{kind} {width}" + (f" k{kernel}" if kernel is not None and kind == "conv" else ""), kind))
            if scene.config.get(f"layer{k}_skip"):
                skips.append(len(layers) - 1)
        if scene.decision is None:
            layers.append(("classifier", "io"))
        gap = 14
        box_w = min(110, (rect.w - 2 * gap - (len(layers) - 1) * gap) / max(len(layers), 1))
        box_h = 28
        y = rect.bottom - box_h - 8
        centres = []
        for i, (label, kind) in enumerate(layers):
            box = pygame.Rect(round(rect.x + gap + i * (box_w + gap)), y, round(box_w), box_h)
            pygame.draw.rect(self.surface, LAYER_COLOURS[kind], box, border_radius=4)
            text = self._small_font.render(label, True, CHOSEN_TEXT)
            self.surface.blit(text, (box.centerx - text.get_width() // 2, box.centery - text.get_height() // 2))
            if i:
                pygame.draw.line(self.surface, TEXT, (box.left - gap, box.centery), (box.left - 1, box.centery), 2)
            centres.append(box.centerx)
        for i in skips:  # a residual connection around layer i, from the output of layer i-1
            arc = pygame.Rect(centres[i - 1], y - 18, centres[i] - centres[i - 1], 36)
            pygame.draw.arc(self.surface, CURRENT_MARK, arc, 0, math.pi, 2)

    # ---- the search so far -------------------------------------------------------------------------------

    def _draw_search(self, pygame: Any, scene: SearchScene, rect: Any) -> None:
        lines = scene.summary()
        line_height = self._font.get_linesize()
        chart = pygame.Rect(rect.x, rect.y, rect.w, rect.h - TEXT_LINES * line_height - MARGIN)
        n = len(scene.val_accuracy)
        xs = list(range(1, n + 1))
        best = np.maximum.accumulate(scene.val_accuracy).tolist() if n else []
        stride = math.ceil(n / MAX_DOTS) if n else 1
        series = [
            Series(xs[::stride], scene.val_accuracy[::stride], EVALUATED, "validation accuracy", "dots"),
            Series(xs, best, BEST, "best so far", "step"),
        ]
        low = min(scene.val_accuracy, default=0.0)
        y_range = (math.floor(min(low, 0.9) * 10) / 10, 1.0)
        draw_chart(
            self.surface,
            chart,
            series,
            title="search history",
            x_label="evaluation",
            y_label="val accuracy",
            x_range=(0, max(n, 10) + 0.5),
            y_range=y_range,
            font=self._small_font,
        )
        box = pygame.Rect(rect.x, chart.bottom + MARGIN, rect.w, rect.bottom - chart.bottom - MARGIN)
        pygame.draw.rect(self.surface, PANEL, box)
        for i, line in enumerate(lines):
            text = self._font.render(line, True, TEXT)
            self.surface.blit(text, (box.x + 8, box.y + 6 + i * line_height))


def _is_architecture(space: SearchSpace) -> bool:
    return "layer1_type" in space.names


def _same(a: Option, b: Option) -> bool:
    return type(a) is type(b) and a == b
