"""trends.gan: the 2-D mixtures and their metrics, the GAN and PacGAN, the digits cGAN, TensorBoard, the pygame
viewer, scripts/gan.py and the benchmark, each on a budget of seconds."""

import math
import re
import threading
import time

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, load_script, run_main

from trends.data import load_dataset
from trends.gan import (
    ConditionalGanConfig,
    ModeGanConfig,
    Snapshots,
    few_labels,
    load_snapshots,
    make_mixture,
    mean_distance_to_modes,
    mode_metrics,
    pack_samples,
    save_snapshots,
    train_conditional_gan,
    train_mode_gan,
)
from trends.gan.packing import build_networks, initial_samples

SHORT = ModeGanConfig(steps=800, log_every=100, seed=0)


@pytest.fixture(scope="module")
def ring_run():
    return train_mode_gan(make_mixture("ring"), SHORT)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ---- mixtures and metrics ----------------------------------------------------------------------------------------


def test_the_mixtures_are_pacgans():
    ring, grid = make_mixture("ring"), make_mixture("grid")
    assert ring.n_modes == 8 and ring.std == 0.01
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 1.0)
    assert grid.n_modes == 25 and grid.std == 0.05
    assert sorted(set(grid.means[:, 0])) == [-4, -2, 0, 2, 4]
    with pytest.raises(ValueError, match="unknown mixture"):
        make_mixture("moons")


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_samples_on_every_mode_score_perfectly(name):
    mixture = make_mixture(name)
    metrics = mode_metrics(np.repeat(mixture.means, 3, axis=0), mixture)
    assert metrics.modes_covered == mixture.n_modes
    assert metrics.high_quality == 1.0
    assert metrics.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_real_data_scores_as_the_metric_expects():
    mixture = make_mixture("ring")
    metrics = mode_metrics(mixture.sample(2500, np.random.default_rng(0)), mixture)
    assert metrics.modes_covered == 8
    assert metrics.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # a 2-D Gaussian within 3 std
    assert metrics.reverse_kl < 0.01


def test_a_collapsed_generator_covers_one_mode():
    mixture = make_mixture("ring")
    metrics = mode_metrics(np.tile(mixture.means[3], (100, 1)), mixture)
    assert (metrics.modes_covered, metrics.high_quality) == (1, 1.0)
    assert metrics.reverse_kl == pytest.approx(math.log(8))
    assert metrics.counts[3] == 100


def test_samples_off_the_modes_are_not_high_quality():
    mixture = make_mixture("ring")
    far = np.zeros((10, 2))  # the centre of the ring
    metrics = mode_metrics(far, mixture)
    assert (metrics.modes_covered, metrics.high_quality, metrics.reverse_kl) == (0, 0.0, math.inf)
    assert mean_distance_to_modes(far, mixture) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        mode_metrics(np.zeros((4, 3)), mixture)


# ---- the GAN and PacGAN --------------------------------------------------------------------------------------------


def test_packing_puts_consecutive_samples_side_by_side():
    samples = torch.arange(12.0).reshape(6, 2)
    packs = pack_samples(samples, 2)
    assert packs.shape == (3, 4)
    torch.testing.assert_close(packs[1], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    with pytest.raises(ValueError, match="packs of 4"):
        pack_samples(samples, 4)
    _, discriminator = build_networks(ModeGanConfig(pack=3))
    assert discriminator(torch.zeros(5, 6)).shape == (5, 1)


def test_training_moves_the_police_and_brings_the_fakes_to_the_data(ring_run):
    mixture = make_mixture("ring")
    start = mean_distance_to_modes(initial_samples(SHORT), mixture)
    end = ring_run.history[-1]["charts/distance_to_modes"]
    assert end < 0.5 * start, (start, end)
    accuracies = [
        (h["charts/discriminator_accuracy_real"] + h["charts/discriminator_accuracy_fake"]) / 2
        for h in ring_run.history
    ]
    assert max(abs(a - 0.5) for a in accuracies) > 0.1, accuracies
    assert ring_run.metrics.n_modes == 8 and ring_run.samples.shape == (2500, 2)
    assert len(ring_run.snapshots) == len(ring_run.snapshot_steps) == SHORT.steps // SHORT.log_every


def test_a_packed_gan_trains_and_runs_are_reproducible():
    config = ModeGanConfig(pack=2, steps=40, log_every=20, seed=5)
    first, again = (train_mode_gan(make_mixture("grid"), config) for _ in range(2))
    np.testing.assert_array_equal(first.samples, again.samples)
    assert first.metrics.n_modes == 25
    with pytest.raises(ValueError, match="pack"):
        ModeGanConfig(pack=0)


def test_snapshots_round_trip(ring_run, tmp_path):
    snapshots = Snapshots.of(ring_run)
    save_snapshots(snapshots, tmp_path / "s.npz")
    loaded = load_snapshots(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.samples, snapshots.samples)
    assert loaded.label == "GAN on ring, seed 0" and loaded.mixture.std == 0.01
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a snapshots file"):
        load_snapshots(tmp_path / "bad.npz")


# ---- the conditional GAN -------------------------------------------------------------------------------------------


def test_few_labels_picks_per_class(digits):
    x, y = few_labels(digits, 3, seed=0)
    assert x.shape == (30, 1, 8, 8)
    assert np.bincount(y).tolist() == [3] * 10


def test_the_cgan_forges_the_requested_labels(digits):
    x, y = few_labels(digits, 5, seed=0)
    result = train_conditional_gan(x, y, 10, ConditionalGanConfig(steps=60, log_every=20))
    images = result.gan.generate([0, 1, 7, 7], seed=1)
    assert images.shape == (4, 1, 8, 8) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, result.gan.generate([0, 1, 7, 7], seed=1))
    assert [h["step"] for h in result.history] == [20, 40, 60]
    with pytest.raises(ValueError, match="labels must be in"):
        result.gan.generate([10])


# ---- TensorBoard -----------------------------------------------------------------------------------------------------


def _events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_gets_scalars_and_pictures(tmp_path, digits):
    from trends.gan.board import GanBoard, conditional_probe, mode_gan_probe

    mixture = make_mixture("ring")
    with GanBoard(tmp_path / "modes") as board:
        train_mode_gan(mixture, ModeGanConfig(steps=40, log_every=20), mode_gan_probe(board, mixture))
    events = _events(tmp_path / "modes")
    assert {"losses/discriminator", "losses/generator", "charts/discriminator_accuracy_fake"} <= set(
        events.Tags()["scalars"]
    )
    assert [e.step for e in events.Scalars("charts/distance_to_modes")] == [20, 40]
    assert len(events.Images("samples/generated")) == 2

    x, y = few_labels(digits, 2, seed=0)
    with GanBoard(tmp_path / "cgan") as board:
        train_conditional_gan(x, y, 10, ConditionalGanConfig(steps=10, log_every=10), conditional_probe(board))
    image = _events(tmp_path / "cgan").Images("samples/generated")[0]
    assert image.width > 8 * 10 and image.height > 8


# ---- the pygame viewer -----------------------------------------------------------------------------------------------


def test_the_viewer_draws_each_snapshot(ring_run, tmp_path):
    from envs.gan_view import GanSamplesRenderer, frames, play, record_gif

    snapshots = Snapshots.of(ring_run)
    renderer = GanSamplesRenderer(snapshots.mixture, size=240)
    first, last = (renderer.rgb_array(frame) for frame in (next(frames(snapshots)), list(frames(snapshots))[-1]))
    assert first.shape == (240, 240, 3) and first.dtype == np.uint8
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 3  # background, modes, samples, text
    assert (first != last).any()
    renderer.close()
    renderer.close()
    assert record_gif(snapshots, tmp_path / "gan.gif", size=120) == len(snapshots.steps)
    start = time.monotonic()
    assert play(snapshots, fps=1000, seconds=1) == len(snapshots.steps)  # a window, under SDL's dummy driver
    assert time.monotonic() - start >= 1  # the last snapshot stays up until the window is closed or time is up
    assert play(snapshots, fps=10, seconds=0.05) < len(snapshots.steps)  # the limit cuts the replay short too
    with pytest.raises(ValueError, match=r"\.gif"):
        record_gif(snapshots, tmp_path / "gan.mp4")


def test_the_viewer_holds_the_last_snapshot_until_the_window_is_closed(ring_run):
    import pygame

    from envs.gan_view import play

    snapshots = Snapshots.of(ring_run)
    closing = threading.Timer(1.0, lambda: pygame.event.post(pygame.event.Event(pygame.QUIT)))  # the person closes it
    start = time.monotonic()
    closing.start()
    try:
        assert play(snapshots, fps=1000, seconds=30) == len(snapshots.steps)  # 30 s: only a safety net here
    finally:
        closing.cancel()
    assert 1.0 <= time.monotonic() - start < 10


# ---- scripts/gan.py --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    return load_script("gan")


def test_modes_then_watch_record(script, tmp_path, capsys):
    argv = ["modes", "--dataset", "grid", "--pack", "2", "--steps", "40", "--log-every", "20"]
    code, out, err = run_main(script, [*argv, "--out", str(tmp_path), "--plot", str(tmp_path / "g.png")], capsys)
    assert code == 0, err
    assert "PacGAN2 on grid, seed 0: modes" in out
    stem = tmp_path / "modes-grid-pack2-seed0"
    assert stem.with_suffix(".csv").exists() and stem.with_suffix(".md").exists() and (tmp_path / "g.png").exists()
    gif = tmp_path / "w.gif"
    code, _, err = run_main(
        script, ["watch", "--snapshots", str(stem.with_suffix(".npz")), "--record", str(gif)], capsys
    )
    assert code == 0, err
    assert gif.exists() and "2 frames" in err


def test_augment_with_a_tiny_budget(script, tmp_path, capsys):
    argv = ["augment", "--labels-per-class", "2", "--forgeries-per-label", "1", "--seeds", "0", "--steps", "10"]
    code, out, err = run_main(script, [*argv, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    first = tmp_path / "augment_1" / "augment.md"
    assert "real + forgeries" in out and f"wrote {first} and {first.with_suffix('.csv')}" in err
    before = first.read_text()
    code, _, err = run_main(script, [*argv[:-1], "20", "--out", str(tmp_path)], capsys)  # another run of augment
    assert code == 0, err
    assert f"wrote {tmp_path / 'augment_2' / 'augment.md'}" in err and first.read_text() == before  # kept


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["modes", "--dataset", "moons"], "moons"),
        (["modes", "--steps", "0"], "positive integer"),
        (["watch", "--record", "out.mp4"], ".gif"),
        (["watch", "--snapshots", "missing.npz", "--record", "out.gif"], "not a snapshots file"),
        (["watch", "--record", "out.gif", "--seconds", "3"], "--seconds limits the window"),
        (["augment", "--labels-per-class", "500"], "training samples"),
    ],
)
def test_bad_input_is_one_line(script, capsys, tmp_path, argv, mentions):
    code, _, err = run_main(script, [*argv, "--out", str(tmp_path)] if argv[0] != "watch" else argv, capsys)
    assert_one_line_error(code, err, 2, mentions)


def test_watch_trains_with_progress_then_keeps_the_window_open_until_its_seconds(script, capsys, monkeypatch):
    import agents.recording

    monkeypatch.setattr(agents.recording, "display_available", lambda: True)  # SDL's dummy driver opens the window
    start = time.monotonic()
    argv = ["watch", "--steps", "40", "--log-every", "10", "--fps", "100", "--seconds", "1.5"]
    code, _, err = run_main(script, argv, capsys)
    assert code == 0, err
    assert time.monotonic() - start >= 1.5
    lines = err.splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["10/40", "20/40", "30/40", "40/40"]
    assert "(100%" in progress[-1] and "distance to modes" in progress[-1]
    assert lines[-1] == "replaying 4 snapshots; the window stays open for 1.5 s"


def test_gail_writes_one_run_folder_under_gail_that_evaluate_scores_as_gail_did(script, tmp_path, capsys):
    argv = ["gail", "--demos", "1", "--timesteps", "64", "--episodes", "1", "--slope", "blue"]
    code, out, err = run_main(
        script, [*argv, "--tensorboard-log", str(tmp_path / "runs"), "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    run_dir = tmp_path / "runs" / "gail" / "Ski-v0_1"  # not runs/gail/gail/Ski-v0_1
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["gail"]
    assert {"model.zip", "vecnormalize.pkl", "config.yml"} <= {p.name for p in run_dir.iterdir()}
    assert f"judge it: {script.script_command('evaluate.py')} {run_dir}" in out
    gail_return = re.search(r"^GAIL +(\S+ ± \S+) ", out, re.M)[1]
    code, out, err = run_main(load_script("evaluate"), [str(run_dir), "--episodes", "1", "--no-baselines"], capsys)
    assert code == 0, err
    assert "{'slope': 'blue'}" in out and re.search(rf"^ppo +{re.escape(gail_return)} ", out, re.M), out


def test_watch_without_a_screen_asks_for_a_recording(script, capsys):
    code, _, err = run_main(script, ["watch", "--steps", "10"], capsys)
    assert_one_line_error(code, err, 1, "--record")


# ---- the benchmark ---------------------------------------------------------------------------------------------------


def test_the_modes_benchmark_reports(tmp_path):
    from agents.benchmarks.gan_modes import GanModesConfig, run_gan_modes, write_gan_modes_report

    config = GanModesConfig(seeds=(0, 1), mixtures=("ring",), gan=ModeGanConfig(steps=20, log_every=20))
    result = run_gan_modes(config)
    assert len(result.runs) == 4
    written = write_gan_modes_report(result, tmp_path)
    markdown = written["markdown"].read_text()
    assert "PacGAN2" in markdown and "PacGAN's Table 1" in markdown and "How to read it" in markdown
    assert written["json"].exists() and not written["readme"]


def test_the_augment_report_reads(tmp_path):
    from agents.benchmarks.gan_modes import GanAugmentConfig, GanAugmentResult, write_gan_augment_report
    from trends.gan import AugmentationTrial

    trials = [AugmentationTrial(5, 50, seed, 0.8, 0.8 + 0.01 * seed, 0.9) for seed in range(3)]
    result = GanAugmentResult(GanAugmentConfig(seeds=(0, 1, 2), labels_per_class=(5,)), trials, full_accuracy=0.97)
    trials.append(AugmentationTrial(5, 5, 0, 0.8, 0.85, 0.9))
    markdown = write_gan_augment_report(result, tmp_path)["markdown"].read_text()
    assert "| 5 (50 digits) | 50 per class | 0.800 ± 0.000 | 0.810 ± 0.008 | +0.010" in markdown
    assert "| 5 (50 digits) | 5 per class | 0.800 ± 0.000 | 0.850 ± 0.000 | +0.050" in markdown
    assert "How to read it" in markdown and "0.970" in markdown


def test_gail_subcommand_trains_saves_and_compares_with_behaviour_cloning(script, tmp_path, capsys):
    argv = ["gail", "--demos", "1", "--timesteps", "512", "--episodes", "2", "--tensorboard-log", str(tmp_path / "tb")]
    code, out, err = run_main(script, [*argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert "expert" in out and "behaviour cloning" in out and "GAIL" in out
    assert (tmp_path / "tb" / "gail" / "Ski-v0_1" / "model.zip").is_file()
    rows = (tmp_path / "out" / "gail-green-demos1-seed0.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["expert", "GAIL", "behaviour cloning", "random"]
