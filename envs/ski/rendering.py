"""The pygame view of the ski env: a top-down camera that follows the skier down the slope.

The same drawing serves three uses, so a person, a video and a CNN all see the same slope:

* ``SkiRenderer(600, 400)`` for ``render_mode="rgb_array"`` (videos) and, with ``human=True``, the window of
  ``render_mode="human"``;
* ``SkiRenderer(84, 84, hud=False)`` for ``obs_type="pixels"``: drawn off-screen, never opening a window.

The view is fixed in metres, not in pixels: it always shows ``VIEW_HEIGHT`` metres of slope, the skier a
quarter of the way down, so about 45 m ahead are in view, as far as the vector observation senses
(``SENSE_Y``) and enough for the next gate or two. The camera is centred on the fall line, so the piste edges
stay where they are and the skier moves across the screen. Figures (skier, flags) are drawn larger than
life, with a floor in pixels, so that the skier's heading still reads at 84 x 84.

Like Gymnasium's own renderers, pygame is imported only where drawing happens, and only ``pygame.display``
(in human mode) and ``pygame.font`` (for the head-up line) are initialised: ``pygame.init()`` would also
open the audio device, which a training job on a server has no use for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.rendering import FrameRenderer, import_pygame
from envs.ski import physics
from envs.ski.course import Course

# Camera
VIEW_HEIGHT = 60.0  # m of slope from the top to the bottom of the view, whatever the size in pixels
SKIER_SCREEN_Y = 0.25  # share of the view height above the skier: the rest is the slope ahead
FIGURE_ZOOM = 1.5  # flags and skier are drawn this much larger than life, so they read at a glance
SKIER_ZOOM = 1.3  # and the skier larger again: it is what a person (or a CNN) looks for first
MIN_BODY_PX = 1.5  # px, the smallest radius of the skier's body, so that its colour shows at 84 x 84
MIN_FIGURE_SCALE = 4.0  # px/m at least for figures, so that the skis show the heading at 84 x 84
DETAIL_SCALE = 4.0  # px/m from which the decorations (tree shapes, shadows, bumps, helmet) are drawn
DRAW_MARGIN = 3.0  # m beyond the view within which objects are still drawn (their size overlaps the edge)

# Sizes, in metres
SKI_LENGTH = 1.7
SKI_WIDTH = 0.12
SKI_GAP = 0.3  # between the two skis, and so between the two ski tracks
SHOULDER_WIDTH = 0.45  # between the centres of the shoulders
BODY_DEPTH = 0.36  # front to back
BODY_LENGTH = 1.1  # head to hips, lying in the snow
HELMET_RADIUS = 0.14
CROSSED_SKIS = 0.6  # rad each ski is turned from the heading when the skier lies in the snow
FLAG_WIDTH = 1.1  # the flag panel, pointing outward from its pole
FLAG_DEPTH = 0.55
OBSTACLE_CANOPY = 1.6  # radius of a tree on the piste seen from above
OBSTACLE_TRUNK = 0.6  # its trunk
FOREST_CANOPY = (1.4, 2.2)  # range of the radius of the forest trees
MIN_TREE_PX = 2  # px, smallest canopy radius, so that a tree is not lost at 84 x 84
FINISH_SQUARE = 1.0  # m, side of the chequers of the finish line
NET_DASH = 2.0  # m, dashes of the safety net along the piste edge
BUMP_TILE = 40.0  # m of slope over which the pattern of snow bumps repeats
N_BUMPS = 36  # bumps per tile

# Colours (RGB)
SNOW_PISTE = (247, 249, 252)  # groomed snow
SNOW_DEEP = (212, 223, 236)  # untracked snow beside the piste, in the forest
BUMP = (237, 242, 249)
SHADOW = (188, 200, 216)
NET = (255, 120, 20)  # the orange safety net along the piste edge
TREE_DARK = (24, 86, 50)
TREE_LIGHT = (48, 124, 72)
TRUNK = (100, 62, 30)
FLAG_COLOURS = ((214, 32, 40), (32, 72, 204))  # pending gates alternate red and blue, as in a real slalom
FLAG_PASSED = (40, 190, 60)
FLAG_MISSED = (150, 150, 150)
MISS_CROSS = (220, 0, 0)
POLE = (40, 40, 40)
TRAIL = (168, 178, 192)
START_LINE = (90, 120, 200)
CHEQUER = ((20, 20, 20), (250, 250, 250))
SKI = (25, 25, 25)
JACKET = (250, 190, 0)  # yellow: no gate, tree or snow has this colour
JACKET_DOWN = (170, 60, 210)  # purple while lying in the snow after a fall or a crash
HELMET = (20, 20, 20)
HUD_BACKGROUND = (16, 28, 48, 190)
HUD_TEXT = (255, 255, 255)
HUD_ALERT = (255, 110, 110)
HUD_FONT_SHARE = 0.055  # font size as a share of the window height
BANNER_BACKGROUND = (16, 28, 48, 215)


@dataclass(frozen=True)
class Scene:
    """Everything one frame shows, as plain data: a frame can be drawn, stored or sent without pygame."""

    course: Course
    x: float  # m across the slope
    y: float  # m down the fall line
    heading: float  # rad from the fall line, positive towards +x
    speed: float  # m/s
    down: float  # s left lying in the snow; > 0 after a fall or a crash
    time: float  # s since the start
    gates_passed: int
    gates_missed: int
    falls: int
    tree_hits: int
    n_gates: int
    gate_status: tuple[int, ...]  # per gate: 0 pending, 1 passed, -1 missed
    trail: tuple[tuple[float, float], ...]  # past (x, y) of the skier, oldest first

    @classmethod
    def of(
        cls,
        course: Course,
        state: physics.SkierState,
        gate_status: list[int],
        trail: list[tuple[float, float]],
    ) -> Scene:
        """The scene of one (scalar) skier; copies what it keeps, so the env may go on stepping."""
        return cls(
            course=course,
            x=float(state.x),
            y=float(state.y),
            heading=float(state.heading),
            speed=math.hypot(float(state.vx), float(state.vy)),
            down=float(state.down),
            time=abs(float(state.time)),  # the clock starts at -0.0 for a skier left of the fall line
            gates_passed=int(state.gates_passed),
            gates_missed=int(state.gates_missed),
            falls=int(state.falls),
            tree_hits=int(state.tree_hits),
            n_gates=len(course.gate_x),
            gate_status=tuple(int(g) for g in gate_status),
            trail=tuple(trail),
        )

    @property
    def finished(self) -> bool:
        return self.y >= self.course.length

    def hud_text(self) -> str:
        """The head-up line: what a skier wants to know at a glance, in a skier's units."""
        return (
            f"{self.speed * 3.6:3.0f} km/h   gates {self.gates_passed}/{self.n_gates}   missed {self.gates_missed}"
            f"   falls {self.falls}   trees {self.tree_hits}   {self.time:5.1f} s"
        )


def _star(points: int, inner: float) -> np.ndarray:
    """Unit outline of a fir seen from above: ``points`` spikes, notches at ``inner`` of the radius."""
    angles = np.arange(2 * points) * math.pi / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


FIR = _star(8, 0.72)
_BUMPS = np.random.default_rng(0).uniform((-1.0, 0.0), (1.0, BUMP_TILE), size=(N_BUMPS, 2))  # x as share of half


class SkiRenderer(FrameRenderer):
    """Draws :class:`Scene` s on a pygame surface; ``rgb_array`` returns it, ``show`` puts it in a window.

    ``width`` x ``height`` pixels always show ``VIEW_HEIGHT`` metres of slope; ``hud`` adds the head-up line;
    ``human`` allows ``show`` (only a human renderer opens a window).
    """

    caption = "trendgym - Ski"

    def __init__(self, width: int = 600, height: int = 400, hud: bool = True, human: bool = False) -> None:
        super().__init__(width, height, human)
        pygame = import_pygame()
        self.hud = hud
        self.scale = height / VIEW_HEIGHT  # px/m
        self.figure_scale = max(self.scale * FIGURE_ZOOM, MIN_FIGURE_SCALE)
        self.detailed = self.scale >= DETAIL_SCALE
        self._font: Any = None
        self._small_font: Any = None
        self._hud_bar: Any = None  # the translucent band behind the head-up line, made on first use
        if hud:
            pygame.font.init()
            size = max(12, round(height * HUD_FONT_SHARE))
            self._font = pygame.font.Font(None, size)
            self._small_font = pygame.font.Font(None, max(12, round(size * 0.8)))
        self._top = 0.0  # m: y of the top edge of the view in the frame being drawn

    # ---- public ----------------------------------------------------------------------------------------------

    def draw(self, scene: Scene) -> Any:
        """Draw ``scene`` on ``self.surface`` (and return it), back to front."""
        pygame = import_pygame()
        self._top = scene.y - SKIER_SCREEN_Y * VIEW_HEIGHT
        course = scene.course
        self._draw_snow(pygame, course)
        self._draw_trail(pygame, scene.trail)
        self._draw_lines(pygame, course)
        self._draw_gates(pygame, course, scene.gate_status)
        self._draw_trees(pygame, course)
        self._draw_skier(pygame, scene)
        if self.hud:
            self._draw_hud(pygame, scene)
        return self.surface

    # ---- coordinates -----------------------------------------------------------------------------------------

    def _px(self, x: float, y: float) -> tuple[float, float]:
        """Screen position of the point (x, y) in metres."""
        return self.width / 2 + x * self.scale, (y - self._top) * self.scale

    def _visible(self, y: np.ndarray, margin: float = DRAW_MARGIN) -> np.ndarray:
        return (y > self._top - margin) & (y < self._top + VIEW_HEIGHT + margin)

    # ---- the slope -------------------------------------------------------------------------------------------

    def _draw_snow(self, pygame: Any, course: Course) -> None:
        """Deep snow under the forest, the groomed piste between the safety nets."""
        half = course.slope.piste_width / 2
        left, right = round(self._px(-half, 0.0)[0]), round(self._px(half, 0.0)[0])
        self.surface.fill(SNOW_DEEP)
        self.surface.fill(SNOW_PISTE, pygame.Rect(left, 0, right - left, self.height))
        if self.detailed:
            self._draw_bumps(pygame, half)
        for edge in (left, right):  # the safety net along each edge: crossing it is a crash
            if not self.detailed:
                pygame.draw.line(self.surface, NET, (edge, 0), (edge, self.height), 1)
                continue
            dash = NET_DASH * self.scale
            y = -(self._top % (2 * NET_DASH)) * self.scale  # dashes fixed to the slope, so they scroll past
            while y < self.height:
                pygame.draw.line(self.surface, NET, (edge, y), (edge, y + dash), 3)
                y += 2 * dash

    def _draw_bumps(self, pygame: Any, half: float) -> None:
        """Bumps in the snow that scroll past: they show a person how fast the skier goes."""
        tile = math.floor(self._top / BUMP_TILE) * BUMP_TILE
        radius = max(2, round(0.9 * self.scale))
        for offset in (tile, tile + BUMP_TILE):
            for bx, by in _BUMPS:
                sx, sy = self._px(bx * (half - 1.0), offset + by)
                if -radius < sy < self.height + radius:
                    pygame.draw.ellipse(self.surface, BUMP, (sx - 2 * radius, sy - radius, 4 * radius, 2 * radius))

    def _draw_trail(self, pygame: Any, trail: tuple[tuple[float, float], ...]) -> None:
        """The ski tracks: two thin grooves, one per ski, where the skier has been."""
        if len(trail) < 2:
            return
        points = np.asarray(trail, dtype=np.float64)
        points = points[points[:, 1] > self._top - DRAW_MARGIN]
        if len(points) < 2:
            return
        screen = np.empty_like(points)
        screen[:, 0] = self.width / 2 + points[:, 0] * self.scale
        screen[:, 1] = (points[:, 1] - self._top) * self.scale
        keep = np.ones(len(screen), dtype=bool)
        keep[1:] = np.any(np.abs(np.diff(screen, axis=0)) > 0.5, axis=1)  # a skier standing still leaves no track
        screen = screen[keep]
        if len(screen) < 2:
            return
        gap = SKI_GAP / 2 * self.figure_scale
        if gap < 1.0:
            pygame.draw.lines(self.surface, TRAIL, False, screen.tolist(), 1)
            return
        direction = np.gradient(screen, axis=0)
        normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        for side in (-gap, gap):
            pygame.draw.lines(self.surface, TRAIL, False, (screen + side * normal).tolist(), 1)

    def _draw_lines(self, pygame: Any, course: Course) -> None:
        """The start line and the chequered finish line across the piste."""
        half = course.slope.piste_width / 2
        bottom = self._top + VIEW_HEIGHT
        if self._top - 1.0 < 0.0 < bottom + 1.0:
            (x0, y), (x1, _) = self._px(-half, 0.0), self._px(half, 0.0)
            pygame.draw.line(self.surface, START_LINE, (x0, y), (x1, y), max(1, round(0.2 * self.scale)))
        if not self._top - 2 * FINISH_SQUARE < course.length < bottom + 2 * FINISH_SQUARE:
            return
        side = max(FINISH_SQUARE * self.scale, 2.0)  # px
        x_left, y_line = self._px(-half, course.length)
        x_right = round(x_left + 2 * half * self.scale)
        for row in range(2):  # one row of chequers above the line, one below
            for column in range(math.ceil(2 * half * self.scale / side)):
                x = round(x_left + column * side)
                rect = pygame.Rect(
                    x, round(y_line + (row - 1) * side), min(math.ceil(side), x_right - x), math.ceil(side)
                )
                self.surface.fill(CHEQUER[(row + column) % 2], rect)

    # ---- gates and trees -------------------------------------------------------------------------------------

    def _draw_gates(self, pygame: Any, course: Course, gate_status: tuple[int, ...]) -> None:
        half_gate = course.slope.gate_width / 2
        for i in np.flatnonzero(self._visible(course.gate_y)):
            status = gate_status[i] if i < len(gate_status) else 0
            colour = FLAG_PASSED if status > 0 else FLAG_MISSED if status < 0 else FLAG_COLOURS[i % 2]
            for side in (-1.0, 1.0):
                self._draw_flag(pygame, course.gate_x[i] + side * half_gate, course.gate_y[i], side, colour, status < 0)

    def _draw_flag(self, pygame: Any, x: float, y: float, side: float, colour: tuple, missed: bool) -> None:
        """One flag: a pole and its panel, which points away from the gate."""
        f = self.figure_scale
        px, py = self._px(x, y)
        width, depth = max(FLAG_WIDTH * f, 2.0), max(FLAG_DEPTH * f, 2.0)
        left = px if side > 0 else px - width
        panel = pygame.Rect(round(left), round(py - depth / 2), round(width), round(depth))
        pygame.draw.rect(self.surface, colour, panel)
        pygame.draw.circle(self.surface, POLE, (px, py), max(1.0, 0.12 * f))
        if missed:
            r = max(FLAG_WIDTH * f * 0.6, 2.0)
            cx = px + side * width / 2
            thick = max(1, round(0.12 * f))
            pygame.draw.line(self.surface, MISS_CROSS, (cx - r, py - r), (cx + r, py + r), thick)
            pygame.draw.line(self.surface, MISS_CROSS, (cx - r, py + r), (cx + r, py - r), thick)

    def _draw_trees(self, pygame: Any, course: Course) -> None:
        forest = np.flatnonzero(self._visible(course.forest_y))
        low, high = FOREST_CANOPY
        for i in forest:
            radius = low + (high - low) * ((i * 0.618034) % 1.0)  # a fixed spread of sizes, no randomness
            self._draw_tree(pygame, course.forest_x[i], course.forest_y[i], radius, i, trunk=False)
        for i in np.flatnonzero(self._visible(course.tree_y)):
            self._draw_tree(pygame, course.tree_x[i], course.tree_y[i], OBSTACLE_CANOPY, i, trunk=True)

    def _draw_tree(self, pygame: Any, x: float, y: float, radius: float, index: int, trunk: bool) -> None:
        px, py = self._px(x, y)
        r = max(radius * self.scale, MIN_TREE_PX)
        if not self.detailed:
            pygame.draw.circle(self.surface, TREE_DARK, (px, py), r)
            if trunk:
                pygame.draw.circle(self.surface, TRUNK, (px, py), max(OBSTACLE_TRUNK * self.scale, 1.0))
            return
        shadow = 0.35 * r
        pygame.draw.circle(self.surface, SHADOW, (px + shadow, py + shadow), r)
        angle = index * 0.9
        c, s = math.cos(angle), math.sin(angle)
        outline = [(px + r * (c * u - s * v), py + r * (s * u + c * v)) for u, v in FIR]
        pygame.draw.polygon(self.surface, TREE_DARK, outline)
        pygame.draw.circle(self.surface, TREE_LIGHT, (px, py), 0.45 * r)
        if trunk:  # the trunk a skier hits, the hazard the canopy hides
            pygame.draw.circle(self.surface, TRUNK, (px, py), OBSTACLE_TRUNK * self.scale)

    # ---- the skier -------------------------------------------------------------------------------------------

    def _draw_skier(self, pygame: Any, scene: Scene) -> None:
        """Two skis along the heading and a yellow body across them (purple, lying on crossed skis, when down)."""
        f = self.figure_scale * SKIER_ZOOM
        px, py = self._px(scene.x, scene.y)
        down = scene.down > 0.0
        dx, dy = math.sin(scene.heading), math.cos(scene.heading)  # along the skis, on screen
        nx, ny = dy, -dx  # across them
        half = SKI_LENGTH / 2 * f
        for side in (-1.0, 1.0):
            ax, ay = dx, dy
            if down:  # skis crossed in the snow
                c, s = math.cos(side * CROSSED_SKIS), math.sin(side * CROSSED_SKIS)
                ax, ay = c * dx - s * dy, s * dx + c * dy
            cx, cy = px + side * SKI_GAP / 2 * f * nx, py + side * SKI_GAP / 2 * f * ny
            start, end = (cx - half * ax, cy - half * ay), (cx + half * ax, cy + half * ay)
            pygame.draw.line(self.surface, SKI, start, end, max(2, round(SKI_WIDTH * f)))
        if down:  # lying flat, stretched out along the slope
            ax, ay, length = dx, dy, BODY_LENGTH * f
        else:
            ax, ay, length = nx, ny, SHOULDER_WIDTH * f
        radius = max(BODY_DEPTH / 2 * f, MIN_BODY_PX)
        ends = [(px + side * length / 2 * ax, py + side * length / 2 * ay) for side in (-1.0, 1.0)]
        jacket = JACKET_DOWN if down else JACKET
        pygame.draw.line(self.surface, jacket, ends[0], ends[1], round(2 * radius))
        for end in ends:  # round shoulders
            pygame.draw.circle(self.surface, jacket, end, radius)
        if self.detailed:
            head = ends[1] if down else (px + 0.1 * f * dx, py + 0.1 * f * dy)
            pygame.draw.circle(self.surface, HELMET, head, HELMET_RADIUS * f)

    # ---- head-up display -------------------------------------------------------------------------------------

    def _draw_hud(self, pygame: Any, scene: Scene) -> None:
        text = self._font.render(scene.hud_text(), True, HUD_TEXT)
        bar_height = text.get_height() + 8
        if self._hud_bar is None or self._hud_bar.get_height() != bar_height:
            self._hud_bar = pygame.Surface((self.width, bar_height), pygame.SRCALPHA)
            self._hud_bar.fill(HUD_BACKGROUND)
        self.surface.blit(self._hud_bar, (0, 0))
        self.surface.blit(text, (8, 4))
        if scene.down > 0.0:
            alert = self._small_font.render(f"down {scene.down:.1f} s", True, HUD_ALERT)
            self.surface.blit(alert, (8, bar_height + 4))
        self._draw_progress(pygame, scene, bar_height)
        if scene.finished:
            draw_banner(self.surface, ["FINISH", f"{scene.time:.1f} s"], self._font)

    def _draw_progress(self, pygame: Any, scene: Scene, top: int) -> None:
        """A thin map of the whole course on the right: where the skier is and how each gate went."""
        x = self.width - 10
        y0, y1 = top + 10, self.height - 10
        course = scene.course

        def at(y: float) -> float:
            return y0 + (y1 - y0) * min(max(y / course.length, 0.0), 1.0)

        pygame.draw.line(self.surface, SHADOW, (x, y0), (x, y1), 3)
        for i, gy in enumerate(course.gate_y):
            status = scene.gate_status[i] if i < len(scene.gate_status) else 0
            colour = FLAG_PASSED if status > 0 else FLAG_MISSED if status < 0 else FLAG_COLOURS[i % 2]
            pygame.draw.line(self.surface, colour, (x - 4, at(gy)), (x + 4, at(gy)), 2)
        pygame.draw.circle(self.surface, JACKET_DOWN if scene.down > 0 else JACKET, (x, at(scene.y)), 4)


def draw_banner(surface: Any, lines: list[str], font: Any = None, centre: float = 0.5) -> None:
    """Write ``lines`` in a dark box across ``surface``, its middle ``centre`` of the way down: the end of a
    run, a prompt. A plain function, so that a program showing the env's window can write over its frame."""
    pygame = import_pygame()
    if font is None:
        pygame.font.init()
        font = pygame.font.Font(None, max(12, round(surface.get_height() * HUD_FONT_SHARE)))
    texts = [font.render(line, True, HUD_TEXT) for line in lines]
    gap = 6
    width = max(t.get_width() for t in texts) + 4 * gap
    height = sum(t.get_height() for t in texts) + gap * (len(texts) + 1)
    box = pygame.Surface((width, height), pygame.SRCALPHA)
    box.fill(BANNER_BACKGROUND)
    left, top = (surface.get_width() - width) // 2, round(surface.get_height() * centre - height / 2)
    surface.blit(box, (left, top))
    y = top + gap
    for t in texts:
        surface.blit(t, ((surface.get_width() - t.get_width()) // 2, y))
        y += t.get_height() + gap
