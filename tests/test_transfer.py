"""trends.transfer, its benchmark and scripts/transfer.py on tiny budgets: the tasks, the contrastive loss and
augmentations, pre-training, the encoder cache, and fine-tuning against a frozen random encoder."""

import csv
import functools
import math

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, load_script, run_main

from agents.benchmarks.transfer_labels import TransferBenchConfig, run_transfer_bench, write_transfer_bench_report
from trends.data import load_dataset
from trends.training import TrainRecipe, fit
from trends.transfer import PretrainConfig, TransferConfig, load_encoder, run_transfer, source_task, target_task
from trends.transfer import encoders as encoders_module
from trends.transfer.contrastive import AUGMENTATIONS, Augmentation, ContrastiveTrainer, _shift, nt_xent
from trends.transfer.encoders import PROJECTOR, encoder_modules, new_classifier
from trends.transfer.tasks import unlabelled_pool

transfer_script = load_script("transfer")

TINY_PRETRAIN = PretrainConfig(
    supervised=TrainRecipe(learning_rate=3e-3, batch_size=64, max_epochs=4, patience=2),
    contrastive=TrainRecipe(learning_rate=3e-3, batch_size=128, max_epochs=2, patience=2),
)
TINY = TransferConfig(max_epochs=15, patience=5, probe_max_epochs=50, pretrain=TINY_PRETRAIN)


def test_the_tasks_split_the_classes_and_relabel_the_target():
    digits = load_dataset("digits")
    source, target = source_task(digits), target_task(digits)
    for split in ("train", "val", "test"):
        y = getattr(digits, f"y_{split}")
        np.testing.assert_array_equal(getattr(source, f"y_{split}"), y[y < 5])
        np.testing.assert_array_equal(getattr(target, f"y_{split}"), y[y >= 5] - 5)
        np.testing.assert_array_equal(getattr(target, f"x_{split}"), getattr(digits, f"x_{split}")[y >= 5])
    assert source.n_classes == target.n_classes == 5


def test_a_label_fraction_is_stratified_seeded_and_never_drops_a_class():
    digits = load_dataset("digits")
    few = target_task(digits, 0.01, seed=0)
    assert sorted(set(few.y_train)) == [0, 1, 2, 3, 4]  # 1% of ~115 per class rounds to 1, not 0
    np.testing.assert_array_equal(few.x_train, target_task(digits, 0.01, seed=0).x_train)
    assert not np.array_equal(few.x_train, target_task(digits, 0.01, seed=1).x_train)
    tenth = target_task(digits, 0.1, seed=0)
    full = np.bincount(target_task(digits).y_train)
    np.testing.assert_array_equal(np.bincount(tenth.y_train), np.round(full * 0.1))
    with pytest.raises(ValueError, match="label fraction must be in"):
        target_task(digits, 0.0)


def test_nt_xent_on_a_known_case_and_against_shuffled_pairs():
    # Two orthogonal samples seen identically: each view's partner has cosine 1, the two others 0, so at tau = 1
    # every row's loss is -log(e / (e + 2)).
    z = torch.eye(2)
    assert nt_xent(z, z, temperature=1.0).item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)
    generator = torch.Generator().manual_seed(0)
    z1 = torch.randn(16, 8, generator=generator)
    z2 = z1 + 0.1 * torch.randn(16, 8, generator=generator)
    shuffled = z2[torch.roll(torch.arange(16), 1)]
    assert nt_xent(z1, z2, 0.5) < nt_xent(z1, shuffled, 0.5) - 1.0


def test_shifts_move_images_with_zeros_and_signals_circularly():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 4] = 1.0
    moved = _shift(image, torch.tensor([[1, -1]]))
    assert moved[0, 0, 4, 3] == 1.0 and moved.sum() == 1.0
    signal = torch.arange(5.0).reshape(1, 1, 5)
    assert _shift(signal, torch.tensor([[2]])).flatten().tolist() == [3.0, 4.0, 0.0, 1.0, 2.0]
    for name, augmentation in AUGMENTATIONS.items():
        x = torch.tensor(load_dataset(name).x_train[:4])
        assert augmentation(x).shape == x.shape and not torch.equal(augmentation(x), x)


def test_contrastive_pretraining_moves_the_pretext_loss_down():
    network = new_classifier("digits", seed=0)
    model = torch.nn.Sequential(encoder_modules(network))
    model.add_module(PROJECTOR, torch.nn.Linear(64, 16))
    recipe = TrainRecipe(learning_rate=3e-3, batch_size=128, max_epochs=3, patience=3)
    pool = unlabelled_pool(load_dataset("digits"))
    trainer = ContrastiveTrainer(model, pool, Augmentation(1, 0.1, 0.05), 0.2, recipe)
    before, accuracy = trainer.evaluate("val")
    assert math.isnan(accuracy)
    result = fit(trainer)
    assert result.val_loss < before - 0.3


def test_fine_tuning_a_supervised_encoder_beats_the_frozen_random_encoder(tmp_path):
    # MNIST-1D, 10% of the target labels: the source classes teach its convolutions shapes a random CNN lacks.
    # Eight epochs of pre-training reach 0.86 on the source task; measured: 0.68 fine-tuned against 0.38 frozen.
    supervised = TrainRecipe(learning_rate=1e-2, batch_size=64, max_epochs=8, patience=3)
    config = TransferConfig(max_epochs=15, patience=5, pretrain=PretrainConfig(supervised=supervised))
    tuned = run_transfer("mnist1d", "supervised", "fine_tune", 0.1, seed=0, config=config, cache_dir=tmp_path)
    frozen = run_transfer("mnist1d", "none", "linear_probe", 0.1, seed=0, config=config, cache_dir=tmp_path)
    assert tuned.test_accuracy > frozen.test_accuracy + 0.1
    assert frozen.trainable_parameters == 64 * 5 + 5  # the head alone
    assert tuned.n_labels == frozen.n_labels == 160


def test_the_encoder_cache_is_written_once_and_reloaded_without_training(tmp_path, monkeypatch):
    first = load_encoder("digits", "supervised", 0, TINY_PRETRAIN, tmp_path)
    assert not first.from_cache and [p.name for p in tmp_path.iterdir()] == ["digits-supervised-seed0.pt"]

    def no_training(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(encoders_module, "_pretrain_supervised", no_training)
    again = load_encoder("digits", "supervised", 0, TINY_PRETRAIN, tmp_path)
    assert again.from_cache and again.metric == first.metric
    assert all(torch.equal(again.state[k], v) for k, v in first.state.items())
    assert "head.weight" not in again.state and PROJECTOR not in str(list(again.state))
    other = PretrainConfig(supervised=TrainRecipe(max_epochs=3), contrastive=TINY_PRETRAIN.contrastive)
    with pytest.raises(AssertionError, match="trained again"):  # another definition is not served the old file
        load_encoder("digits", "supervised", 0, other, tmp_path)


def test_run_transfer_refuses_combinations_that_mean_nothing():
    with pytest.raises(ValueError, match="use pretraining 'none'"):
        run_transfer("digits", "supervised", "scratch")
    with pytest.raises(ValueError, match="use mode 'scratch'"):
        run_transfer("digits", "none", "fine_tune")
    with pytest.raises(ValueError, match="unknown dataset"):
        run_transfer("cifar", "none", "scratch")


def test_the_benchmark_table_has_a_row_per_arm_and_a_column_per_fraction(tmp_path):
    arms = (("none", "scratch"), ("none", "linear_probe"))
    config = TransferBenchConfig(("digits",), (0, 1), (0.05, 1.0), arms, TINY, tmp_path / "cache")
    result = run_transfer_bench(config)
    assert len(result.runs) == 8
    markdown = result.to_markdown()
    assert "| digits (target: classes 5-9) | 5% (30 labels) | 100% (572 labels) |" in markdown
    assert "| scratch | 0." in markdown and "| random encoder (frozen) + head | 0." in markdown
    written = write_transfer_bench_report(result, tmp_path / "bench")
    assert written["json"].is_file() and "How to read it" in written["markdown"].read_text()


def test_the_labels_command_prints_and_writes_the_run_against_scratch(tmp_path, capsys):
    argv = ["labels", "--dataset", "digits", "--pretraining", "none", "--mode", "linear_probe", "--fraction", "0.05"]
    code, out, err = run_main(transfer_script, [*argv, "--cache-dir", str(tmp_path), "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "| random encoder (frozen) + head | 30 |" in out and "| scratch | 30 |" in out
    rows = list(csv.DictReader((tmp_path / "labels-digits-none-linear_probe-0.05-seed0.csv").open()))
    assert [r["name"] for r in rows] == ["random encoder (frozen) + head", "scratch"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["labels", "--fraction", "1.5"], "share in (0, 1]"),
        (["labels", "--fraction", "0"], "expected a positive number"),
        (["labels", "--dataset", "cifar"], "invalid choice"),
        (["labels", "--pretraining", "none", "--mode", "fine_tune"], "use mode 'scratch'"),
        (["labels", "--pretraining", "contrastive", "--mode", "scratch"], "use pretraining 'none'"),
        (["frobnicate"], "invalid choice"),
        (["pixels", "--conditions", "imagenet-frozen"], "invalid choice"),
        (["pixels", "--seeds", "-1"], "expected a non-negative integer"),
        (["pixels", "--workers", "0"], "expected a positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code, _, err = run_main(transfer_script, argv, capsys)
    assert_one_line_error(code, err, 2, message)


def test_curriculum_compares_a_transferred_skier_with_one_from_scratch(train_py_run, tmp_path, capsys):
    argv = ["curriculum", "--teacher", str(train_py_run), "--budget", "4096", "--conditions", "scratch", "body"]
    code, out, err = run_main(transfer_script, [*argv, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "| from scratch |" in out and "| from green, hidden layers only |" in out
    rows = (tmp_path / "curriculum-blue.csv").read_text().splitlines()
    assert rows[0].startswith("condition,seed,reached") and len(rows) == 3


def test_curriculum_without_a_teacher_run_is_one_line(tmp_path, capsys):
    code, _, err = run_main(transfer_script, ["curriculum", "--teacher", str(tmp_path / "none")], capsys)
    assert_one_line_error(code, err, 1, "does not exist")


def test_curriculum_with_a_corrupt_teacher_is_one_line_before_any_training(tmp_path, capsys, monkeypatch):
    import agents.benchmarks.transfer_curriculum as bench

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "model.zip").write_bytes(b"not a zip")
    monkeypatch.setattr(bench, "run_curriculum", lambda *a, **k: pytest.fail("trained before the teacher was read"))
    code, _, err = run_main(transfer_script, ["curriculum", "--teacher", str(teacher), "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, 1, "not a model zip")


def test_pixels_compares_pixel_ppo_starts_and_writes_its_table(tmp_path, capsys, monkeypatch):
    import agents.benchmarks.pixel_transfer as bench

    small = functools.partial(bench.PixelTransferConfig, eval_episodes=1, test_episodes=1, n_envs=2, frames=32)
    monkeypatch.setattr(bench, "PixelTransferConfig", small)  # a budget of seconds: few courses and frames
    argv = ["pixels", "--conditions", "scratch", "supervised-frozen", "--budget", "256", "--out", str(tmp_path)]
    code, out, err = run_main(transfer_script, argv, capsys)
    assert code == 0, err
    assert "| CNN from scratch |" in out and "| supervised encoder, frozen |" in out
    rows = (tmp_path / "pixels.csv").read_text().splitlines()
    assert rows[0].startswith("condition,seed,decisions_to_target") and len(rows) == 3


def test_the_black_curriculum_counts_a_return_target_and_publishes_apart_from_blue(train_py_run, tmp_path):
    from agents.benchmarks.transfer_curriculum import CurriculumConfig, run_curriculum, write_curriculum_report

    config = CurriculumConfig.for_slope(
        "black", seeds=(0,), conditions=("body",), teacher=train_py_run, budget=4096, eval_every=4096,
        eval_episodes=2, test_episodes=2,
    )  # fmt: skip
    assert (config.metric, config.target) == ("return", 0.0)
    result = run_curriculum(config)
    run = result.runs["body"][0]
    assert run["reached"] == (run["curve"][0]["score"] >= 0.0)
    assert run["curve"][0]["score"] == run["curve"][0]["mean_return"]  # the score is the return, not a rate
    paths = write_curriculum_report(result, tmp_path)
    text = paths["markdown"].read_text()
    assert paths["markdown"].name == "transfer_curriculum_black.md" and "reached return 0" in text
    with pytest.raises(ValueError, match="unknown metric"):
        CurriculumConfig(metric="speed")
