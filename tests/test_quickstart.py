"""The main job end to end on a tiny budget: a run folder, a judgement beside the baselines, a GIF, and next steps
that run as printed from a shell that never activated the virtual environment."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import SCRIPTS, load_script, run_main
from PIL import Image


def plain_shell_env() -> dict[str, str]:
    """The environment of a new terminal: no virtual environment on PATH, none announced."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    return {**env, "PATH": path, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def printed_steps(out: str) -> list[str]:
    """The command lines under 'next steps': each is to be pasted into a shell as it stands."""
    lines = out.split("next steps (each line runs as printed):\n", 1)[1].splitlines()
    return [line.strip() for line in lines if line.startswith("  ")]


def test_quickstart_trains_judges_and_records(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    code, out, err = run_main(load_script("quickstart"), ["--timesteps", "2048", "--episodes", "2"], capsys)
    assert code == 0, err
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    assert (run / "model.zip").exists() and (run / "config.yml").exists()
    with Image.open(run / "episode.gif") as gif:
        assert gif.n_frames > 10
    assert "heuristic" in out and "random" in out and "of the 80% target" in out
    # the model judged is named, with the step it is from, and it is the one watch.py loads
    assert "judged:       model.zip from step 4,096, the final model; watch.py and evaluate.py load it too" in out
    assert f"scripts/watch.py {run.relative_to(tmp_path)}" in out


def serves_tensorboard(line: str, cwd: Path, env: dict[str, str]) -> bool:
    """Start the printed TensorBoard line and see it serve (it runs until stopped, so stop it then)."""
    process = subprocess.Popen(
        line, shell=True, cwd=cwd, env=env, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, start_new_session=True
    )  # a session of its own: the shell and the TensorBoard it starts are stopped together
    try:
        deadline = time.monotonic() + 90
        os.set_blocking(process.stdout.fileno(), False)
        seen = b""
        while time.monotonic() < deadline and process.poll() is None:
            seen += process.stdout.read() or b""
            if b"http://" in seen:
                return True
            time.sleep(0.2)
        seen += process.stdout.read() or b""
        return b"http://" in seen
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_printed_next_steps_run_verbatim_in_a_plain_shell(tmp_path):
    """Each next-step line of the main job, pasted into a shell where .venv is not activated, works."""
    env = plain_shell_env()
    main_job = [sys.executable, str(SCRIPTS / "quickstart.py"), "--timesteps", "4096", "--episodes", "3"]
    done = subprocess.run(main_job, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = printed_steps(done.stdout)
    assert [s.split("#")[0].split()[1].rsplit("/", 1)[-1] for s in steps] == [
        "--logdir",
        "watch.py",
        "evaluate.py",
        "train.py",
    ]
    tensorboard, *others = steps
    assert serves_tensorboard(tensorboard, tmp_path, env), tensorboard
    for line in others:
        result = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    config = yaml.safe_load((tmp_path / "runs/ppo/Ski-v0_1/config.yml").read_text())
    assert config["n_timesteps"] == 8200  # "train it on, to twice the steps"


def test_quickstart_refuses_a_bad_slope_in_one_line(capsys):
    code, _, err = run_main(load_script("quickstart"), ["--slope", "red"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--slope" in err


@pytest.mark.parametrize("on_path", [True, False])
def test_commands_are_shown_as_they_run_from_a_plain_shell(monkeypatch, tmp_path, on_path):
    from agents.cli import command, shown

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) if on_path else "/usr/bin:/bin")
    program, script, rest = shown("python scripts/watch.py runs/x").split(" ", 2)
    assert Path(script).resolve() == SCRIPTS / "watch.py" and rest == "runs/x"
    if on_path:  # an activated environment: the bare names are this environment's
        assert program == command("python") == "python" and command("tensorboard") == "tensorboard"
    else:  # a plain shell: the paths into this environment
        assert Path(program) == Path(sys.executable)
        assert Path(command("tensorboard")).is_file() and command("tensorboard") != "tensorboard"
    assert shown("see mypython scripts/x") == "see mypython scripts/x"  # only whole commands
