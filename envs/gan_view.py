"""A pygame view of a GAN's generator (the counterfeiter) learning a 2-D mixture: the real modes as red discs,
the generator's samples as white dots, one frame per training snapshot, so a person sees the fakes move toward
the data, and sees a collapse (dots crowding onto a few modes) as it happens.

It lives in ``envs/`` because this is where trendgym's pygame code lives (:mod:`envs.rendering`; DESIGN.md gives
pygame to ``envs`` and keeps ``trends`` free of it), and it reads only plain data from :mod:`trends.gan`, which
``envs`` may import. It is not an environment: it draws :class:`~trends.gan.packing.Snapshots`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.rendering import FrameRenderer, import_pygame, make_fonts
from trends.files import atomic_write
from trends.gan.mixtures import QUALITY_STDS, Mixture, mean_distance_to_modes
from trends.gan.packing import Snapshots

BACKGROUND = (18, 22, 30)
MODE_COLOUR = (220, 60, 60)
SAMPLE_COLOUR = (235, 235, 235)
TEXT_COLOUR = (200, 200, 200)
MIN_MODE_RADIUS = 4  # px: a ring mode's 3 std (0.03) would otherwise be a single pixel
MARGIN = 0.25  # share of the mixture's extent left around it, so samples a little off still show
HOLD_FPS = 20  # frames a second while the last snapshot is held: enough to answer a close within 50 ms


@dataclass(frozen=True)
class GanFrame:
    """One frame: the samples of one snapshot and what to write above them."""

    samples: np.ndarray  # (n, 2)
    step: int
    label: str


class GanSamplesRenderer(FrameRenderer):
    """Draws :class:`GanFrame` scenes over ``mixture``'s modes, in a square of ``size`` pixels."""

    caption = "trendgym: a GAN's samples"

    def __init__(self, mixture: Mixture, size: int = 480, human: bool = False) -> None:
        super().__init__(size, size, human)
        self.mixture = mixture
        self.extent = float(np.abs(mixture.means).max()) * (1 + MARGIN) + 0.5
        self.font, self.small_font = make_fonts(size, 0.045)

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Data coordinates -> pixel coordinates (y up), as integers."""
        scale = self.width / (2 * self.extent)
        x = (points[:, 0] + self.extent) * scale
        y = (self.extent - points[:, 1]) * scale
        return np.stack([x, y], axis=1).round().astype(int)

    def window_caption(self, scene: GanFrame) -> str:
        return f"{self.caption}: {scene.label}"

    def draw(self, scene: GanFrame) -> object:
        pygame = import_pygame()
        self.surface.fill(BACKGROUND)
        radius = max(MIN_MODE_RADIUS, round(QUALITY_STDS * self.mixture.std * self.width / (2 * self.extent)))
        for x, y in self.to_pixels(self.mixture.means):
            pygame.draw.circle(self.surface, MODE_COLOUR, (int(x), int(y)), radius)
        inside = (np.abs(scene.samples) < self.extent).all(axis=1)
        for x, y in self.to_pixels(scene.samples[inside]):
            self.surface.fill(SAMPLE_COLOUR, (int(x), int(y), 2, 2))
        distance = mean_distance_to_modes(scene.samples, self.mixture)
        lines = [(self.font, scene.label), (self.small_font, f"step {scene.step}   distance to modes {distance:.3f}")]
        top = 6
        for font, text in lines:
            self.surface.blit(font.render(text, True, TEXT_COLOUR), (8, top))
            top += font.get_linesize()
        return self.surface


def frames(snapshots: Snapshots) -> Iterator[GanFrame]:
    """The snapshots as frames, in training order."""
    for step, samples in zip(snapshots.steps, snapshots.samples, strict=True):
        yield GanFrame(samples, int(step), snapshots.label)


def play(snapshots: Snapshots, fps: float = 10.0, seconds: float | None = None) -> int:
    """Replay ``snapshots`` in a window at ``fps`` frames a second, then keep the last one on screen until the
    window is closed (or Esc / Q is pressed), so the person watching decides when they have seen the result;
    ``seconds`` (None: no limit) closes it that long after it opened, replay or not. Returns the frames shown."""
    pygame = import_pygame()
    renderer = GanSamplesRenderer(snapshots.mixture, human=True)
    deadline = None if seconds is None else time.monotonic() + seconds

    def should_close() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return True
        # every event taken off the queue, not only these two: held for minutes, a window would otherwise fill
        # SDL's queue with mouse motion until a close was dropped
        return any(
            e.type == pygame.QUIT or (e.type == pygame.KEYDOWN and e.key in (pygame.K_ESCAPE, pygame.K_q))
            for e in pygame.event.get()
        )

    shown = 0
    try:
        last = None
        for last in frames(snapshots):
            renderer.show(last, fps)
            shown += 1
            if should_close():
                return shown
        while last is not None and not should_close():
            renderer.show(last, HOLD_FPS)  # redrawn, so the window stays responsive and repaints when uncovered
        return shown
    finally:
        renderer.close()


def record_gif(snapshots: Snapshots, path: str | Path, fps: float = 10.0, size: int = 480) -> int:
    """Render ``snapshots`` headless and write them as a looping GIF at ``path`` (atomically). Returns the frames."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"cannot record to {path}: the file must end in .gif")
    renderer = GanSamplesRenderer(snapshots.mixture, size=size)
    images = [Image.fromarray(renderer.rgb_array(frame)) for frame in frames(snapshots)]
    if not images:
        raise ValueError("no snapshots to record")
    first, *rest = images
    options = {"format": "GIF", "save_all": True, "append_images": rest, "duration": round(1000 / fps), "loop": 0}
    atomic_write(path, lambda f: first.save(f, **options))
    return len(images)
