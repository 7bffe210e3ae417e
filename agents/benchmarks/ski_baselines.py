"""How well the non-learning policies ski each slope: the floor (random) and the hand-written heuristic skier,
on course seeds no training ever uses. Trained agents are judged against these numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.evaluation import EvaluationResult, compare_with_baselines
from agents.seeds import TEST_SEED, test_seeds
from envs.ski.course import SLOPES

BENCH_NAME = "ski_baselines"
ENV_IDS = ("trendgym/Ski-v0", "trendgym/SkiContinuous-v0")


@dataclass
class SkiBaselinesResult:
    episodes: int
    results: list[EvaluationResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "seeds": f"{TEST_SEED}..{TEST_SEED + self.episodes - 1}",
            "machine": self.machine,
            "results": [
                {"policy": r.name, "env": r.env_id, "env_kwargs": r.env_kwargs, **r.summary()} for r in self.results
            ],
        }

    def to_markdown(self) -> str:
        header = ["slope", "env", "policy", "return (mean ± std)", "clean runs", "gates passed", "falls", "crashes"]
        rows = []
        for r in self.results:
            m = r.metric_means()
            rows.append(
                [
                    r.env_kwargs["slope"],
                    r.env_id.removeprefix("trendgym/"),
                    r.name,
                    f"{r.mean_return:.1f} ± {r.std_return:.1f}",
                    f"{m['clean']:.0%}",
                    f"{m['gates_passed']:.1f} / {r.n_gates}",
                    f"{m['falls']:.2f}",
                    f"{m['tree_hits']:.2f}",
                ]
            )
        note = (
            f"{self.episodes} episodes per row, one per course seed {TEST_SEED}..{TEST_SEED + self.episodes - 1} "
            "(seeds no training uses); the random policy's own generator is seeded with the first seed. "
            f"Machine: {format_machine(self.machine)}. Regenerate with `.venv/bin/python scripts/bench.py baselines`."
        )
        return markdown_table(header, rows) + "\n\n" + note + "\n"


def run_ski_baselines(episodes: int = 50, slopes: tuple[str, ...] = tuple(SLOPES)) -> SkiBaselinesResult:
    """Evaluate random and heuristic on every slope, Discrete and continuous, on the same test seeds."""
    result = SkiBaselinesResult(episodes)
    seeds = test_seeds(episodes)
    for slope in slopes:
        for env_id in ENV_IDS:
            result.results += compare_with_baselines(None, env_id, {"slope": slope}, seeds)
    return result


def write_ski_baselines_report(result: SkiBaselinesResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    return publish(BENCH_NAME, "Ski baselines", result.to_markdown(), result.to_dict(), out_dir, readme)
