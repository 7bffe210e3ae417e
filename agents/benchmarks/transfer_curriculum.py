"""Curriculum transfer, the way people learn to ski: a skier trained on the green slope starts on the blue or the
black one, against a skier that starts there from nothing. Steps to a target on the harder slope, and the whole
learning curve. The target is a clean-run rate on blue; on black, where PPO from scratch skis no course cleanly in
2M steps (nor does the heuristic skier), it is a mean return.

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

from agents.benchmarks.learning import SKI_ID, LearningTask, ski_task, train_to_target
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.compression.teachers import DEFAULT_ROOT, ski_teacher
from agents.hyperparams import load_hyperparams
from agents.processes import print_progress, run_jobs
from agents.runs import config_dir_of, load_agent, read_config, resolve_model_path
from agents.transfer import transfer_policy

BENCH_NAME = "transfer_curriculum"  # blue's; other slopes publish as transfer_curriculum_<slope>
CONDITIONS = ("scratch", "all", "body")
METRICS = ("clean", "return")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CurriculumConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    conditions: tuple[str, ...] = CONDITIONS
    slope: str = "blue"
    metric: str = "clean"  # "clean" (clean-run rate) or "return" (mean return), on the validation courses
    target: float = 0.4  # the metric's value that counts as learnt
    budget: int = 600_000  # steps on the harder slope per run at most
    eval_every: int = 200_000
    eval_episodes: int = 30
    test_episodes: int = 50
    teachers_root: Path = DEFAULT_ROOT
    teacher: Path | None = None  # one trained run to start every seed from; None: the green teacher of each seed
    workers: int = 1  # processes running seeds side by side

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose one of {', '.join(METRICS)}")

    @classmethod
    def for_slope(cls, slope: str, **changes: Any) -> CurriculumConfig:
        """The published settings of ``slope``: blue to 40% clean runs in 600k steps; black to a mean return of 0
        in 1M steps (a clean-run target there is out of reach, see the module docstring)."""
        if slope == "black":
            changes = {"metric": "return", "target": 0.0, "budget": 1_000_000, "eval_every": 250_000, **changes}
        return cls(slope=slope, **changes)


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


def student_hyperparams(config: CurriculumConfig) -> dict[str, Any]:
    """The teacher's recipe, for the transferred skier and the one from scratch alike: a policy moves only into a
    network of its own shape (the harder slopes' own ppo.yml entries add features the green one lacks), and both
    starts train with the same recipe, budget and seed. A given teacher run's config.yml says its recipe; the
    per-seed teachers train with ppo.yml's green entry."""
    if config.teacher is not None:
        run = read_config(config_dir_of(resolve_model_path(config.teacher)))
        if "hyperparams" in run and "n_envs" in run:
            return {**run["hyperparams"], "n_envs": run["n_envs"], "normalize": run.get("normalize", False)}
    return load_hyperparams("ppo", SKI_ID)


def run_curriculum(config: CurriculumConfig | None = None, progress: Progress | None = None) -> CurriculumResult:
    config = config or CurriculumConfig()
    task = replace(
        ski_task(config.slope, config.budget, config.eval_every, config.eval_episodes, config.test_episodes),
        hyperparams=student_hyperparams(config),
        metric=config.metric,
        target=config.target,
    )
    result = CurriculumResult(config)
    jobs = [(config, task, seed, progress is not None) for seed in config.seeds]
    for runs in run_jobs(_run_seed, jobs, config.workers):
        for condition, run in runs.items():
            result.runs.setdefault(condition, []).append(run)
    return result


def _run_seed(config: CurriculumConfig, task: LearningTask, seed: int, report: bool) -> dict[str, dict[str, Any]]:
    """Every condition of one seed (one job: its green teacher is trained, when missing, by one process only)."""
    progress = print_progress if report else None
    runs = {}
    for condition in config.conditions:
        teacher = config.teacher or ski_teacher(seed, config.teachers_root)
        init = None if condition == "scratch" else _from_teacher(teacher, condition)
        runs[condition] = train_to_target(task, seed, progress, init).to_dict()
    return runs


def write_curriculum_report(result: CurriculumResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    slope = result.config.slope
    name = BENCH_NAME if slope == "blue" else f"{BENCH_NAME}_{slope}"
    return publish(
        name, f"Curriculum transfer: green to {slope}", result.to_markdown(), result.to_dict(), out_dir, readme
    )


def _from_teacher(teacher_run: Path, parts: str) -> Callable[[Any, Any], object]:
    teacher = load_agent(teacher_run, device="cpu")
    return lambda model, venv: transfer_policy(teacher, model, venv, parts)


LABELS = {"scratch": "from scratch", "all": "from green, whole policy", "body": "from green, hidden layers only"}


def _format(c: CurriculumConfig, value: float) -> str:
    return f"{value:.0%}" if c.metric == "clean" else f"{value:.1f}"


def _metric_name(c: CurriculumConfig) -> str:
    return "clean rate" if c.metric == "clean" else "return"


def _table(result: CurriculumResult) -> str:
    c = result.config
    rows = []
    for condition, runs in result.runs.items():
        steps = [r["steps_to_target"] for r in runs if r["reached"]]
        first = [r["curve"][0]["score"] for r in runs if r["curve"]]
        best = [r["best"]["score"] for r in runs if r["best"]]
        tests = [t for t in ((r["test_at_target"] or r["final_model_on_test"]) for r in runs) if t]
        test = [t["clean_rate"] if c.metric == "clean" else t["mean_return"] for t in tests]
        rows.append(
            [
                LABELS[condition],
                f"{len(steps)}/{len(runs)}",
                f"{format_rate(statistics.median(steps))}" if steps else f"> {format_rate(c.budget)}",
                _format(c, statistics.fmean(first)) if first else "-",
                f"{_format(c, statistics.fmean(best))} ± {_format(c, statistics.pstdev(best))}" if best else "-",
                _format(c, statistics.fmean(test)) if test else "-",
            ]
        )
    header = [
        f"{c.slope} skier",
        f"reached {_format(c, c.target)}" if c.metric == "clean" else f"reached return {c.target:g}",
        "steps to target (median)",
        f"{_metric_name(c)} at {format_rate(c.eval_every)} steps",
        f"best validation {_metric_name(c)}",
        f"test {_metric_name(c)} ({c.test_episodes} courses)",
    ]
    return markdown_table(header, rows)


def _curves(result: CurriculumResult) -> str:
    """Mean validation score at each validation step, every condition side by side (a seed that stopped
    at the target keeps its last value)."""
    c = result.config
    points = list(range(c.eval_every, c.budget + 1, c.eval_every))
    rows = []
    for condition, runs in result.runs.items():
        cells = []
        for step in points:
            values = [_score_at(r["curve"], step + c.eval_every // 2) for r in runs]
            values = [v for v in values if v is not None]
            cells.append(_format(c, statistics.fmean(values)) if values else "-")
        rows.append([LABELS[condition], *cells])
    return markdown_table([f"validation {_metric_name(c)} at", *(format_rate(s) for s in points)], rows)


def _score_at(curve: list[dict[str, Any]], step: int) -> float | None:
    """The last validation score at or before ``step`` (validations fall just after each rollout boundary)."""
    before = [point["score"] for point in curve if point["steps"] <= step]
    return before[-1] if before else None


def _note(c: CurriculumConfig) -> str:
    target = (
        f"stops when {c.target:.0%} of them are clean"
        if c.metric == "clean"
        else f"stops when their mean return reaches {c.target:g} (a clean run scores about 205 on blue, 245 on black)"
    )
    return (
        f"How to read it: seeds {list(c.seeds)}; each run trains PPO on {c.slope} with the main job's recipe "
        f"(`agents/hyperparams/ppo.yml`, 32 native envs) for at most {format_rate(c.budget)} steps, validated every "
        f"{format_rate(c.eval_every)} steps on {c.eval_episodes} held-out {c.slope} courses, and {target}; "
        f"the model at the target (or the last one) then skis "
        f"{c.test_episodes} test courses. The transferred skiers start from the green teacher of their seed "
        "(3M green steps, not counted here: the curriculum's cost is paid on the easier slope); 'hidden layers "
        "only' keeps the teacher's layers and observation statistics but starts the action and value heads afresh."
        + (" Zero-shot, the green teachers ski no blue course cleanly." if c.slope == "blue" else "")
    )
