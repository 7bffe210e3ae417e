"""What every trendgym renderer shares: pygame imported only where drawing happens, and one surface per renderer
that is either returned as an ``rgb_array`` frame or shown in a window, the same way for every environment."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.error import DependencyNotInstalled

from envs.checks import check_int

NO_PYGAME = "pygame is not installed, run `pip install pygame`"


def import_pygame() -> Any:
    """pygame, or gymnasium's DependencyNotInstalled with the install hint (envs work without it, unrendered)."""
    try:
        import pygame
    except ImportError as e:
        raise DependencyNotInstalled(NO_PYGAME) from e
    return pygame


def make_fonts(height: int, share: float, small_ratio: float = 0.85) -> tuple[Any, Any]:
    """pygame's default font at ``share`` of a ``height``-pixel frame, and a smaller one at ``small_ratio`` of it:
    text that scales with the window, never under 11-12 px (unreadable below)."""
    pygame = import_pygame()
    pygame.font.init()
    size = max(12, round(height * share))
    return pygame.font.Font(None, size), pygame.font.Font(None, max(11, round(size * small_ratio)))


def side_by_side(
    width: int, height: int, left_share: float, margin: int, summary_height: int
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The layout of the decision envs' views, as ``(x, y, w, h)``: a list panel on the left, a summary box under
    it ``summary_height`` tall, and a chart filling the right."""
    split = round(width * left_share)
    panel = (margin, margin, split - 2 * margin, height - 3 * margin - summary_height)
    summary = (margin, panel[1] + panel[3] + margin, panel[2], summary_height)
    chart = (split, margin, width - split - margin, height - 2 * margin)
    return panel, summary, chart


def draw_text_box(
    surface: Any, rect: Any, fill: tuple, lines: list[str], font: Any, colour: tuple, line_height: int
) -> None:
    """``lines`` in ``font``, one per ``line_height``, in a box ``rect`` filled with ``fill`` (6 px of padding)."""
    pygame = import_pygame()
    pygame.draw.rect(surface, fill, rect)
    for i, line in enumerate(lines):
        surface.blit(font.render(line, True, colour), (rect.x + 6, rect.y + 6 + i * line_height))


class FrameRenderer:
    """Base class of the renderers: a subclass draws a scene on :attr:`surface` in :meth:`draw`; this class turns
    the surface into an array, or puts it in a window (opened only by a renderer made with ``human=True``)."""

    caption = "trendgym"

    def __init__(self, width: int, height: int, human: bool = False) -> None:
        pygame = import_pygame()
        self.width, self.height, self.human = width, height, human
        self.surface = pygame.Surface((width, height))
        self._screen: Any = None
        self._clock: Any = None

    def draw(self, scene: Any) -> Any:
        """Draw ``scene`` on ``self.surface`` and return it."""
        raise NotImplementedError

    def window_caption(self, scene: Any) -> str:
        """The window's title for ``scene``."""
        return self.caption

    def rgb_array(self, scene: Any) -> np.ndarray:
        """The frame as an ``(height, width, 3)`` uint8 array, drawn off-screen."""
        pygame = import_pygame()
        self.draw(scene)
        pixels = pygame.surfarray.pixels3d(self.surface)
        frame = np.transpose(pixels, (1, 0, 2)).copy()
        del pixels  # unlocks the surface
        return frame

    def show(self, scene: Any, fps: float) -> None:
        """Draw the frame in the window (opened on the first call) and wait to keep ``fps`` frames a second."""
        if not self.human:
            raise RuntimeError("show() needs a renderer made with human=True")
        pygame = import_pygame()
        if self._screen is None:
            pygame.display.init()
            pygame.display.set_caption(self.window_caption(scene))
            self._screen = pygame.display.set_mode((self.width, self.height))
            self._clock = pygame.time.Clock()
        pygame.event.pump()
        self.draw(scene)
        self._screen.blit(self.surface, (0, 0))
        pygame.display.flip()
        self._clock.tick(fps)

    def close(self) -> None:
        """Close the window, if one is open; safe to call more than once."""
        if self._screen is not None:
            import pygame

            pygame.display.quit()
            self._screen = None
            self._clock = None


class SceneRendering:
    """Gymnasium's ``render()`` and ``close()`` for an env that describes each frame as a scene: a mixin placed
    before ``gym.Env`` in the bases. The env defines ``scene()`` (plain data of what a frame shows) and
    ``make_renderer(human)`` (the :class:`FrameRenderer` that draws it); this class does the rest the same way for
    every env: a warning without a render mode, a window in ``"human"`` mode, an array in ``"rgb_array"`` mode."""

    _renderer: FrameRenderer | None = None
    render_mode: str | None
    metadata: dict[str, Any]

    def scene(self) -> Any:
        raise NotImplementedError

    def make_renderer(self, human: bool) -> FrameRenderer:
        raise NotImplementedError

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            import gymnasium as gym

            spec = getattr(self, "spec", None)
            env_id = spec.id if spec is not None else type(self).__name__
            gym.logger.warn(
                f'render() was called without a render_mode; pass one, e.g. gym.make("{env_id}", '
                'render_mode="rgb_array")'
            )
            return None
        if self._renderer is None:
            self._renderer = self.make_renderer(self.render_mode == "human")
        scene = self.scene()
        if self.render_mode == "human":
            self._renderer.show(scene, self.metadata["render_fps"])
            return None
        return self._renderer.rgb_array(scene)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._renderer = None


class FrameStack:
    """The last ``k`` frames ``(H, W, C)`` side by side along the channels, newest last: ``(H, W, k * C)``.

    One frame shows where things are but not how fast they move; two show both, which makes a pixel observation
    as Markov as the state it draws (Mnih et al. 2015 stacked four Atari frames for the same reason). At reset
    the first frame fills every slot, as Gymnasium's ``FrameStackObservation(padding_type="reset")`` does, so an
    episode's first observation looks like a skier standing still rather than like a black screen.
    """

    def __init__(self, k: int) -> None:
        self.k = check_int("frame_stack", k, 1)
        self._stack: np.ndarray | None = None

    def reset(self, frame: np.ndarray) -> np.ndarray:
        """Start an episode at ``frame``; the stacked observation."""
        self._stack = np.concatenate([frame] * self.k, axis=-1)
        return self._stack.copy()

    def push(self, frame: np.ndarray) -> np.ndarray:
        """Add ``frame``, drop the oldest; the stacked observation."""
        if self._stack is None:
            return self.reset(frame)
        channels = frame.shape[-1]
        self._stack = np.concatenate([self._stack[..., channels:], frame], axis=-1)
        return self._stack.copy()
