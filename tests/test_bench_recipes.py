"""bench.py learning: train.py's recipe per slope over seeds, judged beside the heuristic with interval estimates."""

import json

import pytest
from helpers import load_script, run_main

from agents.benchmarks.recipes import RecipeConfig, bootstrap_interval, iqm, run_recipes, write_recipes_report


def test_the_interquartile_mean_drops_the_outer_quarters():
    assert iqm([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]) == pytest.approx(3.5)
    assert iqm([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # under four values: the mean


def test_the_bootstrap_interval_holds_the_median_and_is_repeatable():
    values = [0.70, 0.80, 0.85, 0.90, 0.99]
    low, high = bootstrap_interval(values)
    assert low <= 0.85 <= high and low >= 0.70 and high <= 0.99
    assert bootstrap_interval(values) == (low, high)
    assert bootstrap_interval([0.5] * 5) == (0.5, 0.5)


def test_a_tiny_run_judges_both_models_and_the_heuristic_on_the_same_courses(tmp_path):
    config = RecipeConfig(slopes=("green",), seeds=(1, 2), test_episodes=3, timesteps=4096, eval_freq=2048,
                          eval_episodes=2, root=tmp_path / "runs")  # fmt: skip
    result = run_recipes(config)
    (slope,) = result.slopes
    assert [r.seed for r in slope.runs] == [1, 2] and slope.continuous_heuristic is None
    assert slope.heuristic.clean == 1.0  # the heuristic skis green cleanly
    for run in slope.runs:
        assert run.steps == 4096 and 0 < run.best_step <= 4096 and 0 <= run.final.clean <= 1
    markdown = result.to_markdown()
    assert "| green | PPO, best model |" in markdown and "| green | heuristic | 100% |" in markdown
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- bench:learning -->\nold\n<!-- /bench:learning -->\nb\n")
    written = write_recipes_report(result, tmp_path / "out", readme)
    assert written["readme"] and "| green | PPO, final model |" in readme.read_text()
    assert json.loads((tmp_path / "out" / "learning.json").read_text())["config"]["seeds"] == [1, 2]


def test_the_command_refuses_bad_input_in_one_line(capsys):
    bench = load_script("bench")
    for bad in (["--slopes", "red"], ["--seeds", "500000"], ["--test-episodes", "0"]):
        code, _, err = run_main(bench, ["learning", *bad], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
