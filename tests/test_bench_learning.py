"""The learning benchmark's machinery on a tiny budget: result structure, honest "not reached" reporting, the
markdown and the README section, the command line. Never wall-clock values, never whether PPO learns."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import load_script, run_main

from agents.benchmarks import learning
from agents.benchmarks.learning import (
    CARTPOLE_ID,
    SKI_ID,
    LearningConfig,
    LearningResult,
    build_model,
    cartpole_task,
    default_tasks,
    evaluate_on_seeds,
    run_learning,
    ski_task,
    train_to_target,
    write_learning_report,
)
from agents.evaluation import evaluate
from agents.seeds import VALIDATION_SEED

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
# One Ski-v0 PPO rollout is 256 envs x 16 steps = 4096 env steps; a CartPole one 8 x 32 = 256.
GREEN = ski_task("green", budget=8192, eval_every=4096, eval_episodes=2, test_episodes=2)
CARTPOLE = cartpole_task(budget=1024, eval_every=512, eval_episodes=2, test_episodes=2)


@pytest.fixture(scope="module")
def tiny_result() -> LearningResult:
    return run_learning(LearningConfig(seeds=(1,), tasks=(GREEN, CARTPOLE)))


def test_unreached_targets_are_reported_with_the_whole_curve(tiny_result: LearningResult) -> None:
    green, cartpole = tiny_result.summaries
    assert (green.task.env_id, cartpole.task.env_id) == (SKI_ID, CARTPOLE_ID)
    (run,) = green.runs
    assert not run.reached and run.at_target is None and run.test is None
    assert run.final_test is not None and run.final_test.episodes == 2  # the last model, judged on test seeds
    assert [c.steps for c in run.curve] == [4096, 8192]  # the grid point, then the final policy
    assert run.total_steps == 8192
    assert all(0.0 <= c.score <= 1.0 and c.wall_time >= 0 for c in run.curve)
    assert run.curve[0].wall_time <= run.curve[1].wall_time <= run.total_wall_time
    assert green.steps() == [math.inf] and green.test_scores() == []
    (cart_run,) = cartpole.runs
    assert [c.steps for c in cart_run.curve] == [512, 1024]
    assert all(c.score == c.mean_return for c in cart_run.curve)


def test_json_holds_curves_and_none_for_unreached(tiny_result: LearningResult, tmp_path: Path) -> None:
    written = write_learning_report(tiny_result, tmp_path / "bench")
    data = json.loads(written["json"].read_text())
    assert data["seeds"] == [1] and [t["task"] for t in data["tasks"]] == ["green", "cartpole"]
    green = data["tasks"][0]
    assert green["seeds_reached"] == 0 and green["steps_to_target_median"] is None
    assert green["steps_to_target"] == [None] and green["budget"] == 8192
    assert green["hyperparams"]["learning_rate"] == "lin_5e-4"
    (run,) = green["runs"]
    assert run["reached"] is False and run["best"]["steps"] in (4096, 8192)
    assert run["test_at_target"] is None and run["final_model_on_test"]["episodes"] == 2
    assert [c["steps"] for c in run["curve"]] == [4096, 8192]
    assert data["tasks"][1]["hyperparams"]["n_steps"] == 32


def test_markdown_says_not_reached(tiny_result: LearningResult) -> None:
    text = tiny_result.to_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ski green") or line.startswith("| CartPole")]
    summary_green, summary_cartpole, seed_green, seed_cartpole = rows
    assert "| 0/1 |" in summary_green and "> 8.19k" in summary_green
    assert "| 1× |" in summary_cartpole
    assert "not reached within 8.19k steps, best" in seed_green and "final model: " in seed_green
    assert "not reached within 1.02k steps" in seed_cartpole


def test_a_reached_target_stops_training_and_is_judged_on_test_courses() -> None:
    easy = replace(GREEN, target=0.0, budget=4096 * 4)  # any policy skis 0% clean or better
    run = train_to_target(easy, seed=2)
    assert run.reached and run.at_target is run.curve[-1] and len(run.curve) == 1
    assert run.at_target.steps == 4096 and run.total_steps < easy.budget
    assert run.test is not None and run.test.episodes == 2 and 0.0 <= run.test.clean_rate <= 1.0
    assert run.final_test is None
    result = LearningResult(seeds=(2,), summaries=[learning.TaskSummary(easy, [run])])
    text = result.to_markdown()
    assert "| 1/1 | 4.1k |" in text and "(2 episodes)" in text
    assert result.to_dict()["tasks"][0]["steps_to_target"] == [4096]


def test_batched_evaluation_matches_single_env_evaluation() -> None:
    """Sub-env i skis the course of seed i: the same episodes agents.evaluation plays one by one."""
    model, venv = build_model(GREEN, seed=0)
    venv.close()
    normalizer = model.get_vec_normalize_env()

    class Normalised:
        def predict(self, obs, deterministic=True):
            return model.predict(normalizer.normalize_obs(obs), deterministic=deterministic)

    seeds = [VALIDATION_SEED, VALIDATION_SEED + 1, VALIDATION_SEED + 2]
    batched = evaluate_on_seeds(model, GREEN, seeds)
    single = evaluate(Normalised(), SKI_ID, {"slope": "green"}, seeds)
    assert batched.episodes == 3
    assert batched.mean_return == pytest.approx(single.mean_return, rel=1e-4, abs=1e-3)
    assert batched.clean_rate == pytest.approx(single.metric_means()["clean"])


def test_spread_treats_unreached_seeds_as_slowest() -> None:
    fmt = learning.format_rate
    assert learning._spread([1e6, math.inf, 2e6], fmt, 4_000_000) == "2M [1M–> 4M]"
    assert learning._spread([math.inf, math.inf, 2e6], fmt, 4_000_000) == "> 4M [2M–> 4M]"
    assert learning._spread([math.inf], fmt, 8_000_000) == "> 8M"
    assert learning._spread([3.0, 1.0, 2.0], learning._format_seconds, None) == "2.0 s [1.0 s–3.0 s]"


def test_default_tasks() -> None:
    green, blue, cartpole = default_tasks()
    assert (green.budget, blue.budget, cartpole.budget) == (4_000_000, 8_000_000, 100_000)
    assert blue.env_kwargs == {"slope": "blue"} and cartpole.hyperparams["learning_rate"] == "lin_0.001"
    quick = default_tasks(["blue", "cartpole"], eval_every=50_000, eval_episodes=10, max_steps=200_000)
    assert [(t.budget, t.eval_every, t.eval_episodes) for t in quick] == [(200_000, 50_000, 10), (100_000, 10_000, 20)]
    with pytest.raises(ValueError, match="unknown task"):
        default_tasks(["red"])
    with pytest.raises(ValueError, match="seed must be"):
        train_to_target(GREEN, seed=VALIDATION_SEED)


def test_readme_section_is_replaced(tiny_result: LearningResult, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# t\n<!-- bench:learning_speed -->\nold\n<!-- /bench:learning_speed -->\nafter\n")
    written = write_learning_report(tiny_result, tmp_path / "bench", readme)
    text = readme.read_text()
    assert written["readme"] is True and "old" not in text and text.endswith("<!-- /bench:learning_speed -->\nafter\n")
    assert "| ski green |" in text and "| CartPole-v1 (reference) |" in text
    assert written["markdown"].read_text().startswith("# Learning")


def test_cli_help_and_bad_arguments(capsys) -> None:
    bench = load_script("bench")
    code, out, _ = run_main(bench, ["learning-speed", "--help"], capsys)
    assert code == 0 and "examples:" in out and "--eval-every" in out
    for bad in (["--seeds", "500"], ["--tasks", "red"], ["--eval-episodes", "0"]):
        code, _, err = run_main(bench, ["learning-speed", *bad], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err


def test_cli_runs_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCH.parent))
    args = ["learning-speed", "--tasks", "cartpole", "--seeds", "1", "1", "--max-steps", "512", "--no-readme"]
    assert bench.main([*args, "--out", str(tmp_path)]) == 0
    assert "| CartPole-v1 (reference) |" in capsys.readouterr().out
    assert json.loads((tmp_path / "learning_speed.json").read_text())["seeds"] == [1]


def test_ctrl_c_exits_130_and_keeps_old_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCH.parent))
    (tmp_path / "learning.md").write_text("old report")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(learning, "run_learning", interrupted)
    assert bench.main(["learning-speed", "--tasks", "cartpole", "--no-readme", "--out", str(tmp_path)]) == 130
    assert (tmp_path / "learning.md").read_text() == "old report"
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["learning.md"])
