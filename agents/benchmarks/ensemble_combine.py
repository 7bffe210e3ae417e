"""How the combination methods compare on the member pools: test accuracy of the RL selection against the best
single member, the uniform average, Caruana selection and stacking (and the other rules), on digits and MNIST-1D.

The pools are fixed (trained once, :func:`trends.ensemble.load_pool`); the seeds drive what is random in a
method: the RL agent, Caruana's bags, stacking's cross-validation folds. The deterministic rules give the same
number for every seed, and the table says so (a spread of 0).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.ensemble.combination import CARUANA, METHODS, Combined, combine, single_best
from trends.ensemble import DEFAULT_CACHE, load_pool

BENCH_NAME = "ensemble_combine"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class EnsembleCombineConfig:
    datasets: tuple[str, ...] = ("digits", "mnist1d")
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    rl_algo: str = "maskableppo"
    rl_timesteps: int | None = None  # None: agents/hyperparams/<algo>.yml's budget
    cache_dir: Path = DEFAULT_CACHE


@dataclass
class MethodRun:
    dataset: str
    method: str
    seed: int
    val_accuracy: float
    test_accuracy: float
    test_log_loss: float
    members_used: int
    seconds: float


@dataclass
class EnsembleCombineResult:
    config: EnsembleCombineConfig
    best_single: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> the member and its scores
    runs: list[MethodRun] = field(default_factory=list)
    test_sizes: dict[str, int] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def of(self, dataset: str, method: str) -> list[MethodRun]:
        return [r for r in self.runs if r.dataset == dataset and r.method == method]

    def to_markdown(self) -> str:
        parts = [_table(self, dataset) for dataset in self.config.datasets]
        parts += [_NOTE.format(caruana=_caruana_text()), _footer(self)]
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        config = {**asdict(self.config), "cache_dir": str(self.config.cache_dir)}
        return {
            "config": config,
            "best_single": self.best_single,
            "runs": [asdict(r) for r in self.runs],
            "machine": self.machine,
        }


def run_ensemble_combine(
    config: EnsembleCombineConfig | None = None, progress: Progress | None = None
) -> EnsembleCombineResult:
    config = config or EnsembleCombineConfig()
    say = progress or (lambda message: None)
    result = EnsembleCombineResult(config)
    for dataset in config.datasets:
        pool = load_pool(dataset, config.cache_dir)
        best = single_best(pool)
        result.best_single[dataset] = asdict(best)
        result.test_sizes[dataset] = len(pool.y_test)
        for method in config.methods:
            for seed in config.seeds:
                started = time.perf_counter()
                combined = combine(pool, method, seed, config.rl_algo, config.rl_timesteps)
                result.runs.append(_run(dataset, method, seed, combined, time.perf_counter() - started))
                val, test = combined.val_accuracy, combined.test_accuracy
                say(f"{dataset} {method} seed {seed}: val {val:.3f}, test {test:.3f}")
    return result


def write_ensemble_combine_report(
    result: EnsembleCombineResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Ensembles of the member pools: RL selection against the rules"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _run(dataset: str, method: str, seed: int, combined: Combined, seconds: float) -> MethodRun:
    return MethodRun(
        dataset,
        method,
        seed,
        combined.val_accuracy,
        combined.test_accuracy,
        combined.test_log_loss,
        combined.members_used,
        seconds,
    )


def _mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def _table(result: EnsembleCombineResult, dataset: str) -> str:
    best = result.best_single[dataset]
    rows = [
        [
            best["name"],
            f"{best['val_accuracy']:.3f}",
            f"{best['test_accuracy']:.3f}",
            "",
            f"{best['test_log_loss']:.3f}",
            "1",
            "",
        ]
    ]
    for method in result.config.methods:
        runs = result.of(dataset, method)
        gains = [r.test_accuracy - best["test_accuracy"] for r in runs]
        rows.append(
            [
                method,
                _mean_std([r.val_accuracy for r in runs]),
                _mean_std([r.test_accuracy for r in runs]),
                f"{statistics.fmean(gains):+.3f} (worst {min(gains):+.3f})",
                _mean_std([r.test_log_loss for r in runs]),
                f"{statistics.fmean(r.members_used for r in runs):.1f}",
                f"{statistics.fmean(r.seconds for r in runs):.2f}",
            ]
        )
    header = [
        "ensemble",
        "val accuracy",
        "test accuracy",
        "vs best single (test)",
        "test log-loss",
        "members used",
        "seconds",
    ]
    n = result.test_sizes[dataset]
    title = f"**{dataset}** ({n} test samples: one is {100 / n:.2f} points)"
    return f"{title}\n\n{markdown_table(header, rows)}"


def _caruana_text() -> str:
    return (
        f"sorted initialisation with the {CARUANA['sorted_init_n']} best, {CARUANA['bags']} bags of "
        f"{CARUANA['bag_fraction']:.0%} of the members, up to {CARUANA['max_steps']} additions on validation "
        f"{CARUANA['metric']}"
    )


_NOTE = (
    "How to read it: every method fits on the validation split of the same 18-member pool (scikit-learn models and "
    "networks, weak ones included on purpose) and is scored on the test split; mean ± standard deviation over the "
    "seeds, which drive the RL agent (MaskablePPO on `trendgym/EnsembleWeighting-v0`, the best ensemble it met by "
    "validation accuracy), Caruana's bags and stacking's folds; the other rules are deterministic. 'best single' is "
    "the member of best validation accuracy. Caruana: {caruana}. Stacking: a logistic regression on every member's "
    "probabilities, fit on the validation split (its val accuracy here is cross-validated). Averaging and voting "
    "give a weak member the same say as a strong one, which costs them where the pool is uneven (MNIST-1D); "
    "selection and stacking learn whom to trust. The RL row's validation accuracy is the best of every ensemble the "
    "agent tried (about a thousand), the most optimistic figure of the table: its fall from validation to test is "
    "the price of that search, as for any selection made on a validation split."
)


def _footer(result: EnsembleCombineResult) -> str:
    return f"Seeds {list(result.config.seeds)}. Machine: {format_machine(result.machine)}."
