"""The comparison table every compression command prints and writes."""

import csv
import io

import pytest
from torch import nn

from agents.compression.report import Report, Row, measured_row


def _row(name: str, scale: float) -> Row:
    return Row(name, 0.9 * scale, int(1000 * scale), int(2000 * scale), int(4000 * scale), 0.1 * scale, 1.0 * scale)


def test_every_cost_is_shown_with_its_ratio_to_the_original_in_the_first_row():
    report = Report("t", "test accuracy", [_row("original", 1.0), _row("half", 0.5)])
    lines = report.markdown().splitlines()
    assert lines[0].startswith("| model | test accuracy | parameters | FLOPs | bytes |")
    assert lines[2].count("(1.00x)") == 5
    assert "| half | 0.450 | 500 (0.50x) | 1,000 (0.50x) | 2,000 (0.50x) | 0.050 (0.50x) | 0.500 (0.50x) |" in lines


def test_returns_are_shown_with_their_spread_and_notes_beside_the_name():
    row = Row("student", 160.44, 422, 400, 4125, 0.02, 0.03, score_std=15.3, note="clean 74%")
    text = Report("t", "return", [row]).markdown()
    assert "| student (clean 74%) | 160.4 ± 15.3 | 422 (1.00x)" in text


def test_the_csv_holds_the_raw_numbers_and_both_files_are_written(tmp_path):
    report = Report("Title", "test accuracy", [_row("original", 1.0), _row("half", 0.5)])
    md, table = report.write(tmp_path / "out", "stem")
    assert md.read_text().startswith("# Title\n\n| model |")
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["name"] for r in rows] == ["original", "half"]
    assert float(rows[1]["parameters"]) == 500
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_report_without_rows_is_refused():
    with pytest.raises(ValueError, match="original"):
        Report("t", "return").markdown()


def test_a_measured_row_counts_what_the_model_has():
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    row = measured_row("mlp", model, (8,), 0.5, repeats=2)
    assert (row.parameters, row.flops) == (8 * 4 + 4 + 4 * 2 + 2, 8 * 4 + 4 * 2)
    assert row.size_bytes > 0 and row.latency_b1_ms > 0 and row.latency_b256_ms > 0
    assert measured_row("mlp", model, (8,), 0.5, repeats=1, size_bytes=7).size_bytes == 7
