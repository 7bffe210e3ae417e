"""Ski a course yourself, in a pygame window, with the arrow keys.

A person plays the very env an agent trains on (``gym.make("trendgym/Ski-v0", render_mode="human")``,
driven through its ``get_keys_to_action()``), so the score printed after each run is the score an agent
would get for the same skiing: a person's run is a baseline to compare agents with.

Keys: left/right turn, with shift a hard turn, down brakes (snowplough), nothing pressed glides. R skis the
same course again from the top; after a run, Enter or Space skis the next course; Esc or closing the window
quits.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.error import DependencyNotInstalled

import envs  # noqa: F401  (registers the trendgym/ ids)
from envs.rendering import NO_PYGAME
from envs.ski.rendering import draw_banner

GLIDE = 2  # the action when no key (or no known combination of keys) is pressed
HEADLESS_DRIVERS = ("dummy", "offscreen")  # SDL video drivers that draw nowhere a person could see
PROMPT_FPS = 30  # frames a second while waiting for a key between runs
PROMPT_CENTRE = 0.72  # share of the window height: below the skier and the renderer's FINISH banner
MAX_SEED = 2**31 - 1

QUIT, RESTART, DONE, NEXT = "quit", "restart", "done", "next"


class NoDisplayError(gym.error.Error):
    """There is no screen to open the window on (a server, a container, or ``SDL_VIDEODRIVER=dummy``)."""


@dataclass(frozen=True)
class RunScore:
    """The score of one run, as an agent's evaluation would report it."""

    episode_return: float
    gates_passed: int
    gates_missed: int
    n_gates: int
    falls: int
    tree_hits: int
    time: float  # s
    finished: bool
    clean: bool

    def line(self, run: int) -> str:
        ending = "clean run" if self.clean else "finished" if self.finished else "time out"
        return (
            f"run {run}: return {self.episode_return:.1f} | gates {self.gates_passed}/{self.n_gates} passed, "
            f"{self.gates_missed} missed | falls {self.falls} | tree hits {self.tree_hits} | "
            f"time {self.time:.1f} s | {ending}"
        )


def check_display() -> None:
    """Fail early, with one clear sentence, where no window can be shown."""
    try:
        import pygame
    except ImportError as e:
        raise DependencyNotInstalled(NO_PYGAME) from e
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver.lower() in HEADLESS_DRIVERS:
        raise NoDisplayError(f"no display: SDL_VIDEODRIVER={driver} shows nothing; unset it to play in a window")
    try:
        pygame.display.init()
    except pygame.error as e:
        raise NoDisplayError(f"no display available ({e}); playing needs a screen") from e
    if pygame.display.get_driver() in HEADLESS_DRIVERS:  # SDL falls back to these when there is no screen
        pygame.display.quit()
        raise NoDisplayError("no display available (no X11 or Wayland session); playing needs a screen")


def action_from_keys(pressed: Iterable[int], keys_to_action: dict[tuple[int, ...], int], default: int = GLIDE) -> int:
    """The action of the keys held down: their exact combination if it has one, otherwise the largest
    combination among them (left + down turns left), otherwise ``default``."""
    held = frozenset(pressed)
    best, best_size = default, 0
    for keys, action in keys_to_action.items():
        combination = frozenset(keys)
        if combination == held:
            return action
        if combination <= held and len(combination) > best_size:
            best, best_size = action, len(combination)
    return best


def _held_keys(pygame: Any, watched: set[int]) -> set[int]:
    """The watched keys held down now (the env's key map lists both shift keys)."""
    state = pygame.key.get_pressed()
    return {key for key in watched if state[key]}


def _ski_one_run(env: gym.Env, keys_to_action: dict[tuple[int, ...], int]) -> tuple[str, RunScore | None]:
    """Step the env at its own pace (the human renderer ticks the clock) until the run ends or a key says stop."""
    import pygame

    watched = {key for keys in keys_to_action for key in keys}
    total = 0.0
    while True:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                return QUIT, None
            if event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                return RESTART, None
        action = action_from_keys(_held_keys(pygame, watched), keys_to_action)
        _, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        if terminated or truncated:
            n_gates = env.unwrapped.slope.n_gates
            keys = ("gates_passed", "gates_missed", "falls", "tree_hits", "time", "finished", "clean")
            return DONE, RunScore(total, n_gates=n_gates, **{k: info[k] for k in keys})


def _wait_for_key(lines: list[str], start_keys: tuple[int, ...]) -> str:
    """Show ``lines`` over the last frame until a start key (NEXT), R (RESTART), or Esc / close (QUIT)."""
    import pygame

    screen = pygame.display.get_surface()
    draw_banner(screen, lines, centre=PROMPT_CENTRE)
    clock = pygame.time.Clock()
    while True:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                return QUIT
            if event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                return RESTART
            if event.type == pygame.KEYDOWN and event.key in start_keys:
                return NEXT
        pygame.display.flip()
        clock.tick(PROMPT_FPS)


def play(
    slope: str = "green",
    seed: int | None = None,
    course_seed: int | None = None,
    episodes: int | None = None,
) -> list[RunScore]:
    """Let a person ski ``episodes`` runs (``None``: until Esc) and return their scores.

    ``seed`` makes the sequence of courses and starts reproducible (run ``k`` resets with ``seed + k``);
    ``course_seed`` skis one fixed course every run, the way an agent is evaluated on it. Raises
    :class:`NoDisplayError` where no window can be opened.
    """
    check_display()
    import pygame

    env = gym.make("trendgym/Ski-v0", render_mode="human", slope=slope, course_seed=course_seed)
    try:
        keys_to_action = env.unwrapped.get_keys_to_action()
        arrows = (pygame.K_LEFT, pygame.K_RIGHT, pygame.K_DOWN, pygame.K_UP, pygame.K_SPACE, pygame.K_RETURN)
        base = random.randrange(MAX_SEED) if seed is None else seed
        run_seed, scores = base, []
        while episodes is None or len(scores) < episodes:
            try:
                env.reset(seed=run_seed)  # draws the first frame, so opens the window
            except pygame.error as e:
                raise NoDisplayError(f"cannot open a window ({e})") from e
            title = f"{slope} slope, {env.unwrapped.slope.n_gates} gates"
            start = _wait_for_key([title, "arrows: turn (shift: hard), down: brake", "press an arrow to start"], arrows)
            if start == QUIT:
                break
            outcome, score = (RESTART, None) if start == RESTART else _ski_one_run(env, keys_to_action)
            if outcome == QUIT:
                break
            if outcome == RESTART:  # the same course and start again, not counted
                continue
            scores.append(score)
            print(score.line(len(scores)), flush=True)
            if episodes is not None and len(scores) >= episodes:
                break
            ending = "clean run!" if score.clean else "finished" if score.finished else "time out"
            after = _wait_for_key(
                [f"{ending}  return {score.episode_return:.1f}", "R: ski it again   Enter: next course   Esc: quit"],
                (pygame.K_RETURN, pygame.K_SPACE, pygame.K_KP_ENTER),
            )
            if after == QUIT:
                break
            if after == NEXT:
                run_seed += 1
    finally:
        env.close()
    return scores
