"""Curriculum transfer, the way people learn to ski: a skier trained on the green slope starts on the blue one,
against a skier that starts on blue from nothing. Steps to a clean-run rate on blue, and the whole learning curve.

Per seed: the green teacher of that seed (:func:`agents.compression.teachers.ski_teacher`, 3M steps of the main
job's recipe) gives its weights to a new PPO agent on blue: all of its policy (``all``) or its hidden layers only
(``body``, the feature-extractor transfer), with its observation statistics; ``scratch`` starts from random
weights. Each trains with the same recipe and budget, validated on the same held-out blue courses
(:func:`agents.benchmarks.learning.train_to_target`), and stops at the target. The transfer rows do not count the
green steps: a curriculum spends them on another slope, and the table says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agents.benchmarks.learning import SeedRun, ski_task, train_to_target
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.compression.teachers import DEFAULT_ROOT, ski_teacher
from agents.runs import load_agent
from agents.transfer import transfer_policy

BENCH_NAME = "transfer_curriculum"
CONDITIONS = ("scratch", "all", "body")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CurriculumConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    conditions: tuple[str, ...] = CONDITIONS
    slope: str = "blue"
    target: float = 0.4  # clean-run rate on the validation courses
    budget: int = 600_000  # blue steps per run at most
    eval_every: int = 200_000
    eval_episodes: int = 30
    test_episodes: int = 50
    teachers_root: Path = DEFAULT_ROOT
    teacher: Path | None = None  # one trained run to start every seed from; None: the green teacher of each seed


@dataclass
class CurriculumResult:
    config: CurriculumConfig
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # condition -> SeedRun.to_dict() per seed
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_markdown(self) -> str:
        return "\n\n".join(
            [_table(self), _curves(self), _note(self.config), f"Machine: {format_machine(self.machine)}."]
        )

    def to_dict(self) -> dict[str, Any]:
        config = {**asdict(self.config), "teachers_root": str(self.config.teachers_root)}
        config["teacher"] = None if self.config.teacher is None else str(self.config.teacher)
        return {"config": config, "runs": self.runs}


def run_curriculum(config: CurriculumConfig | None = None, progress: Progress | None = None) -> CurriculumResult:
    config = config or CurriculumConfig()
    task = replace(
        ski_task(config.slope, config.budget, config.eval_every, config.eval_episodes, config.test_episodes),
        target=config.target,
    )
    result = CurriculumResult(config)
    for seed in config.seeds:
        for condition in config.conditions:
            teacher = config.teacher or ski_teacher(seed, config.teachers_root)
            init = None if condition == "scratch" else _from_teacher(teacher, condition)
            run: SeedRun = train_to_target(task, seed, progress, init)
            result.runs.setdefault(condition, []).append(run.to_dict())
    return result


def write_curriculum_report(result: CurriculumResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = f"Curriculum transfer: green to {result.config.slope}"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _from_teacher(teacher_run: Path, parts: str) -> Callable[[Any, Any], object]:
    teacher = load_agent(teacher_run, device="cpu")
    return lambda model, venv: transfer_policy(teacher, model, venv, parts)


LABELS = {"scratch": "from scratch", "all": "from green, whole policy", "body": "from green, hidden layers only"}


def _table(result: CurriculumResult) -> str:
    c = result.config
    rows = []
    for condition, runs in result.runs.items():
        steps = [r["steps_to_target"] for r in runs if r["reached"]]
        first = [r["curve"][0]["score"] for r in runs if r["curve"]]
        best = [r["best"]["score"] for r in runs if r["best"]]
        tests = [(r["test_at_target"] or r["final_model_on_test"]) for r in runs]
        test_clean = [t["clean_rate"] for t in tests if t]
        rows.append(
            [
                LABELS[condition],
                f"{len(steps)}/{len(runs)}",
                f"{format_rate(statistics.median(steps))}" if steps else f"> {format_rate(c.budget)}",
                f"{statistics.fmean(first):.0%}" if first else "-",
                f"{statistics.fmean(best):.0%} ± {statistics.pstdev(best):.0%}" if best else "-",
                f"{statistics.fmean(test_clean):.0%}" if test_clean else "-",
            ]
        )
    header = [
        f"{c.slope} skier",
        f"reached {c.target:.0%}",
        "steps to target (median)",
        f"clean at {format_rate(c.eval_every)} steps",
        "best validation clean rate",
        f"test clean rate ({c.test_episodes} courses)",
    ]
    return markdown_table(header, rows)


def _curves(result: CurriculumResult) -> str:
    """Mean validation clean-run rate at each validation step, every condition side by side (a seed that stopped
    at the target keeps its last value)."""
    c = result.config
    points = list(range(c.eval_every, c.budget + 1, c.eval_every))
    rows = []
    for condition, runs in result.runs.items():
        cells = []
        for step in points:
            values = [_score_at(r["curve"], step + c.eval_every // 2) for r in runs]
            values = [v for v in values if v is not None]
            cells.append(f"{statistics.fmean(values):.0%}" if values else "-")
        rows.append([LABELS[condition], *cells])
    return markdown_table(["validation clean rate at", *(format_rate(s) for s in points)], rows)


def _score_at(curve: list[dict[str, Any]], step: int) -> float | None:
    """The last validation score at or before ``step`` (validations fall just after each rollout boundary)."""
    before = [point["score"] for point in curve if point["steps"] <= step]
    return before[-1] if before else None


def _note(c: CurriculumConfig) -> str:
    return (
        f"How to read it: seeds {list(c.seeds)}; each run trains PPO on {c.slope} with the main job's recipe "
        f"(`agents/hyperparams/ppo.yml`, 32 native envs) for at most {format_rate(c.budget)} steps, validated every "
        f"{format_rate(c.eval_every)} steps on {c.eval_episodes} held-out {c.slope} courses, and stops when "
        f"{c.target:.0%} of them are clean; the model at the target (or the last one) then skis "
        f"{c.test_episodes} test courses. The transferred skiers start from the green teacher of their seed "
        "(3M green steps, not counted here: the curriculum's cost is paid on the easier slope); 'hidden layers "
        "only' keeps the teacher's layers and observation statistics but starts the action and value heads afresh. "
        "Zero-shot, the green teachers ski no blue course cleanly."
    )
