"""scripts/compress.py: each command prints its table and writes it; bad input is one line and a non-zero exit."""

import csv
import re
import sys
from pathlib import Path

import pytest
from helpers import assert_one_line_error, load_script, run_main

from agents.cli import command

compress = load_script("compress")
evaluate = load_script("evaluate")


def test_distilling_a_classifier_prints_and_writes_the_table(tmp_path, capsys):
    argv = ["distill", "--dataset", "digits", "--student-width", "16", "--transfer-size", "200", "--repeats", "2"]
    code, out, err = run_main(compress, [*argv, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "| student, distilled (T=4, alpha=0.9) |" in out and "test errors (of 360)" in out
    rows = list(csv.DictReader((tmp_path / "distill-digits-narrow16-seed0.csv").open()))
    assert [r["name"] for r in rows] == ["teacher digits-mlp", "student, labels only", "student, distilled"]
    assert (tmp_path / "distill-digits-narrow16-seed0.md").read_text().startswith("# Distilling digits-mlp")


def test_distilling_an_agent_saves_a_student_run(trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the student run lands under runs/compression/distilled of the working directory
    argv = ["distill", "--teacher", str(trained_run), "--student-width", "8", "--iterations", "1"]
    argv += ["--steps-per-iteration", "100", "--eval-episodes", "1", "--repeats", "1"]
    code, out, err = run_main(compress, argv, capsys)
    assert code == 0, err
    assert "| student [8] " in out and "student saved in runs/compression/distilled/ppo/Ski-v0_1" in out
    assert (tmp_path / "runs/compression/distilled/ppo/Ski-v0_1/model.zip").is_file()


def test_a_distilled_train_py_run_keeps_its_statistics_and_evaluate_scores_it_as_distill_did(
    train_py_run, tmp_path, capsys, monkeypatch
):
    """The teacher normalises observations: its statistics are saved again beside the student (this raised
    KeyError: 'class_attributes'), so evaluate.py scores the student as distill measured it, not on raw
    observations."""
    monkeypatch.chdir(tmp_path)
    argv = ["distill", "--teacher", str(train_py_run), "--student-width", "16", "--iterations", "1"]
    argv += ["--steps-per-iteration", "200", "--eval-episodes", "2", "--repeats", "1"]
    code, out, err = run_main(compress, argv, capsys)
    assert code == 0, err
    student = tmp_path / "runs/compression/distilled/ppo/Ski-v0_1"
    assert {"config.yml", "model.zip", "vecnormalize.pkl"} <= {p.name for p in student.iterdir()}
    assert "normalize: true" in (student / "config.yml").read_text()
    assert f"watch it: {compress.script_command('watch.py')} runs/compression/distilled/ppo/Ski-v0_1" in out
    distilled_return = re.search(r"^\| student \[16\] \(clean \d+%\) \| (\S+ ± \S+) \|", out, re.M)[1]
    code, out, err = run_main(evaluate, [str(student), "--episodes", "2", "--no-baselines"], capsys)
    assert code == 0, err
    assert re.search(rf"^ppo +{re.escape(distilled_return)} ", out, re.M), out


def test_a_failed_distillation_leaves_no_student_run(trained_run, tmp_path, capsys, monkeypatch):
    from agents.distill import DistilledPolicy

    def crash(self, path):
        (Path(path).parent / "model.zip").write_bytes(b"half a student")
        raise OSError("No space left on device")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(DistilledPolicy, "save", crash)
    argv = ["distill", "--teacher", str(trained_run), "--student-width", "8", "--iterations", "1"]
    code, _, err = run_main(compress, [*argv, "--steps-per-iteration", "100", "--eval-episodes", "1"], capsys)
    assert_one_line_error(code, err, 1, "No space left on device")
    assert list((tmp_path / "runs/compression/distilled/ppo").iterdir()) == []


def test_an_int8_onnx_export_of_a_train_py_run_writes_the_file_and_prints_the_table(train_py_run, tmp_path, capsys):
    argv = ["quantize", "--run", str(train_py_run), "--method", "int8", "--export", "onnx"]
    code, out, err = run_main(
        compress, [*argv, "--eval-episodes", "1", "--repeats", "1", "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    assert f"exported {tmp_path / 'policy-int8.onnx'}" in out and "| int8 (int8 dynamic linear layers" in out
    assert (tmp_path / "policy-int8.onnx").stat().st_size > 0 and (tmp_path / "quantize-policy-int8.md").is_file()


QUANTIZE_INT8_ONNX = ["quantize", "--run", "{run}", "--method", "int8", "--export", "onnx"]
DISTILL_ONNX = ["distill", "--teacher", "{run}", "--export", "onnx"]


@pytest.mark.parametrize(
    ("argv", "missing"),
    [
        (QUANTIZE_INT8_ONNX, ["onnx"]),
        (QUANTIZE_INT8_ONNX, ["onnxruntime"]),  # int8 is quantized by onnxruntime
        (QUANTIZE_INT8_ONNX, ["onnx", "onnxruntime"]),
        (DISTILL_ONNX, ["onnx"]),  # the student is exported in fp32: onnx only
    ],
)
def test_an_onnx_export_without_its_packages_is_refused_before_any_work(
    argv, missing, train_py_run, tmp_path, capsys, monkeypatch
):
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # import onnx raises ImportError, as when it is not installed
    monkeypatch.chdir(tmp_path)
    argv = [a.format(run=train_py_run) for a in argv]
    code, out, err = run_main(compress, [*argv, "--out", str(tmp_path / "reports")], capsys)
    install = (
        f"install {'it' if len(missing) == 1 else 'them'} with: {command('python')} -m pip install {' '.join(missing)}"
    )
    assert_one_line_error(code, err, 1, "not installed here")
    assert err.rstrip().endswith(install) and out == ""
    assert list(tmp_path.iterdir()) == []  # no report, no student run: refused before the work


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prune", "--target-flops", "1.5"], "share in (0, 1]"),
        (["prune", "--target-flops", "0.5", "--target-params", "0.5"], "not allowed with"),
        (["prune", "--method", "magic"], "invalid choice"),
        (["distill"], "one of the arguments --teacher --dataset is required"),
        (["distill", "--dataset", "digits", "--alpha", "2"], "--alpha must be in [0, 1]"),
        (["distill", "--dataset", "digits", "--export", "onnx"], "exports a policy"),
        (["quantize", "--model", "digits-mlp", "--export", "onnx"], "exports a policy"),
        (
            ["quantize", "--run", "runs/ppo/Ski-v0_1", "--method", "fp16", "--export", "onnx"],
            "cannot export the fp16 policy",
        ),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code, _, err = run_main(compress, argv, capsys)
    assert_one_line_error(code, err, 2, message)


def test_a_missing_teacher_run_is_one_line_and_exit_1(tmp_path, capsys):
    code, _, err = run_main(compress, ["distill", "--teacher", str(tmp_path / "nothing")], capsys)
    assert_one_line_error(code, err, 1, "does not exist")
