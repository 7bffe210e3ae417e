"""agents/recording.py and scripts/watch.py: headless recordings with the promised number of frames, written
atomically, the fallback when there is no screen, and one clear line for every user mistake."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import pytest
from helpers import load_script, run_main
from PIL import Image

import envs  # noqa: F401
from agents import recording
from agents.baselines import HeuristicSkier
from agents.evaluation import evaluate
from agents.recording import (
    RecordingError,
    display_available,
    fallback_video_path,
    frames_for,
    play_episodes,
    record_episodes,
)
from agents.runs import load_agent, new_run_dir, write_config
from agents.seeds import TEST_SEED

SKI = "trendgym/Ski-v0"
REPO = Path(__file__).resolve().parents[1]


def gif_frames(path: Path) -> int:
    with Image.open(path) as image:
        return image.n_frames


@pytest.fixture(scope="module")
def watch_script():
    return load_script("watch")


@pytest.fixture()
def skier():
    return HeuristicSkier(gym.make(SKI).action_space)


# ---- the library -----------------------------------------------------------------------------------------------


def test_a_gif_has_one_frame_per_step_plus_the_first_and_the_same_episode_as_evaluate(skier, tmp_path):
    rec = record_episodes(skier, SKI, {}, [TEST_SEED], tmp_path / "run.gif")
    steps = rec.episodes[0].length
    assert rec.frames == steps + 1 == gif_frames(rec.path)
    assert rec.episodes == evaluate(skier, SKI, {}, [TEST_SEED]).episodes  # rendering changes nothing
    frames = iio.imread(rec.path, index=None)
    assert frames.shape[1:3] == (400, 600)
    with Image.open(rec.path) as image:
        assert image.info["duration"] == 100  # the env's 10 fps: real time
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]  # no temporary file left behind


def test_frame_skip_and_scale_give_the_documented_frames_and_size(skier, tmp_path):
    rec = record_episodes(skier, SKI, {}, [TEST_SEED, TEST_SEED + 1], tmp_path / "run.mp4", frame_skip=3, scale=0.5)
    assert rec.frames == sum(frames_for(e.length, 3) for e in rec.episodes)
    assert rec.fps == pytest.approx(10 / 3)
    frames = iio.imread(rec.path, index=None)
    assert frames.shape == (rec.frames, 200, 300, 3)


def test_a_failed_recording_leaves_the_old_file_untouched(tmp_path):
    class Crash:
        calls = 0

        def predict(self, obs, deterministic=True):
            self.calls += 1
            if self.calls > 5:
                raise RuntimeError("policy failed")
            return 2, None

    target = tmp_path / "run.gif"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="policy failed"):
        record_episodes(Crash(), SKI, {}, [TEST_SEED], target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"path": "x.avi"}, "gif or .mp4"), ({"frame_skip": 0}, "frame skip"), ({"scale": 0.0}, "scale")],
)
def test_bad_recording_options_are_refused_before_anything_runs(skier, tmp_path, kwargs, message):
    options = {"path": "x.gif", **kwargs}
    options["path"] = tmp_path / options["path"]
    with pytest.raises(RecordingError, match=message):
        record_episodes(skier, SKI, {}, [TEST_SEED], **options)
    assert list(tmp_path.iterdir()) == []


def test_no_display_is_detected_from_the_environment(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert not display_available()
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert not display_available()
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_available()


def test_the_window_plays_the_same_episodes_as_evaluate(skier):
    # Under the dummy driver pygame "opens" the window without a screen, so the human path runs for real.
    episodes, n_gates = play_episodes(skier, SKI, {}, [TEST_SEED], fps=1000)
    assert n_gates == 8
    assert episodes == evaluate(skier, SKI, {}, [TEST_SEED]).episodes


# ---- the script ------------------------------------------------------------------------------------------------


def test_watch_record_gif_writes_one_frame_per_step_plus_one(trained_run, tmp_path):
    """The command ``make run`` uses, in a real process, with no display."""
    out = tmp_path / "out.gif"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    command = [sys.executable, "scripts/watch.py", str(trained_run), "--record", str(out), "--episodes", "1"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The steps as the script itself reports them: an evaluation in this process could run other env code, if
    # the env changed on disk since this process imported it.
    steps = int(re.search(r"episode 1: seed \d+, return +[-\d.]+, (\d+) steps", done.stdout)[1])
    assert gif_frames(out) == steps + 1
    assert "episode 1:" in done.stdout and "mean return" in done.stdout and f"/{8}" in done.stdout


def test_watch_without_a_display_records_into_the_run_folder(trained_run, watch_script, capsys):
    code, out, err = run_main(watch_script, [str(trained_run), "--frame-skip", "5"], capsys)
    assert code == 0, err
    path = fallback_video_path(trained_run, TEST_SEED)
    assert f"recording to {path}" in out
    steps = evaluate(load_agent(trained_run), SKI, {"slope": "green"}, [TEST_SEED]).episodes[0].length
    assert gif_frames(path) == frames_for(steps, 5)


def test_watch_falls_back_to_recording_when_pygame_cannot_open_a_window(
    trained_run, watch_script, capsys, monkeypatch, tmp_path
):
    def no_window(*args, **kwargs):
        raise recording.DisplayUnavailable("pygame cannot open a window: no screen")

    monkeypatch.setattr(watch_script, "display_available", lambda: True)
    monkeypatch.setattr(watch_script, "play_episodes", no_window)
    code, _, err = run_main(watch_script, [str(trained_run), "--slope", "blue", "--frame-skip", "10"], capsys)
    assert code == 0, err
    assert "recording instead" in err
    assert fallback_video_path(trained_run, TEST_SEED, "blue").is_file()


def test_help_has_examples(watch_script, capsys):
    code, out, _ = run_main(watch_script, ["--help"], capsys)
    assert code == 0 and "Examples:" in out and "--record" in out


@pytest.mark.parametrize(
    ("case", "expected_code", "mentions"),
    [
        ("missing model", 1, "does not exist"),
        ("mistyped suffix", 1, "model.zp does not exist"),
        ("corrupt model", 1, "not a model zip"),
        ("unknown env", 1, "unknown env"),
        ("no runs", 1, "no runs"),
        ("bad slope", 2, "--slope"),
        ("bad record extension", 2, ".gif or .mp4"),
        ("bad scale", 2, "scale"),
        ("unknown --env", 2, "unknown env"),
    ],
)
def test_watch_bad_input_is_one_line(
    case, expected_code, mentions, trained_run, watch_script, capsys, tmp_path, monkeypatch
):
    def bad_run(env_id: str, corrupt: bool) -> str:
        run_dir = new_run_dir("ppo", SKI, root=tmp_path)
        write_config(run_dir, {"algo": "ppo", "env": env_id, "env_kwargs": {}})
        model = run_dir / "model.zip"
        if corrupt:
            model.write_text("this is not a zip")
        else:
            model.write_bytes((trained_run / "model.zip").read_bytes())
        return str(run_dir)

    argv = {
        "missing model": lambda: [str(tmp_path / "nowhere.zip")],
        "mistyped suffix": lambda: [str(trained_run / "model.zp")],  # not model.zip: a typo, said so
        "corrupt model": lambda: [bad_run(SKI, True)],
        "unknown env": lambda: [bad_run("trendgym/Nope-v0", False)],
        "no runs": lambda: [],
        "bad slope": lambda: [str(trained_run), "--slope", "red"],
        "bad record extension": lambda: [str(trained_run), "--record", str(tmp_path / "out.avi")],
        "unknown --env": lambda: [str(trained_run), "--env", "trendgym/Nope-v0"],
        "bad scale": lambda: [str(trained_run), "--record", str(tmp_path / "out.gif"), "--scale", "9"],
    }[case]()
    if case == "no runs":
        monkeypatch.chdir(tmp_path)
    code, _, err = run_main(watch_script, argv, capsys)
    assert code == expected_code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert mentions in err
    assert not (tmp_path / "out.gif").exists() and not (tmp_path / "out.avi").exists()
