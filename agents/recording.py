"""Show a policy skiing: live in a pygame window, or as a GIF or MP4 file when there is no screen.

Two ways to watch, one episode loop (:func:`agents.evaluation.run_episode`) under both, so what a person sees
is exactly what ``evaluate.py`` scores:

* :func:`play_episodes` uses ``render_mode="human"``: the env draws every step into a window and keeps
  ``render_fps`` frames a second. Closing the window (or Esc / Q) stops the playback.
* :func:`record_episodes` uses ``render_mode="rgb_array"`` and writes the frames to a file. A GIF goes through
  Pillow, each frame reduced to its own 256-colour palette without dithering (the slope is flat colour, so
  dithering only adds noise that compresses badly); an MP4 goes through imageio's ffmpeg plugin and is
  streamed, so its length costs no memory.

Size of a GIF, about 11 KB a frame at 600 x 400 (heuristic skier, course seed 1 000 000): a 29 s green run
(289 frames) is 3.3 MB, a 52 s black run (524 frames) 5.3 MB. ``frame_skip=2`` halves frames and size (1.85 and
3.0 MB; playback stays real time, each kept frame shows twice as long); ``scale=0.5`` saves only a quarter,
since the scrolling slope changes every pixel anyway. An MP4 of the same run is about 7 times smaller (0.5 MB).
An episode of ``n`` steps gives ``ceil((n + 1) / frame_skip)`` frames: the first frame after reset, then
every ``frame_skip``-th frame after a step. (Pillow merges two identical consecutive GIF frames into one longer
frame; the ski view's clock changes every step, so its frames never are.) A GIF is assembled in memory at one
byte a pixel (240 KB a frame at 600 x 400); record many or long episodes as MP4, which is streamed to ffmpeg.

Every file is written to a temporary name beside the target and renamed over it when complete, so a crash or
Ctrl-C never leaves half a video under the final name.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.evaluation import EpisodeResult, Policy, gates_per_course, make_env, resets_with_seed, run_episode

VIDEO_FORMATS = (".gif", ".mp4")
END_PAUSE = 1.0  # s the window holds the last frame of an episode, so a person sees how it ended
MP4_BLOCK = 2  # libx264's yuv420p needs even sides; a frame is padded to a multiple of this, not 16

EpisodeCallback = Callable[[int, EpisodeResult], None]  # (episode index, result), as each episode ends


class RecordingError(ValueError):
    """A recording that cannot be made: an unsupported file type, or a bad frame skip, scale or fps."""


class DisplayUnavailable(RuntimeError):
    """pygame could not open a window (no display, no video driver)."""


@dataclass
class Recording:
    """What :func:`record_episodes` wrote: the file, each episode's results and the number of frames."""

    path: Path
    episodes: list[EpisodeResult]
    frames: int
    fps: float  # frames per second of playback in the file (the env's ``render_fps`` / ``frame_skip``)
    n_gates: int | None = None


def display_available() -> bool:
    """Whether a pygame window can be shown: not under SDL's headless drivers, and on Linux only with an X11 or
    Wayland display. (pygame "opens" a window under the dummy driver without complaint, so asking the
    environment is the only way to know nobody would see it.)"""
    if os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def check_video_path(path: str | Path) -> Path:
    """``path`` as a Path if it names a format we write (``.gif``, ``.mp4``), else :class:`RecordingError`."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise RecordingError(f"cannot record to {path}: the file must end in {' or '.join(VIDEO_FORMATS)}")
    return path


def fallback_video_path(run_dir: Path, seed: int, slope: str | None = None) -> Path:
    """Where ``watch.py`` records when there is no screen and no ``--record``: in the run's ``videos/``, named by
    course seed (and slope if overridden), so the same command writes the same file again."""
    suffix = f"_{slope}" if slope else ""
    return Path(run_dir) / "videos" / f"watch_seed{seed}{suffix}.gif"


def frames_for(steps: int, frame_skip: int = 1) -> int:
    """How many frames an episode of ``steps`` steps gives: reset's frame plus every ``frame_skip``-th."""
    return math.ceil((steps + 1) / frame_skip)


# ---- writing video files ---------------------------------------------------------------------------------------


class _VideoFile:
    """Frames in, a complete file out: written under a temporary name and renamed over ``path`` on ``commit``."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self.frames = path, fps, 0
        self.tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._gif: list[Any] = []
        self._mp4: Any = None

    def append(self, frame: np.ndarray) -> None:
        if self.path.suffix.lower() == ".gif":
            from PIL import Image

            # Quantising now keeps 1 byte a pixel in memory instead of 3; each frame gets its own palette.
            image = Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            self._gif.append(image)
        else:
            if self._mp4 is None:
                import imageio.v2 as imageio

                self._mp4 = imageio.get_writer(
                    self.tmp, format="FFMPEG", fps=self.fps, macro_block_size=MP4_BLOCK, ffmpeg_log_level="error"
                )
            self._mp4.append_data(frame)
        self.frames += 1

    def commit(self) -> None:
        """Finish the file and move it into place."""
        if self.frames == 0:
            raise RecordingError(f"no frames to write to {self.path}")
        if self._gif:
            duration = round(1000 / self.fps)  # ms a frame; GIF keeps hundredths of a second
            first, *rest = self._gif
            first.save(self.tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0)
        if self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file; the target keeps whatever it held before."""
        if self._mp4 is not None:
            with contextlib.suppress(Exception):  # already failing; the temporary file goes anyway
                self._mp4.close()
            self._mp4 = None
        self.tmp.unlink(missing_ok=True)


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    """``frame`` scaled by ``scale``, sides rounded to even numbers (what MP4 encoders accept)."""
    if scale == 1.0:
        return frame
    from PIL import Image

    height, width = frame.shape[:2]
    size = (max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))


class _FrameGrabber:
    """The per-step hook of :func:`run_episode` that renders every ``frame_skip``-th frame into the file."""

    def __init__(self, video: _VideoFile, frame_skip: int, scale: float) -> None:
        self.video, self.frame_skip, self.scale = video, frame_skip, scale
        self.index = 0  # frame index within the current episode

    def new_episode(self) -> None:
        self.index = 0

    def __call__(self, env: gym.Env) -> bool:
        if self.index % self.frame_skip == 0:
            self.video.append(_resize(env.render(), self.scale))
        self.index += 1
        return True


def _check_recording_options(path: str | Path, frame_skip: int, scale: float, fps: float | None) -> Path:
    if not (isinstance(frame_skip, int) and frame_skip >= 1):
        raise RecordingError(f"frame skip must be a whole number >= 1, got {frame_skip!r}")
    if not 0.0 < scale <= 4.0:
        raise RecordingError(f"scale must be in (0, 4], got {scale!r}")
    if fps is not None and not 0.0 < fps <= 240.0:
        raise RecordingError(f"fps must be in (0, 240], got {fps!r}")
    return check_video_path(path)


def record_episodes(
    policy: Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    seeds: Sequence[int],
    path: str | Path,
    deterministic: bool = True,
    fps: float | None = None,
    frame_skip: int = 1,
    scale: float = 1.0,
    on_episode: EpisodeCallback | None = None,
) -> Recording:
    """Play one episode per seed headless (``render_mode="rgb_array"``) and write them, one after the other, to
    ``path`` (``.gif`` or ``.mp4``). An env whose episodes make one search plays one search, started by the
    first seed (:func:`agents.evaluation.resets_with_seed`), so the video shows its history growing.

    ``fps`` is the env's ``render_fps`` by default (real time); the file plays at ``fps / frame_skip`` frames a
    second, so skipping frames does not speed the video up.
    """
    path = _check_recording_options(path, frame_skip, scale, fps)
    env = make_env(env_id, env_kwargs, render_mode="rgb_array")
    fps = float(fps or env.metadata.get("render_fps") or 30)
    video = _VideoFile(path, fps / frame_skip)
    grabber = _FrameGrabber(video, frame_skip, scale)
    episodes: list[EpisodeResult] = []
    try:
        for i, seed in enumerate(seeds):
            grabber.new_episode()
            episodes.append(run_episode(policy, env, int(seed), deterministic, grabber, resets_with_seed(env, i)))
            if on_episode is not None:
                on_episode(i, episodes[-1])
        n_gates = gates_per_course(env)
        video.commit()
    except BaseException:
        video.abort()
        raise
    finally:
        env.close()
    return Recording(path, episodes, video.frames, video.fps, n_gates)


# ---- a live window ---------------------------------------------------------------------------------------------


def _window_closed() -> bool:
    """Whether the person closed the window or pressed Esc or Q since the last look."""
    import pygame

    if not pygame.display.get_init():
        return False
    for event in pygame.event.get((pygame.QUIT, pygame.KEYDOWN)):
        if event.type == pygame.QUIT or event.key in (pygame.K_ESCAPE, pygame.K_q):
            return True
    return False


def _window_open(env: gym.Env) -> bool:
    """The per-step hook of a live playback: go on while the person has not closed the window."""
    return not _window_closed()


def _open_window(env: gym.Env, seed: int) -> None:
    """Reset once to open the window (human mode draws on reset), turning pygame's failure into ours."""
    import pygame

    try:
        env.reset(seed=seed)
    except pygame.error as e:
        raise DisplayUnavailable(f"pygame cannot open a window: {e}") from None


def play_episodes(
    policy: Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    seeds: Sequence[int],
    deterministic: bool = True,
    fps: float | None = None,
    on_episode: EpisodeCallback | None = None,
) -> tuple[list[EpisodeResult], int | None]:
    """Play one episode per seed in a pygame window at ``fps`` (the env's ``render_fps`` by default); an env whose
    episodes make one search plays one search, as :func:`record_episodes` does.

    Returns the episodes played (fewer than ``seeds`` if the window was closed) and the gates per course.
    Raises :class:`DisplayUnavailable` if no window can be opened; the caller can record instead.
    """
    import pygame

    env = make_env(env_id, env_kwargs, render_mode="human")
    if fps is not None:  # a copy on the instance: the class's metadata is shared by every env
        env.unwrapped.metadata = {**env.unwrapped.metadata, "render_fps": fps}
    episodes: list[EpisodeResult] = []
    try:
        _open_window(env, int(seeds[0]))
        for i, seed in enumerate(seeds):
            episodes.append(run_episode(policy, env, int(seed), deterministic, _window_open, resets_with_seed(env, i)))
            if on_episode is not None:
                on_episode(i, episodes[-1])
            if episodes[-1].interrupted:
                break
            pygame.time.wait(round(1000 * END_PAUSE))
        return episodes, gates_per_course(env)
    finally:
        env.close()
