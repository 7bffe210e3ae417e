"""Automated feature engineering as RL against the standard methods: every method of
:mod:`agents.feature_search` on every dataset, the same budget of steps for the RL agent and random search, over
seeds.

Per dataset and method: the cross-validated score of the best feature set found (train rows) and its test score,
their gain over the raw features, the size of the set, the evaluations spent and the wall time; on the synthetic
dataset, the share of seeds whose set holds each known feature (``mul(x0,x1)``, ``div(x2,x3)``) and the anytime
curve of the best score. ``none`` and ``expand-reduce`` draw no random numbers, so they run once.

Searches run in ``workers`` fresh processes (one torch thread each), with an in-memory score cache per search, so
no search is served another's scores and the wall times compare.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.feature_search import FEATURE_METHODS, RL_SETTINGS, FeatureSearchOutcome, run_feature_search
from agents.processes import run_jobs
from trends.features.datasets import FEATURE_DATASETS, KNOWN_FEATURES, load_tabular

BENCH_NAME = "feature_engineering"
DETERMINISTIC = ("none", "expand-reduce")  # run for the first seed only
# Steps per search: room for the agent to learn, within about 20 minutes of two free cores (the published run took
# 58 under a load of 8-10). A step costs 6 ms (ridge, in closed form) on synthetic and diabetes, 40 ms on
# breast_cancer and 65 ms on wine (logistic regression) on a free core.
BUDGETS: dict[str, int] = {"synthetic": 3000, "diabetes": 3000, "breast_cancer": 2000, "wine": 1500}
CHECKPOINTS = (100, 250, 500, 1000, 2000, 3000)  # where the synthetic anytime curve is reported
Progress = Callable[[str], None]
MODEL_TEXT = {
    "linear": "linear (ridge regression, or logistic regression for classes, on standardised features)",
    "gbm": "gbm (a small histogram gradient boosting)",
}


@dataclass(frozen=True)
class FeatureEngineeringConfig:
    datasets: tuple[str, ...] = FEATURE_DATASETS
    methods: tuple[str, ...] = FEATURE_METHODS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    budgets: dict[str, int] = field(default_factory=lambda: dict(BUDGETS))  # steps per search, by dataset
    model: str = "linear"
    workers: int = 2

    def __post_init__(self) -> None:
        checks = [
            (set(self.datasets) <= set(FEATURE_DATASETS), f"datasets must be among {FEATURE_DATASETS}"),
            (set(self.methods) <= set(FEATURE_METHODS), f"methods must be among {FEATURE_METHODS}"),
            (bool(self.seeds), "give at least one seed"),
            (all(self.budgets.get(d, 0) >= 1 for d in self.datasets), "every dataset needs a budget >= 1"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def jobs(self) -> list[tuple[str, str, int]]:
        """``(dataset, method, seed)`` of every search, the longest first (so two workers finish together)."""
        jobs = [
            (dataset, method, seed)
            for dataset in self.datasets
            for method in self.methods
            for seed in (self.seeds[:1] if method in DETERMINISTIC else self.seeds)
        ]
        cost = {"wine": 65, "breast_cancer": 40}  # ms per step, roughly
        return sorted(jobs, key=lambda j: -(j[1] not in DETERMINISTIC) * cost.get(j[0], 6) * self.budgets[j[0]])


@dataclass
class FeatureRun:
    """One search's result, as the report keeps it."""

    dataset: str
    method: str
    seed: int
    budget: int
    expressions: list[str]
    score: float
    test_score: float
    raw_score: float
    raw_test_score: float
    evaluations: int
    computed: int
    seconds: float
    found: dict[str, bool]
    anytime: list[float]  # the best score after each evaluation
    extra: dict[str, Any]

    @classmethod
    def of(cls, o: FeatureSearchOutcome) -> FeatureRun:
        return cls(
            o.dataset,
            o.method,
            o.seed,
            o.budget,
            list(o.expressions),
            o.score,
            o.test_score,
            o.raw_score,
            o.raw_test_score,
            o.evaluations,
            o.computed,
            o.seconds,
            o.found,
            [round(float(v), 5) for v in o.anytime],
            o.extra,
        )


@dataclass
class FeatureEngineeringResult:
    config: FeatureEngineeringConfig
    runs: list[FeatureRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def of(self, dataset: str, method: str) -> list[FeatureRun]:
        return sorted((r for r in self.runs if r.dataset == dataset and r.method == method), key=lambda r: r.seed)

    def to_markdown(self) -> str:
        parts = [_intro(self.config)]
        parts += [_table(self, dataset) for dataset in self.config.datasets]
        if "synthetic" in self.config.datasets:
            parts.append(_anytime(self))
        parts.append(_footer(self))
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "rl_settings": RL_SETTINGS,
            "runs": [{**asdict(r), "anytime": improvements(r.anytime)} for r in self.runs],
            "machine": self.machine,
        }


def improvements(anytime: list[float]) -> list[list[float]]:
    """A best-so-far curve as the ``[step, best]`` pairs where it rises (and its first step): the whole curve, in a
    few pairs instead of thousands of numbers."""
    return [[step, value] for step, value in enumerate(anytime, 1) if step == 1 or value != anytime[step - 2]]


def run_feature_engineering(
    config: FeatureEngineeringConfig | None = None, progress: Progress | None = None
) -> FeatureEngineeringResult:
    config = config or FeatureEngineeringConfig()
    say = progress or (lambda message: None)
    result = FeatureEngineeringResult(config)
    for outcome in _outcomes(config):
        result.runs.append(FeatureRun.of(outcome))
        say(
            f"{outcome.dataset} {outcome.method} seed {outcome.seed}: cv {outcome.score:.4f} (raw "
            f"{outcome.raw_score:.4f}), test {outcome.test_score:.4f}, {len(outcome.expressions)} features, "
            f"{outcome.evaluations} evaluations, {outcome.seconds:.0f} s"
        )
    return result


def write_feature_engineering_report(
    result: FeatureEngineeringResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Feature engineering as RL: MaskablePPO against random search, expand-reduce and the raw features"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _outcomes(config: FeatureEngineeringConfig) -> Iterator[FeatureSearchOutcome]:
    return run_jobs(_run_one, [(config, *job) for job in config.jobs()], config.workers)


def _run_one(config: FeatureEngineeringConfig, dataset: str, method: str, seed: int) -> FeatureSearchOutcome:
    budget = config.budgets[dataset]
    return run_feature_search(dataset, method, budget, seed=seed, model=config.model, storage="memory")


# -- the report ------------------------------------------------------------------------------------------------


def _mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.pstdev(values):.{digits}f}"


def _intro(config: FeatureEngineeringConfig) -> str:
    budgets = ", ".join(f"{d} {config.budgets[d]}" for d in config.datasets)
    return (
        f"Model: {MODEL_TEXT.get(config.model, config.model)}, 5-fold cross-validated R2 or accuracy on the train "
        "rows; test: the same model fitted on every train row, "
        f"scored on the held-out quarter. Steps per search for rl and random: {budgets}. Cells: mean ± standard "
        f"deviation over seeds {', '.join(map(str, config.seeds))} (none and expand-reduce are deterministic: one "
        "run). Gain: over every raw feature (the `none` row), cross-validated / test."
    )


def _table(result: FeatureEngineeringResult, dataset: str) -> str:
    known = KNOWN_FEATURES.get(dataset, ())
    header = ["method", "cv score", "test score", "gain cv / test", "features", "evaluations", "seconds"]
    header += [f"found `{name}`" for name in known]
    rows = []
    for method in result.config.methods:
        runs = result.of(dataset, method)
        if not runs:
            continue
        gain = statistics.fmean(r.score - r.raw_score for r in runs)
        test_gain = statistics.fmean(r.test_score - r.raw_test_score for r in runs)
        row = [
            _label(method, runs),
            _mean_sd([r.score for r in runs]),
            _mean_sd([r.test_score for r in runs]),
            f"{gain:+.3f} / {test_gain:+.3f}",
            f"{statistics.fmean(len(r.expressions) for r in runs):.1f}",
            f"{statistics.fmean(r.evaluations for r in runs):.0f}",
            f"{statistics.fmean(r.seconds for r in runs):.1f}",
        ]
        row += [f"{sum(r.found[name] for r in runs)}/{len(runs)}" for name in known]
        rows.append(row)
    first = result.of(dataset, result.config.methods[0]) or [r for r in result.runs if r.dataset == dataset]
    raw = f"raw features: cv {first[0].raw_score:.3f}, test {first[0].raw_test_score:.3f}" if first else ""
    return f"**{dataset}** ({raw}{_start_note(result, dataset)})\n\n{markdown_table(header, rows)}"


def _start_note(result: FeatureEngineeringResult, dataset: str) -> str:
    """Where rl and random start when the env's slots cannot hold every raw feature (breast_cancer)."""
    searched = [r for r in result.runs if r.dataset == dataset and "start" in r.extra]
    if not searched or len(searched[0].extra["start"]) >= len(load_tabular(dataset).feature_names):
        return ""
    run = searched[0]
    return (
        f"; rl and random start from the {len(run.extra['start'])} of highest mutual information, cv "
        f"{run.extra['start_score']:.3f}"
    )


def _label(method: str, runs: list[FeatureRun]) -> str:
    if method == "expand-reduce":
        extra = runs[0].extra
        kept = "raw + selected" if extra.get("with_raw") else "selected only"
        return f"expand-reduce ({extra.get('candidates', '?')} candidates; {kept})"
    return method


def _anytime(result: FeatureEngineeringResult) -> str:
    budget = result.config.budgets["synthetic"]
    points = [n for n in CHECKPOINTS if n < budget] + [budget]
    rows = []
    for method in ("rl", "random"):
        runs = result.of("synthetic", method)
        if not runs:
            continue
        cells = []
        for n in points:
            values = [r.anytime[min(n, len(r.anytime)) - 1] for r in runs if r.anytime]
            cells.append(f"{np.median(values):.3f}")
        rows.append([method, *cells])
    if not rows:
        return ""
    table = markdown_table(["synthetic: median best cv after", *map(str, points)], rows)
    return f"{table}\n\nThe anytime curves: the best cross-validated R2 found after n steps, median over the seeds."


def _footer(result: FeatureEngineeringResult) -> str:
    return (
        f"Seconds: wall time of one search in one of {result.config.workers} worker processes (one thread each) on "
        "a machine shared with other jobs. Regenerate with `.venv/bin/python scripts/bench.py feature-engineering`. "
        f"Machine: {format_machine(result.machine)}."
    )
