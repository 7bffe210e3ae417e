"""The ski speed benchmark and the report helpers: structure and bookkeeping, never wall-clock speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_script, run_main

from agents.benchmarks.report import update_readme_section, write_atomic
from agents.benchmarks.ski_speed import (
    CARTPOLE_ID,
    SKI_ID,
    Setup,
    SkiSpeedConfig,
    SkiSpeedResult,
    peak_rss_in_subprocess,
    run_ski_speed,
    write_ski_speed_report,
)

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
TINY = SkiSpeedConfig(repeats=2, steps=30, vector_sizes=(1, 4), sync_size=3, warmup=5, memory=False)


@pytest.fixture(scope="module")
def tiny_result() -> SkiSpeedResult:
    return run_ski_speed(TINY)


def test_every_configuration_is_timed(tiny_result: SkiSpeedResult) -> None:
    names = {t.setup.name for t in tiny_result.timings()}
    assert names == {
        "ski/single",
        "cartpole/single",
        "ski/vector_entry_point/1",
        "cartpole/vector_entry_point/1",
        "ski/vector_entry_point/4",
        "cartpole/vector_entry_point/4",
        "ski/sync/3",
    }
    for timing in tiny_result.timings():
        assert len(timing.seconds) == TINY.repeats
        assert all(rate > 0 for rate in timing.rates)
        assert timing.us_per_call > 0


def test_ratios_agree_with_the_rates(tiny_result: SkiSpeedResult) -> None:
    single, *vectors, sync = tiny_result.comparisons
    assert single.target == "cost" and single.threshold == 2.0
    assert single.ratio == pytest.approx(single.ski.us_per_call / single.cartpole.us_per_call)
    assert single.passed == (single.ratio <= 2.0)
    for row in vectors:
        assert row.ski.setup.env_id == SKI_ID and row.cartpole.setup.env_id == CARTPOLE_ID
        assert row.ski.setup.num_envs == row.cartpole.setup.num_envs
        assert row.ratio == pytest.approx(row.ski.rate / row.cartpole.rate)
        assert row.cost_ratio == pytest.approx(1 / row.throughput_ratio)
        assert row.passed is None  # no target below 1024 skiers
        assert min(row.paired_ratios()) <= row.ratio * (1 + 1e-9)
        assert max(row.paired_ratios()) >= row.ratio * (1 - 1e-9)
    assert sync.cartpole is None and sync.ratio is None and sync.passed is None


def test_the_target_row_at_1024_skiers_has_a_verdict() -> None:
    config = SkiSpeedConfig(repeats=1, steps=2, vector_sizes=(1024,), sync_size=None, warmup=0, memory=False)
    (_, row) = run_ski_speed(config).comparisons
    assert row.target == "throughput" and row.threshold == 0.25
    assert row.passed == (row.ski.rate / row.cartpole.rate >= 0.25)


def test_json_and_markdown(tiny_result: SkiSpeedResult, tmp_path: Path) -> None:
    written = write_ski_speed_report(tiny_result, tmp_path / "bench", readme=tmp_path / "missing.md")
    assert written["readme"] is False
    data = json.loads(written["json"].read_text())
    assert data["seeds"] == [0, 1] and len(data["configurations"]) == 7
    by_name = {c["name"]: c for c in data["configurations"]}
    for row in data["comparisons"][1:3]:
        ski, cartpole = by_name[row["ski"]], by_name[row["cartpole"]]
        expected = ski["steps_per_second"]["median"] / cartpole["steps_per_second"]["median"]
        assert row["throughput_ratio"] == pytest.approx(expected)

    table = [line for line in written["markdown"].read_text().splitlines() if line.startswith("| ")]
    labels = [line.split("|")[1].strip() for line in table[1:]]
    assert labels == ["single env", "vector env, 1 skier", "vector env, 4 skiers", "SyncVectorEnv, 3 skiers (context)"]
    assert "cost ≤ 2×" in table[1] and ("pass" in table[1] or "FAIL" in table[1])
    assert "seeds 0, 1" in tiny_result.to_markdown()


def test_peak_memory_is_measured_in_a_fresh_process() -> None:
    baseline, peak = peak_rss_in_subprocess(Setup(SKI_ID, "vector_entry_point", 4), steps=20, seed=0)
    assert 0 < baseline <= peak


def test_update_readme_section_replaces_only_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    other = "<!-- bench:other -->\nkeep me\n<!-- /bench:other -->\n"
    section = "<!-- bench:ski_speed -->\nold table\n<!-- /bench:ski_speed -->"
    readme.write_text(f"# title\n\nintro\n{section}\ntail\n{other}")
    assert update_readme_section(readme, "ski_speed", "| new | table |\n")
    assert readme.read_text() == (
        f"# title\n\nintro\n<!-- bench:ski_speed -->\n| new | table |\n<!-- /bench:ski_speed -->\ntail\n{other}"
    )
    assert update_readme_section(readme, "ski_speed", "| newer |")  # a second run replaces the first
    assert "| new | table |" not in readme.read_text() and "| newer |" in readme.read_text()


def test_update_readme_section_without_markers_changes_nothing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# title\n<!-- bench:ski_speed -->\nonly the opening marker\n")
    before = readme.read_text()
    assert update_readme_section(readme, "ski_speed", "| x |") is False
    assert readme.read_text() == before
    assert update_readme_section(tmp_path / "absent.md", "ski_speed", "| x |") is False


def test_write_atomic_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.md"
    write_atomic(target, "one")
    write_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


@pytest.mark.parametrize("bad", [{"repeats": 0}, {"steps": 0}, {"vector_sizes": (0,)}, {"seed": -1}])
def test_config_refuses_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        SkiSpeedConfig(**bad)


def test_cli_help_exits_0(capsys) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "examples:" in done.stdout  # the program itself; the rest in-process
    code, out, _ = run_main(load_script("bench"), ["ski", "--help"], capsys)
    assert code == 0 and "examples:" in out


@pytest.mark.parametrize("args", [["nope"], ["ski", "--steps", "0"], ["ski", "--repeats", "x"], []])
def test_cli_bad_arguments_exit_2_with_one_line(args: list[str], capsys) -> None:
    code, _, err = run_main(load_script("bench"), args, capsys)
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "error:" in err


def test_ski_baselines_benchmark_reports_every_slope_policy_and_action_space(tmp_path):
    from agents.benchmarks.ski_baselines import run_ski_baselines, write_ski_baselines_report

    result = run_ski_baselines(episodes=2, slopes=("green", "black"))
    names = [(r.env_kwargs["slope"], r.env_id, r.name) for r in result.results]
    assert len(names) == 2 * 2 * 2 and len(set(names)) == 8
    table = result.to_markdown()
    assert table.count("| heuristic |") == 4 and table.count("| random |") == 4
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- bench:ski_baselines -->\nold\n<!-- /bench:ski_baselines -->\nb\n")
    written = write_ski_baselines_report(result, tmp_path / "out", readme)
    assert written["readme"] and "| heuristic |" in readme.read_text() and "old" not in readme.read_text()
    assert (tmp_path / "out" / "ski_baselines.json").exists()


def test_lr_control_benchmark_writes_its_reports_and_random_crashes_more_than_cosine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import load_script, run_main

    from envs.automl import lr_control_env
    from envs.automl.lr_control_env import Instance
    from trends.models import LayerSpec, NetworkSpec

    # A fast MLP (an episode takes about 0.06 s) that random learning rates crash under any seed tried (0-3).
    net = NetworkSpec((LayerSpec("dense", 128), LayerSpec("dense", 64)))
    for name, seeds in (("train", (0, 1, 2)), ("test", (1000, 1001, 1002))):
        monkeypatch.setitem(
            lr_control_env.INSTANCE_SETS, name, tuple(Instance("digits", net, 64, seed=s) for s in seeds)
        )
    argv = [
        "lr-control",
        "--policies",
        "cosine",
        "random",
        "--max-instances",
        "2",
        "--no-readme",
        "--out",
        str(tmp_path),
    ]
    code, out, err = run_main(load_script("bench"), argv, capsys)

    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_control.json", "lr_control.md"]
    markdown = (tmp_path / "lr_control.md").read_text()
    assert markdown.startswith("# Learning-rate control") and "| test | cosine (0.3 → 0.001) |" in out
    assert "seeds 1000-1001" in markdown and "Machine: " in markdown
    assert markdown.rstrip().endswith("Regenerate with `.venv/bin/python scripts/bench.py lr-control`.")
    data = json.loads((tmp_path / "lr_control.json").read_text())
    assert data["instances"]["train"] == ["digits dense128-dense64 b64 sgd #0", "digits dense128-dense64 b64 sgd #1"]
    runs = {(r["instance_set"], r["policy"]): r for r in data["results"]}
    assert set(runs) == {(s, p) for s in ("train", "test") for p in ("cosine", "random")}
    for instance_set in ("train", "test"):
        cosine, random = runs[instance_set, "cosine"], runs[instance_set, "random"]
        assert cosine["episodes"] == random["episodes"] == 2
        assert random["crash_rate"] > cosine["crash_rate"]
        assert random["return_mean"] < cosine["return_mean"]
        assert 0 <= cosine["test_accuracy_mean"] <= 1 and cosine["seconds_median"] > 0
