"""Does a learning agent find better compressions than the baselines, at the same budget of evaluated networks?

(a) Pruning (AMC, He et al. 2018): each zoo network pruned to half its FLOPs by the RL agent (TD3, and DDPG as in
AMC), uniform pruning (one episode), random search and Optuna's TPE, every search 300 episodes;
the best configuration by validation accuracy is then fine-tuned. (b) Quantization (HAQ, Wang et al. 2019): the
weights within a tenth of their float32 size, by the RL agent, uniform bits (the most the budget allows), random
search and TPE.

Every search is repeated over ``seeds`` (the search's and the agent's seed, and the fine-tuning's); the zoo
networks are fixed (trained once, cached). Numbers are mean ± sample standard deviation over the seeds, and the
worst seed (min), since a search is run once in practice.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.compression.pruning import ALGOS, DEFAULT_EPISODES, prune_model
from agents.compression.quantization import quantize_model
from agents.compression.report import Row
from trends.compression.zoo import DEFAULT_CACHE, ZOO, load_trained

BENCH_NAME = "compression_search"
METHODS = ("rl", "uniform", "random", "tpe")  # of both searches
AMC_REFERENCE = (
    "AMC (He et al. 2018) reports its agent about 2.1 points of accuracy above uniform pruning at half the FLOPs; "
    "its networks have tens of layers to allocate, ours 2 or 3 groups"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompressionSearchConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # of each search, its agent and the fine-tuning
    episodes: int = DEFAULT_EPISODES  # evaluated networks per search (uniform evaluates one)
    prune_models: tuple[str, ...] = ("mnist1d-cnn", "digits-mlp")  # zoo networks to prune
    preserve: float = 0.5  # share of the FLOPs a pruned network keeps at most
    fine_tune_epochs: int = 3
    quantize_models: tuple[str, ...] = ("mnist1d-cnn",)  # zoo networks to quantize
    size_budget: float = 0.1  # share of the float32 weight bytes
    rl_algos: tuple[str, ...] = ("td3", "ddpg")  # the RL agent's algorithms; each is one row
    cache_dir: Path | None = None  # the zoo's cache (None: runs/compression)

    def __post_init__(self) -> None:
        checks = [
            (bool(self.seeds) and all(s >= 0 for s in self.seeds), f"seeds must be >= 0, got {self.seeds}"),
            (self.episodes >= 1, f"episodes must be >= 1, got {self.episodes}"),
            (set(self.prune_models) <= set(ZOO), f"prune_models must be among {tuple(ZOO)}"),
            (set(self.quantize_models) <= set(ZOO), f"quantize_models must be among {tuple(ZOO)}"),
            (set(self.rl_algos) <= set(ALGOS), f"rl_algos must be among {ALGOS}, got {self.rl_algos}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def methods(self) -> list[tuple[str, str]]:
        """``(method, algo)`` pairs in the tables' order: one RL row per algorithm, then the baselines."""
        return [("rl", algo) for algo in self.rl_algos] + [(m, "td3") for m in METHODS if m != "rl"]


def label(method: str, algo: str) -> str:
    return f"rl ({algo})" if method == "rl" else method


@dataclass
class Run:
    """One search on one network with one seed: what the chosen network scores and costs."""

    task: str  # "prune" or "quantize"
    model: str
    method: str  # label: "rl (td3)", "uniform"...
    seed: int
    val_accuracy: float  # of the chosen network, as the search saw it (not fine-tuned)
    test_accuracy: float  # the same network's
    fine_tuned_test_accuracy: float | None  # pruning only
    cost_ratio: float  # FLOPs ratio (pruning) or size ratio of float32 (quantization)
    parameters: int
    size_bytes: int
    latency_b1_ms: float
    latency_b256_ms: float
    seconds: float  # the whole call: search, fine-tuning, measuring
    mean_episode_val: float  # mean validation accuracy of the search's episodes: how well the searcher learned
    chosen: Any  # preserve ratios or bits


@dataclass
class CompressionSearchResult:
    config: CompressionSearchConfig
    runs: list[Run] = field(default_factory=list)
    originals: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> the original's report row
    machine: dict[str, Any] = field(default_factory=lambda: {**machine_info(), "torch": torch.__version__})

    def runs_of(self, task: str, model: str, method: str) -> list[Run]:
        return [r for r in self.runs if (r.task, r.model, r.method) == (task, model, method)]

    def summary(self, task: str, model: str, method: str, key: str) -> dict[str, float]:
        """Mean, sample std (NaN for one seed) and min of ``key`` over the seeds."""
        values = [float(getattr(r, key)) for r in self.runs_of(task, model, method)]
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        return {"mean": statistics.fmean(values), "std": std, "min": min(values)}

    def to_dict(self) -> dict[str, Any]:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        summaries = {}
        for task, models, keys in self._tables():
            for model in models:
                for method, algo in self.config.methods():
                    name = label(method, algo)
                    summaries[f"{task}/{model}/{name}"] = {k: self.summary(task, model, name, k) for k in keys}
        return {
            "config": config,
            "runs": [asdict(r) for r in self.runs],
            "originals": self.originals,
            "summaries": summaries,
            "machine": self.machine,
        }

    def _tables(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        prune_keys = ("val_accuracy", "test_accuracy", "fine_tuned_test_accuracy", "cost_ratio", "latency_b1_ms")
        quant_keys = ("val_accuracy", "test_accuracy", "cost_ratio", "size_bytes")
        return [("prune", self.config.prune_models, prune_keys), ("quantize", self.config.quantize_models, quant_keys)]

    def to_markdown(self) -> str:
        c = self.config
        parts = [
            f"Seeds {', '.join(map(str, c.seeds))}; {c.episodes} evaluated networks per search (uniform: 1). "
            "Cells: mean ± std over the seeds (min). The searches keep the network of best validation accuracy.",
            "",
        ]
        for model in c.prune_models:
            parts += [f"#### Pruning {model} to {c.preserve:g} of its FLOPs", "", _table(self, "prune", model), ""]
        parts += [_pruning_note(self), ""]
        for model in c.quantize_models:
            title = f"#### Quantizing {model} to {c.size_budget:g} of its float32 size"
            parts += [title, "", _table(self, "quantize", model), ""]
        parts += [_quantization_note(self), ""]
        parts.append(
            "Latency: median of a forward call at batch 1 and at batch 256, one torch thread, on a machine shared "
            "with other jobs; a pruned network's batch-1 call is dominated by per-layer overheads, its batch-256 "
            "call shows the FLOPs it saved. "
            f"Machine: {format_machine(self.machine)}, torch {self.machine['torch']}."
        )
        return "\n".join(parts) + "\n"


def _cell(s: dict[str, float], fmt: str = "{:.3f}") -> str:
    spread = "" if math.isnan(s["std"]) else f" ± {fmt.format(s['std'])}"
    return f"{fmt.format(s['mean'])}{spread} ({fmt.format(s['min'])})"


def _mean(runs: list[Run], key: str, fmt: str = "{:.3f}") -> str:
    return fmt.format(statistics.fmean(getattr(r, key) for r in runs))


LATENCY_KEYS = ("latency_b1_ms", "latency_b256_ms")


def _latencies(batch_1: float, batch_256: float) -> str:
    return f"{batch_1:.3f} / {batch_256:.3f}"


def _table(result: CompressionSearchResult, task: str, model: str) -> str:
    """One table: the original, then a row per method. The episodes' mean validation accuracy tells how well a
    searcher learned where to look; the best one is what it hands on."""
    prune = task == "prune"
    original = result.originals[model if prune else f"quantize/{model}"]
    header = ["method", "val acc (search)", "episodes' mean val", "test acc"]
    header += ["test acc, fine-tuned", "FLOPs ratio", "parameters", "latency b1 / b256 (ms)"] if prune else []
    header += [] if prune else ["size ratio", "bits (best seed)"]
    first = [
        "original" if prune else "original fp32",
        f"{original['val_accuracy']:.3f}",
        "",
        f"{original['score']:.3f}",
    ]
    first += (
        ["", "1.000", f"{original['parameters']:,}", _latencies(original["latency_b1_ms"], original["latency_b256_ms"])]
        if prune
        else ["1.000", ""]
    )
    rows = [[*first, ""]]
    for method, algo in result.config.methods():
        name = label(method, algo)
        runs = result.runs_of(task, model, name)
        cells = [name, _cell(result.summary(task, model, name, "val_accuracy")), _mean(runs, "mean_episode_val")]
        cells.append(_cell(result.summary(task, model, name, "test_accuracy")))
        if prune:
            cells.append(_cell(result.summary(task, model, name, "fine_tuned_test_accuracy")))
            latency = _latencies(*(statistics.fmean(getattr(r, k) for r in runs) for k in LATENCY_KEYS))
            cells += [_mean(runs, "cost_ratio"), _mean(runs, "parameters", "{:,.0f}"), latency]
        else:
            best = max(runs, key=lambda r: r.val_accuracy)
            cells += [_mean(runs, "cost_ratio"), "/".join(map(str, best.chosen))]
        rows.append([*cells, _mean(runs, "seconds", "{:.1f}")])
    return markdown_table([*header, "seconds"], rows)


def _gain(result: CompressionSearchResult, task: str, model: str, key: str, method: str, baseline: str) -> float:
    return (result.summary(task, model, method, key)["mean"] - result.summary(task, model, baseline, key)["mean"]) * 100


def _pruning_note(result: CompressionSearchResult) -> str:
    lines = [f"{AMC_REFERENCE}. Here, in points of test accuracy (mean over seeds):"]
    rl = [label("rl", a) for a in result.config.rl_algos]
    for model in result.config.prune_models:
        for name in rl:
            before = _gain(result, "prune", model, "test_accuracy", name, "uniform")
            after = _gain(result, "prune", model, "fine_tuned_test_accuracy", name, "uniform")
            best = _gain(result, "prune", model, "test_accuracy", name, "tpe")
            lines.append(
                f"- {model}, {name}: {before:+.1f} vs uniform before fine-tuning, {after:+.1f} after; "
                f"{best:+.1f} vs TPE before fine-tuning."
            )
    return "\n".join(lines)


def _quantization_note(result: CompressionSearchResult) -> str:
    lines = ["HAQ's claim is that mixed precision beats uniform bits at the same size. Here (test accuracy):"]
    for model in result.config.quantize_models:
        for algo in result.config.rl_algos:
            name = label("rl", algo)
            gain = _gain(result, "quantize", model, "test_accuracy", name, "uniform")
            over_random = _gain(result, "quantize", model, "test_accuracy", name, "random")
            lines.append(f"- {model}, {name}: {gain:+.1f} points vs uniform bits, {over_random:+.1f} vs random.")
    lines.append(
        "\nk-bit sizes are the packed sizes the bits stand for: the weights stay float32 at run time (simulated), "
        "so latency does not change."
    )
    return "\n".join(lines)


def _prune_run(config: CompressionSearchConfig, model: str, method: str, algo: str, seed: int) -> tuple[Run, Any]:
    started = time.perf_counter()
    outcome = prune_model(
        model, "flops", config.preserve, method, algo, config.episodes, seed, config.fine_tune_epochs,
        cache_dir=config.cache_dir,
    )  # fmt: skip
    final = outcome.report.rows[-1]
    run = _run(
        "prune", model, label(method, algo), seed, started, outcome, final,
        fine_tuned_test_accuracy=outcome.fine_tuned_test_accuracy,
        cost_ratio=outcome.flops_ratio,
        size_bytes=final.size_bytes,
        chosen={k: round(v, 4) for k, v in outcome.preserve_ratios.items()},
    )  # fmt: skip
    return run, outcome


def _quantize_run(config: CompressionSearchConfig, model: str, method: str, algo: str, seed: int) -> tuple[Run, Any]:
    started = time.perf_counter()
    outcome = quantize_model(model, method, config.size_budget, algo, config.episodes, seed, cache_dir=config.cache_dir)
    run = _run(
        "quantize", model, label(method, algo), seed, started, outcome, outcome.report.rows[-1],
        fine_tuned_test_accuracy=None,
        cost_ratio=outcome.size_ratio,
        size_bytes=outcome.size_bytes,
        chosen=list(outcome.bits),
    )  # fmt: skip
    return run, outcome


def _run(task: str, model: str, method: str, seed: int, started: float, outcome: Any, row: Row, **specific: Any) -> Run:
    """The record of one search: what every task reports alike, and the task's ``specific`` fields."""
    return Run(
        task=task,
        model=model,
        method=method,
        seed=seed,
        val_accuracy=outcome.val_accuracy,
        test_accuracy=outcome.test_accuracy,
        parameters=row.parameters,
        latency_b1_ms=row.latency_b1_ms,
        latency_b256_ms=row.latency_b256_ms,
        seconds=time.perf_counter() - started,
        mean_episode_val=statistics.fmean(e.val_accuracy for e in outcome.episodes),
        **specific,
    )


def run_compression_search(
    config: CompressionSearchConfig | None = None, progress: Progress | None = None
) -> CompressionSearchResult:
    """Every search of ``config`` on every network and seed (see the module docstring)."""
    config = config or CompressionSearchConfig()
    torch.set_num_threads(1)
    result = CompressionSearchResult(config)
    cache = config.cache_dir or DEFAULT_CACHE
    tasks = [("prune", m, _prune_run) for m in config.prune_models]
    tasks += [("quantize", m, _quantize_run) for m in config.quantize_models]
    for task, model, run_one in tasks:
        for method, algo in config.methods():
            for seed in config.seeds:
                run, outcome = run_one(config, model, method, algo, seed)
                result.runs.append(run)
                key = model if task == "prune" else f"quantize/{model}"
                if key not in result.originals:
                    val = load_trained(model, cache).val_accuracy
                    result.originals[key] = {**asdict(outcome.report.rows[0]), "val_accuracy": val}
                if progress is not None:
                    fine_tuned = (
                        ""
                        if run.fine_tuned_test_accuracy is None
                        else f", fine-tuned {run.fine_tuned_test_accuracy:.3f}"
                    )
                    progress(
                        f"{task} {model} {run.method} seed {seed}: val {run.val_accuracy:.3f}, "
                        f"test {run.test_accuracy:.3f}{fine_tuned}, cost {run.cost_ratio:.3f} ({run.seconds:.1f} s)"
                    )
    return result


def write_compression_search_report(
    result: CompressionSearchResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Compression search: RL agents against uniform, random and TPE"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
