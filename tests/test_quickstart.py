"""The main job end to end on a tiny budget: a run folder, a judgement beside the baselines, a GIF."""

from helpers import load_script, run_main
from PIL import Image


def test_quickstart_trains_judges_and_records(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    code, out, err = run_main(load_script("quickstart"), ["--timesteps", "2048", "--episodes", "2"], capsys)
    assert code == 0, err
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    assert (run / "model.zip").exists() and (run / "config.yml").exists()
    with Image.open(run / "episode.gif") as gif:
        assert gif.n_frames > 10
    assert "heuristic" in out and "random" in out and "of the 80% target" in out
    assert f"python scripts/watch.py {run.relative_to(tmp_path)}" in out


def test_quickstart_refuses_a_bad_slope_in_one_line(capsys):
    code, _, err = run_main(load_script("quickstart"), ["--slope", "red"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--slope" in err
