"""The ski env's pygame renderer, its pixel observation and the play script (headless: see conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the trendgym/ ids)
from envs.ski import rendering
from envs.ski.heuristic import heuristic
from envs.ski.play import action_from_keys
from envs.ski.rendering import Scene, SkiRenderer

REPO = Path(__file__).resolve().parents[1]
COURSE_SEED = 3


def count_colour(frame: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(frame == np.array(colour, dtype=np.uint8), axis=-1).sum())


@pytest.fixture
def rgb_env():
    env = gym.make("trendgym/Ski-v0", render_mode="rgb_array", course_seed=COURSE_SEED)
    yield env
    env.close()


def test_rgb_array_frame_is_a_picture(rgb_env):
    rgb_env.reset(seed=0)
    frame = rgb_env.render()
    assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    colours = np.unique(frame.reshape(-1, 3), axis=0)
    assert len(colours) > 20  # snow, forest, flags, net, skier, head-up text
    assert count_colour(frame, rendering.SNOW_PISTE) > 0.2 * 400 * 600  # mostly a ski slope
    assert count_colour(frame, rendering.JACKET) > 0  # the skier is in view


def test_frames_follow_the_skier(rgb_env):
    obs, _ = rgb_env.reset(seed=0)
    first = rgb_env.render()
    for _ in range(5):
        obs, *_ = rgb_env.step(heuristic(obs))
    assert np.any(rgb_env.render() != first)


def test_frames_are_deterministic():
    frames = []
    for _ in range(2):
        env = gym.make("trendgym/Ski-v0", render_mode="rgb_array")
        obs, _ = env.reset(seed=11)
        for _ in range(20):
            obs, *_ = env.step(heuristic(obs))
        frames.append(env.render())
        env.close()
    np.testing.assert_array_equal(frames[0], frames[1])


def test_passed_gate_turns_green(rgb_env):
    obs, info = rgb_env.reset(seed=0)
    assert count_colour(rgb_env.render(), rendering.FLAG_PASSED) == 0
    while info["gates_passed"] == 0:
        obs, _, terminated, truncated, info = rgb_env.step(heuristic(obs))
        assert not (terminated or truncated)
    assert count_colour(rgb_env.render(), rendering.FLAG_PASSED) > 20  # both flags, just above the skier


def test_missed_gate_is_crossed_out_and_a_fallen_skier_changes_colour(rgb_env):
    rgb_env.reset(seed=0)
    scene = rgb_env.unwrapped.scene()
    renderer = SkiRenderer()
    near_gate = dataclasses.replace(scene, y=float(scene.course.gate_y[0]) - 5.0)
    assert count_colour(renderer.rgb_array(near_gate), rendering.MISS_CROSS) == 0
    missed = dataclasses.replace(near_gate, gate_status=(-1, *scene.gate_status[1:]))
    assert count_colour(renderer.rgb_array(missed), rendering.MISS_CROSS) > 0
    down = renderer.rgb_array(dataclasses.replace(scene, down=1.0))
    assert count_colour(down, rendering.JACKET_DOWN) > 0 and count_colour(down, rendering.JACKET) == 0
    renderer.close()


def test_finish_line_in_view(rgb_env):
    rgb_env.reset(seed=0)
    scene = rgb_env.unwrapped.scene()
    near_finish = dataclasses.replace(scene, y=scene.course.length - 5.0)
    frame = SkiRenderer(hud=False).rgb_array(near_finish)
    assert count_colour(frame, rendering.CHEQUER[0]) > 100 and count_colour(frame, rendering.CHEQUER[1]) > 100


def test_scene_is_plain_data(rgb_env):
    rgb_env.reset(seed=0)
    scene = rgb_env.unwrapped.scene()
    assert isinstance(scene, Scene)
    restored = pickle.loads(pickle.dumps(scene))
    assert restored.x == scene.x and restored.trail == scene.trail and restored.gate_status == scene.gate_status
    assert scene.n_gates == len(scene.gate_status) == 8


def test_pixel_observation_never_opens_a_window():
    import pygame

    pygame.display.quit()
    env = gym.make("trendgym/Ski-v0", obs_type="pixels")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    changed = False
    for _ in range(5):
        next_obs, *_ = env.step(2)  # glide: the slope carries the skier down, the view scrolls
        assert env.observation_space.contains(next_obs)
        changed |= bool(np.any(next_obs != obs))
        obs = next_obs
    assert changed
    assert not pygame.display.get_init()
    env.close()
    env.close()


def test_pixel_env_passes_both_checkers():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("trendgym/Ski-v0", obs_type="pixels")
    check_env(env.unwrapped)  # also builds the env in each render mode, human included (dummy driver)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_rgb_array_passes_render_checks():
    env = gym.make("trendgym/Ski-v0", render_mode="rgb_array")
    check_env(env.unwrapped)
    env.close()


def test_human_mode_and_close_twice():
    env = gym.make("trendgym/Ski-v0", render_mode="human")
    env.reset(seed=0)
    env.step(2)
    assert env.render() is None
    env.close()
    env.close()
    renderer = SkiRenderer(84, 84, hud=False)
    renderer.close()
    renderer.close()


def test_show_needs_a_human_renderer(rgb_env):
    rgb_env.reset(seed=0)
    with pytest.raises(RuntimeError, match="human=True"):
        SkiRenderer().show(rgb_env.unwrapped.scene(), 10)


def test_missing_pygame_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(DependencyNotInstalled, match="pip install pygame"):
        SkiRenderer()


def test_keys_to_action():
    env = gym.make("trendgym/Ski-v0")
    mapping = env.unwrapped.get_keys_to_action()
    import pygame

    left, right, down, shift = pygame.K_LEFT, pygame.K_RIGHT, pygame.K_DOWN, pygame.K_LSHIFT
    assert action_from_keys([], mapping) == 2
    assert action_from_keys([left], mapping) == 1
    assert action_from_keys([shift, left], mapping) == 0
    assert action_from_keys([right, shift], mapping) == 4
    assert action_from_keys([right, pygame.K_RSHIFT], mapping) == 4
    assert action_from_keys([down], mapping) == 5
    assert action_from_keys([shift], mapping) == 2
    assert action_from_keys([left, pygame.K_a], mapping) == 1  # an unrelated key does not stop the turn
    env.close()


def test_play_loop(monkeypatch, capsys):
    """A whole session, keys posted instead of typed: start, glide to the end, the score is printed."""
    import pygame

    from envs.ski import play as play_module
    from envs.ski.ski_env import SkiEnv

    monkeypatch.setattr(play_module, "check_display", pygame.display.init)  # the dummy driver stands in
    monkeypatch.setitem(SkiEnv.metadata, "render_fps", 0)  # no waiting for the clock
    wait = play_module._wait_for_key

    def press_space(lines: list[str], keys: tuple[int, ...]) -> str:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE))
        return wait(lines, keys)

    monkeypatch.setattr(play_module, "_wait_for_key", press_space)
    scores = play_module.play(seed=0, course_seed=COURSE_SEED, episodes=1)
    assert len(scores) == 1 and scores[0].n_gates == 8
    assert capsys.readouterr().out.startswith("run 1: return ")


def run_script(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy", **env_vars}
    return subprocess.run(
        [sys.executable, "scripts/play.py", *args], cwd=REPO, env=environment, capture_output=True, text=True
    )


def test_play_script_help():
    result = run_script("--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "--course-seed" in result.stdout


def test_play_script_without_a_display_says_so_in_one_line():
    result = run_script("--episodes", "1")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "display" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_play_script_bad_slope():
    result = run_script("--slope", "red")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "play.py: error: unknown slope 'red'; choose one of green, blue, black"
    ]
