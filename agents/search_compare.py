"""Every search method on the same space, backend and budget, over many seeds: the anytime comparison.

The quantity compared is the one NAS-Bench-201 reports: after ``n`` evaluated configurations, the best
validation accuracy found so far, and the *test* accuracy of that configuration (what a user would deploy).
For each method, the median and interquartile range over seeds, at every ``n`` (a curve) and at the budgets
of the table. DARTS evaluates one configuration; its row states what its super-network cost, in trainings.

Written: ``<name>.csv`` (every seed's curve), ``<name>.png`` (the curves), TensorBoard scalars (one run per
method, so TensorBoard overlays them), and ``<name>.md`` / ``<name>.json`` plus the README section through
:func:`agents.benchmarks.report.publish`.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.processes import run_jobs
from agents.search import METHODS, SearchOutcome, run_search
from trends.automl.table import load_table
from trends.files import atomic_write, atomic_write_text

REPORT_NAME = "automl_search"


@dataclass(frozen=True)
class CompareConfig:
    """What a comparison runs."""

    space: str = "mnist1d-arch"  # the search space (its table is the backend)
    methods: tuple[str, ...] = METHODS  # the methods compared
    seeds: int = 10  # seeds 0..seeds-1 per method
    budget: int = 200  # configurations evaluated per search (repeats included)
    budgets: tuple[int, ...] = (50, 100, 200)  # where the table reports the curves
    workers: int = 2  # processes (one torch thread each)
    backend: str = "table"  # "table" or "train"


@dataclass
class Curves:
    """Every seed's anytime curve of one method: (seeds, budget) arrays, NaN past a search that stopped early."""

    method: str
    best_val: np.ndarray
    test: np.ndarray
    equivalent_trainings: list[float] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def at(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Each seed's (best val, its test) after ``n`` evaluations, or after its last one if it stopped before."""
        idx = np.minimum(n, self._lengths()) - 1
        rows = np.arange(len(idx))
        return self.best_val[rows, idx], self.test[rows, idx]

    def _lengths(self) -> np.ndarray:
        return np.maximum(1, np.sum(~np.isnan(self.best_val), axis=1))


def run_compare(config: CompareConfig, log: Callable[[str], None] | None = None) -> dict[str, Curves]:
    """Run every (method, seed) search of ``config`` in ``config.workers`` processes (in memory: a comparison's
    record is its CSV) and gather their curves by method."""
    jobs = [(method, seed) for method in config.methods for seed in range(config.seeds)]
    outcomes: dict[str, list[SearchOutcome]] = {method: [] for method in config.methods}
    for outcome in _outcomes(config, jobs):
        outcomes[outcome.method].append(outcome)
        if log:
            best = outcome.best
            log(
                f"{outcome.method:>9} seed {outcome.seed}: best val {best.val_accuracy:.4f} (test "
                f"{best.test_accuracy:.4f}) after {len(outcome.records)} configurations, {outcome.seconds:.1f} s"
            )
    return {method: _curves(method, runs, config.budget) for method, runs in outcomes.items()}


def _outcomes(config: CompareConfig, jobs: list[tuple[str, int]]) -> Iterator[SearchOutcome]:
    """The searches' outcomes in job order, run here (one worker) or in fresh processes."""
    return run_jobs(_run_one, [(config, method, seed) for method, seed in jobs], config.workers)


def _run_one(config: CompareConfig, method: str, seed: int) -> SearchOutcome:
    return run_search(config.space, method, config.budget, seed=seed, backend=config.backend, storage="memory")


def _curves(method: str, runs: Sequence[SearchOutcome], budget: int) -> Curves:
    runs = sorted(runs, key=lambda o: o.seed)
    best_val = np.full((len(runs), budget), np.nan)
    test = np.full((len(runs), budget), np.nan)
    for row, outcome in enumerate(runs):
        n = min(budget, len(outcome.anytime))
        best_val[row, :n], test[row, :n] = outcome.anytime[:n, 0], outcome.anytime[:n, 1]
    return Curves(method, best_val, test, [o.equivalent_trainings for o in runs], [o.stopped for o in runs])


# -- reporting -------------------------------------------------------------------------------------------------


def write_compare_report(
    curves: dict[str, Curves],
    config: CompareConfig,
    out_dir: Path,
    readme: Path | None = None,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the CSV, PNG, TensorBoard scalars and markdown table of a comparison; return where they went."""
    out_dir = Path(out_dir)
    csv_path, png_path = out_dir / f"{REPORT_NAME}.csv", out_dir / f"{REPORT_NAME}.png"
    atomic_write_text(csv_path, curves_csv(curves))
    atomic_write(png_path, lambda f: plot_curves(curves, config, f))
    if tensorboard_dir is not None:
        write_tensorboard(curves, Path(tensorboard_dir))
    markdown = compare_markdown(curves, config, png_path.name)
    data = {
        "config": asdict(config),
        "machine": machine_info(),
        "curves": csv_path.name,  # every seed's curve
        "methods": {method: _summary(c, config.budgets) for method, c in curves.items()},
    }
    written = publish(REPORT_NAME, "AutoML search methods on the tabular benchmark", markdown, data, out_dir, readme)
    return {**written, "csv": csv_path, "png": png_path, "tensorboard": tensorboard_dir}


def _summary(c: Curves, budgets: Sequence[int]) -> dict[str, Any]:
    """Quartiles over seeds at each budget, in fractions, and what each seed cost and why it stopped."""
    at = {}
    for b in budgets:
        val, test = c.at(b)
        at[str(b)] = {
            "val_quartiles": np.percentile(val, [25, 50, 75]).round(4).tolist(),
            "test_quartiles": np.percentile(test, [25, 50, 75]).round(4).tolist(),
            "val_worst": round(float(np.min(val)), 4),
        }
    trainings = [round(t, 2) for t in c.equivalent_trainings]
    return {"at_budget": at, "equivalent_trainings": trainings, "stopped": c.stopped}


def curves_csv(curves: dict[str, Curves]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "seed", "evaluations", "best_val_accuracy", "test_accuracy_of_best"])
    for method, c in curves.items():
        for seed in range(c.best_val.shape[0]):
            for n in range(c.best_val.shape[1]):
                if not np.isnan(c.best_val[seed, n]):
                    writer.writerow([method, seed, n + 1, f"{c.best_val[seed, n]:.4f}", f"{c.test[seed, n]:.4f}"])
    return out.getvalue()


def _median_iqr(values: np.ndarray) -> str:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return f"{100 * q50:.2f} [{100 * q25:.2f}, {100 * q75:.2f}]"


def compare_markdown(curves: dict[str, Curves], config: CompareConfig, png_name: str) -> str:
    """The README's table: per method and budget, median [IQR] over seeds of the best validation accuracy found
    and of its test accuracy (percent), with the table's optimum and its share of better configurations."""
    table = load_table(config.space)
    _, optimum = table.best()
    all_val = np.array([record.val_accuracy for _, record in table])
    header = ["method"] + [f"val @{b}" for b in config.budgets] + [f"test @{b}" for b in config.budgets]
    header += [f"worst val @{config.budgets[-1]}", f"top % @{config.budgets[-1]}"]
    rows = []
    for method, c in curves.items():
        vals_tests = [c.at(b) for b in config.budgets]
        last_val = vals_tests[-1][0]
        top = np.median([100 * np.mean(all_val > v) for v in last_val])
        name = method
        if method == "darts":
            name = f"darts ({np.median(c.equivalent_trainings):.0f} trainings)"
        cells = [_median_iqr(v) for v, _ in vals_tests] + [_median_iqr(t) for _, t in vals_tests]
        rows.append([name, *cells, f"{100 * np.min(last_val):.2f}", f"{top:.1f}"])
    lines = [
        f"{len(table)} architectures of `{config.space}`; budget = configurations evaluated (a repeated one "
        "costs a unit but no training); median "
        f"[interquartile range] over {config.seeds} seeds, in percent. Optimum of the table: validation "
        f"{100 * optimum.val_accuracy:.2f}, its test {100 * optimum.test_accuracy:.2f}; median architecture "
        f'{100 * np.median(all_val):.2f}. "top %": share of the table\'s architectures with a higher validation '
        'accuracy than the one found (0 = the optimum); "worst": the worst seed\'s best.',
        "",
        markdown_table(header, rows),
        "",
        f"![anytime curves]({'docs/bench/' + png_name})",
        "",
        f"`.venv/bin/python scripts/search.py compare --seeds {config.seeds} --budget {config.budget}`; "
        f"{format_machine(machine_info())}.",
    ]
    return "\n".join(lines)


def plot_curves(curves: dict[str, Curves], config: CompareConfig, file: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = load_table(config.space)
    _, optimum = table.best()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    x = np.arange(1, config.budget + 1)
    for method, c in curves.items():
        for ax, values in zip(axes, (c.best_val, c.test), strict=True):
            if method == "darts":
                point = np.nanmedian(values[:, 0])
                ax.plot([np.median(c.equivalent_trainings)], [100 * point], "k*", markersize=10, label=method)
                continue
            q25, q50, q75 = 100 * _quartiles(values)
            (line,) = ax.plot(x, q50, label=method)
            ax.fill_between(x, q25, q75, color=line.get_color(), alpha=0.15)
    for ax, title, ref in zip(
        axes,
        ("best validation accuracy", "its test accuracy"),
        (optimum.val_accuracy, optimum.test_accuracy),
        strict=True,
    ):
        ax.axhline(100 * ref, color="grey", linestyle="--", linewidth=1, label="table optimum")
        ax.set_xscale("log")
        ax.set_xlabel("configurations evaluated")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    fig.suptitle(f"{config.space}: median and interquartile range over {config.seeds} seeds")
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=100)
    plt.close(fig)


def _quartiles(values: np.ndarray) -> np.ndarray:
    """(3, budget) quartiles over seeds, NaN where no seed has a value (no warning for those columns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "All-NaN slice encountered"
        return np.nanpercentile(values, [25, 50, 75], axis=0)


def write_tensorboard(curves: dict[str, Curves], root: Path) -> None:
    """One TensorBoard run per method with the median and quartiles of both curves against evaluations (a method
    that evaluated fewer configurations, DARTS, has points only where it has values)."""
    from torch.utils.tensorboard import SummaryWriter

    for method, c in curves.items():
        writer = SummaryWriter(log_dir=str(root / method))
        try:
            for name, values in (("best_val_accuracy", c.best_val), ("test_accuracy_of_best", c.test)):
                quartiles = _quartiles(values)
                for n in range(values.shape[1]):
                    if np.isnan(quartiles[1, n]):
                        continue
                    for label, q in zip(("q25", "median", "q75"), quartiles[:, n], strict=True):
                        writer.add_scalar(f"search/{name}_{label}", float(q), n + 1)
        finally:
            writer.close()
