"""A small chart drawer for the AutoML renderers: lines, dots and steps on labelled axes, in pygame.

Every AutoML env shows a search or a training as it goes (accuracy per evaluation, best so far, validation
loss per epoch), so they share this one function rather than each drawing its own axes. It draws on any
``pygame.Surface`` inside a given ``pygame.Rect``: an env's renderer lays out its panels and calls
:func:`draw_chart` for each chart.

Ranges come from the data unless given; points that are NaN or infinite (a diverged training) are skipped,
and an empty or degenerate range (one point, a flat line) is widened so that the axes still make sense.
Like Gymnasium's renderers, pygame is imported only when drawing, and its absence raises
``DependencyNotInstalled``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envs.rendering import import_pygame

# Colours (RGB)
BACKGROUND = (255, 255, 255)
AXIS = (60, 60, 60)
GRID = (228, 228, 228)
TEXT = (30, 30, 30)
FRAME = (200, 200, 200)

FONT_SIZE = 16  # px, the default font for titles, ticks and the legend
N_TICKS = 5  # about this many tick labels per axis
DOT_RADIUS = 2  # px
PADDING = 4  # px between the chart's parts
LOG_FLOOR = 1e-12  # smallest value drawn on a log axis; values <= 0 are skipped there


@dataclass(frozen=True)
class Series:
    """One curve: its points, colour and legend label; ``style`` is ``"line"``, ``"dots"`` or ``"step"``."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: tuple[int, int, int]
    label: str = ""
    style: str = "line"  # "line" | "dots" | "step" (horizontal then vertical: a best-so-far curve)


def _finite_points(series: Series, log_y: bool) -> list[tuple[float, float]]:
    points = []
    for x, y in zip(series.xs, series.ys, strict=False):
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        if log_y:
            if y <= 0.0:
                continue
            y = math.log10(max(y, LOG_FLOOR))
        points.append((x, y))
    return points


def _padded_range(values: list[float], given: tuple[float, float] | None) -> tuple[float, float]:
    """``given``, or the span of ``values`` with a margin; never empty, never of zero width."""
    if given is not None:
        low, high = float(given[0]), float(given[1])
    elif values:
        low, high = min(values), max(values)
        margin = 0.05 * (high - low)
        low, high = low - margin, high + margin
    else:
        low, high = 0.0, 1.0
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high - low < 1e-12:
        half = max(abs(low) * 0.05, 0.5)
        low, high = low - half, high + half
    return low, high


def _ticks(low: float, high: float, n: int = N_TICKS) -> list[float]:
    """About ``n`` round numbers (1, 2, 5 times a power of ten apart) between ``low`` and ``high``."""
    raw = (high - low) / max(n - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next((m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw), 10.0 * power)
    first = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [first + i * step for i in range(max(count, 0))]


def _tick_text(value: float, step: float, log: bool = False) -> str:
    if log:
        return f"1e{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{10**value:.2g}"
    if abs(value) < step * 1e-6:
        value = 0.0
    if abs(value) >= 1e4 or (0 < abs(value) < 1e-3):
        return f"{value:.1e}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    return f"{value:.{min(decimals, 4)}f}"


def draw_chart(
    surface: Any,
    rect: Any,
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    font: Any = None,
    log_y: bool = False,
) -> None:
    """Draw ``series`` on ``surface`` inside ``rect``: frame, title, axes with tick labels, a legend.

    ``x_range``/``y_range`` fix the axes (``y_range`` in data units also when ``log_y``); otherwise they span
    the data. ``log_y`` draws the y axis in powers of ten and skips values <= 0. ``font`` defaults to
    pygame's own font at ``FONT_SIZE`` px.
    """
    pygame = import_pygame()
    rect = pygame.Rect(rect)
    if font is None:
        pygame.font.init()
        font = pygame.font.Font(None, FONT_SIZE)
    pygame.draw.rect(surface, BACKGROUND, rect)
    pygame.draw.rect(surface, FRAME, rect, 1)
    line_height = font.get_linesize()

    points = [_finite_points(s, log_y) for s in series]
    xs = [x for pts in points for x, _ in pts]
    ys = [y for pts in points for _, y in pts]
    x_low, x_high = _padded_range(xs, x_range)
    if y_range is not None and log_y:
        y_range = (math.log10(max(y_range[0], LOG_FLOOR)), math.log10(max(y_range[1], LOG_FLOOR)))
    y_low, y_high = _padded_range(ys, y_range)
    x_ticks, y_ticks = _ticks(x_low, x_high), _ticks(y_low, y_high)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else x_high - x_low
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else y_high - y_low
    y_texts = [font.render(_tick_text(v, y_step, log_y), True, TEXT) for v in y_ticks]

    # The plot area: room for the title above, the tick labels left and below, the x label at the bottom.
    top = rect.top + PADDING + (line_height if title else 0)
    bottom = rect.bottom - PADDING - line_height - (line_height if x_label else 0)
    left = rect.left + PADDING + max((t.get_width() for t in y_texts), default=0) + PADDING
    if y_label:
        left += line_height
    right = rect.right - PADDING - 6
    plot = pygame.Rect(left, top, max(right - left, 1), max(bottom - top, 1))

    def to_screen(x: float, y: float) -> tuple[float, float]:
        sx = plot.left + (x - x_low) / (x_high - x_low) * plot.width
        sy = plot.bottom - (y - y_low) / (y_high - y_low) * plot.height
        return sx, sy

    if title:
        text = font.render(title, True, TEXT)
        surface.blit(text, (rect.centerx - text.get_width() // 2, rect.top + PADDING))
    for value, text in zip(y_ticks, y_texts, strict=True):
        _, sy = to_screen(x_low, value)
        pygame.draw.line(surface, GRID, (plot.left, sy), (plot.right, sy))
        surface.blit(text, (plot.left - PADDING - text.get_width(), sy - text.get_height() // 2))
    for value in x_ticks:
        sx, _ = to_screen(value, y_low)
        pygame.draw.line(surface, GRID, (sx, plot.top), (sx, plot.bottom))
        text = font.render(_tick_text(value, x_step), True, TEXT)
        surface.blit(text, (sx - text.get_width() // 2, plot.bottom + 2))
    pygame.draw.line(surface, AXIS, plot.bottomleft, plot.bottomright)
    pygame.draw.line(surface, AXIS, plot.bottomleft, plot.topleft)
    if x_label:
        text = font.render(x_label, True, TEXT)
        surface.blit(text, (plot.centerx - text.get_width() // 2, rect.bottom - PADDING - line_height))
    if y_label:
        text = pygame.transform.rotate(font.render(y_label, True, TEXT), 90)
        surface.blit(text, (rect.left + PADDING, plot.centery - text.get_height() // 2))

    clip = surface.get_clip()
    surface.set_clip(plot.inflate(2 * DOT_RADIUS + 2, 2 * DOT_RADIUS + 2).clip(rect))
    for s, pts in zip(series, points, strict=True):
        _draw_series(pygame, surface, s, [to_screen(x, y) for x, y in pts])
    surface.set_clip(clip)
    _draw_legend(pygame, surface, plot, series, font)


def _draw_series(pygame: Any, surface: Any, series: Series, screen: list[tuple[float, float]]) -> None:
    if not screen:
        return
    if series.style == "dots":
        for point in screen:
            pygame.draw.circle(surface, series.color, point, DOT_RADIUS)
        return
    if series.style == "step":
        stepped = [screen[0]]
        for (_, y0), (x1, y1) in itertools.pairwise(screen):
            stepped += [(x1, y0), (x1, y1)]
        screen = stepped
    elif series.style != "line":
        raise ValueError(f"Series.style must be 'line', 'dots' or 'step', got {series.style!r}")
    if len(screen) == 1:
        pygame.draw.circle(surface, series.color, screen[0], DOT_RADIUS)
    else:
        pygame.draw.lines(surface, series.color, False, screen, 2)


def _draw_legend(pygame: Any, surface: Any, plot: Any, series: Sequence[Series], font: Any) -> None:
    """The labelled series, one per line, in a box at the top right of the plot."""
    labelled = [s for s in series if s.label]
    if not labelled:
        return
    texts = [font.render(s.label, True, TEXT) for s in labelled]
    swatch = 14
    width = max(t.get_width() for t in texts) + swatch + 3 * PADDING
    height = sum(t.get_height() for t in texts) + PADDING * (len(texts) + 1)
    box = pygame.Rect(plot.right - width - PADDING, plot.top + PADDING, width, height)
    pygame.draw.rect(surface, BACKGROUND, box)
    pygame.draw.rect(surface, FRAME, box, 1)
    y = box.top + PADDING
    for s, text in zip(labelled, texts, strict=True):
        middle = y + text.get_height() // 2
        x0 = box.left + PADDING
        if s.style == "dots":
            pygame.draw.circle(surface, s.color, (x0 + swatch // 2, middle), DOT_RADIUS + 1)
        else:
            pygame.draw.line(surface, s.color, (x0, middle), (x0 + swatch, middle), 2)
        surface.blit(text, (x0 + swatch + PADDING, y))
        y += text.get_height() + PADDING
