"""What storing a trained skier's policy in fewer bits saves and costs: five green-slope PPO teachers
(:func:`agents.compression.teachers.ski_teacher`, seeds 0-4), each in fp32, fp16 and int8
(:func:`agents.compression.policies.compress_policy`), measured the same way.

Per teacher and format: the actor's parameters and checkpoint bytes, its median latency at batch 1 and 256 (one
torch thread), the mean return and clean-run rate on the same unseen green courses for every format, and the share
of the states the format's policy visited on which it took the action the fp32 policy takes there. The table gives
mean ± standard deviation over the teachers: a format is judged across several trained agents, not one.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.compression.policies import POLICY_FORMATS, compress_policy, evaluate_with_agreement
from agents.compression.teachers import DEFAULT_ROOT, ENV_ID, ski_teacher
from agents.evaluation import env_of_run
from agents.runs import load_agent
from agents.seeds import TEST_SEED, test_seeds
from trends.compression.measure import measure

BENCH_NAME = "compression_policies"
LATENCY_BATCHES = (1, 256)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompressionPoliciesConfig:
    """What the benchmark runs; ``scripts/bench.py`` should use the same names."""

    teacher_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # one teacher per seed; a missing one is trained (~2 min)
    formats: tuple[str, ...] = POLICY_FORMATS  # fp32 first: every ratio and agreement is taken against it
    episodes: int = 50  # unseen green courses per teacher and format, seeds ``seed``, ``seed + 1``...
    seed: int = TEST_SEED  # the first course seed (agents.seeds: never a training or validation course)
    repeats: int = 30  # timed calls per batch size; the median is reported
    teacher_root: Path = DEFAULT_ROOT  # where the teachers are found (and trained when missing)

    def __post_init__(self) -> None:
        checks = [
            (bool(self.teacher_seeds), "teacher_seeds must name at least one teacher"),
            (
                bool(self.formats) and self.formats[0] == "fp32" and set(self.formats) <= set(POLICY_FORMATS),
                f"formats must start with fp32 and be among {POLICY_FORMATS}, got {self.formats}",
            ),
            (self.episodes >= 1 and self.repeats >= 1, "episodes and repeats must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class FormatRun:
    """One teacher in one format."""

    teacher_seed: int
    format: str
    parameters: int  # every parameter element of the actor (int8: its packed weights and biases)
    size_bytes: int  # the actor's saved state dict
    latency_b1_ms: float  # median of one forward call, batch 1, one torch thread
    latency_b256_ms: float  # the same at batch 256
    return_mean: float  # over the evaluation courses
    return_std: float  # population standard deviation over the courses
    clean_rate: float  # share of courses skied with every gate passed, no fall, no tree
    agreement: float  # share of visited states where the action is fp32's (1 for fp32 itself)


@dataclass
class CompressionPoliciesResult:
    config: CompressionPoliciesConfig
    teachers: dict[int, str] = field(default_factory=dict)  # teacher seed -> run folder
    runs: list[FormatRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=lambda: {**machine_info(), "torch": torch.__version__})

    def runs_of(self, fmt: str) -> list[FormatRun]:
        return [r for r in self.runs if r.format == fmt]

    def ratios(self, fmt: str, key: str) -> list[float]:
        """``key`` of ``fmt`` over fp32's, teacher by teacher (paired: the same network in two formats)."""
        base = {r.teacher_seed: getattr(r, key) for r in self.runs_of("fp32")}
        return [getattr(r, key) / base[r.teacher_seed] for r in self.runs_of(fmt) if base.get(r.teacher_seed)]

    def summary(self, fmt: str) -> dict[str, Any]:
        """Mean and standard deviation over the teachers of every number, and the mean ratio to fp32 of the costs."""
        runs = self.runs_of(fmt)
        keys = [k for k in asdict(runs[0]) if k not in ("teacher_seed", "format")]
        summary: dict[str, Any] = {"format": fmt, "teachers": len(runs)}
        for key in keys:
            summary[key] = _spread([getattr(r, key) for r in runs])
        for key in ("parameters", "size_bytes", "latency_b1_ms", "latency_b256_ms", "return_mean"):
            summary[f"{key}_ratio"] = _spread(self.ratios(fmt, key))
        return summary

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": ENV_ID,
            "env_kwargs": {"slope": "green"},
            "config": {**asdict(self.config), "teacher_root": str(self.config.teacher_root)},
            "course_seeds": [self.config.seed, self.config.seed + self.config.episodes - 1],
            "teachers": {str(seed): path for seed, path in self.teachers.items()},
            "machine": self.machine,
            "summary": [self.summary(fmt) for fmt in self.config.formats],
            "runs": [asdict(r) for r in self.runs],
        }

    def to_markdown(self) -> str:
        return "\n\n".join([_summary_table(self), _teacher_table(self), _how_to_read(self), _setup(self)]) + "\n"


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (None for one value) over the teachers."""
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "std": std}


def _cell(spread: dict[str, float | None], fmt: str, ratio: dict[str, float | None] | None = None) -> str:
    text = fmt.format(spread["mean"])
    if spread["std"] is not None:
        text += " ± " + fmt.format(spread["std"])
    if ratio is not None:
        text += f" ({ratio['mean']:.2f}x)"
    return text


def _summary_table(result: CompressionPoliciesResult) -> str:
    header = [
        "format",
        "parameters",
        "bytes",
        "latency b1 (ms)",
        "latency b256 (ms)",
        "return",
        "clean runs",
        "same action as fp32",
    ]
    rows = []
    for fmt in result.config.formats:
        s = result.summary(fmt)
        rows.append(
            [
                fmt,
                _cell(s["parameters"], "{:,.0f}", s["parameters_ratio"]),
                _cell(s["size_bytes"], "{:,.0f}", s["size_bytes_ratio"]),
                _cell(s["latency_b1_ms"], "{:.3f}", s["latency_b1_ms_ratio"]),
                _cell(s["latency_b256_ms"], "{:.3f}", s["latency_b256_ms_ratio"]),
                _cell(s["return_mean"], "{:.1f}"),
                _cell({k: None if v is None else 100 * v for k, v in s["clean_rate"].items()}, "{:.0f}") + "%",
                _cell({k: None if v is None else 100 * v for k, v in s["agreement"].items()}, "{:.1f}") + "%",
            ]
        )
    return markdown_table(header, rows)


def _teacher_table(result: CompressionPoliciesResult) -> str:
    """Return, clean-run rate and agreement of every teacher in every format: the spread behind the means."""
    formats = result.config.formats
    header = ["teacher seed", *(f"{fmt} return / clean / same" for fmt in formats)]
    rows = []
    for seed in result.teachers:
        runs = {r.format: r for r in result.runs if r.teacher_seed == seed}
        cells = [f"{r.return_mean:.1f} / {r.clean_rate:.0%} / {r.agreement:.1%}" for r in map(runs.get, formats)]
        rows.append([str(seed), *cells])
    return markdown_table(header, rows)


def _how_to_read(result: CompressionPoliciesResult) -> str:
    c = result.config
    return (
        f"**How to read it.** Each cell is the mean ± standard deviation over the {len(result.teachers)} teachers; "
        "a ratio is the format's figure over fp32's, teacher by teacher, then averaged (0.50x: half of fp32's). "
        "fp16 stores the weights in half and computes in float32 (CPU half arithmetic is slow), so it halves the "
        "tensors but pays a cast on every call. int8 is torch's dynamic quantization of the linear layers: int8 "
        "weights, activations quantized on the fly at each call. On a CPU, int8 dynamic quantization can be slower "
        "than float32 at batch 1, where quantizing the activations costs more than the small matrix products it "
        f"speeds up: the latencies here are measured, not assumed.{_int8_latency(result)} The checkpoint of a "
        "64x64 actor is small enough that pickling overhead and int8's per-channel scales take a visible share of "
        "it, so bytes fall by less than the bit widths suggest. Return and clean runs are on the same "
        f"{c.episodes} unseen green courses for every format; 'same action as fp32' is the share of the states the "
        "format's policy visited where it took the action the fp32 policy takes there (one different turn can send "
        "a run to other states, so returns can differ more than the agreement suggests, or less)."
    )


def _int8_latency(result: CompressionPoliciesResult) -> str:
    """What this run measured for int8 against fp32, in words (empty when int8 was not run)."""
    if "int8" not in result.config.formats:
        return ""
    b1, b256 = (statistics.fmean(result.ratios("int8", key)) for key in ("latency_b1_ms", "latency_b256_ms"))
    return f" Here int8 took {b1:.2f}x fp32's time at batch 1 and {b256:.2f}x at batch 256."


def _setup(result: CompressionPoliciesResult) -> str:
    c = result.config
    return (
        f"`{ENV_ID}`, green slope, deterministic actions; teachers: PPO, `agents/hyperparams/ppo.yml` recipe "
        f"(net_arch [64, 64], VecNormalize), seeds {', '.join(map(str, result.teachers))}. Courses: seeds "
        f"{c.seed}-{c.seed + c.episodes - 1}. Latency: median of {c.repeats} calls after 3 warm-up calls, one torch "
        "thread, on a machine shared with other jobs. "
        f"Machine: {format_machine(result.machine)}, torch {result.machine['torch']}. "
        "Regenerate with `.venv/bin/python scripts/bench.py compression-policies`."
    )


def run_teacher(run_dir: Path, teacher_seed: int, config: CompressionPoliciesConfig) -> list[FormatRun]:
    """One teacher in every format of ``config``, on the same courses."""
    agent = load_agent(run_dir, device="cpu")
    env_id, env_kwargs = env_of_run(agent.config)
    seeds = test_seeds(config.episodes, start=config.seed)
    original = compress_policy(agent, "fp32")
    runs = []
    for fmt in config.formats:
        policy = original if fmt == "fp32" else compress_policy(agent, fmt)
        evaluation, agreement = evaluate_with_agreement(policy, original, env_id, env_kwargs, seeds)
        costs = measure(policy.actor, policy.observation_space.shape, config.repeats, LATENCY_BATCHES)
        runs.append(
            FormatRun(
                teacher_seed=teacher_seed,
                format=fmt,
                parameters=costs.parameters,
                size_bytes=costs.size_bytes,
                latency_b1_ms=costs.latency_at(1).median_ms,
                latency_b256_ms=costs.latency_at(256).median_ms,
                return_mean=evaluation.mean_return,
                return_std=evaluation.std_return,
                clean_rate=evaluation.metric_means().get("clean", float("nan")),
                agreement=agreement,
            )
        )
    return runs


def run_compression_policies(
    config: CompressionPoliciesConfig | None = None, progress: Progress | None = None
) -> CompressionPoliciesResult:
    """Every teacher in every format, one after another on one torch thread (a teacher missing under
    ``config.teacher_root`` is trained first, once)."""
    config = config or CompressionPoliciesConfig()
    result = CompressionPoliciesResult(config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in config.teacher_seeds:
            run_dir = ski_teacher(seed, root=config.teacher_root)
            result.teachers[seed] = str(run_dir)
            runs = run_teacher(run_dir, seed, config)
            result.runs += runs
            if progress:
                progress(
                    f"teacher {seed}: "
                    + ", ".join(f"{r.format} return {r.return_mean:.1f} same {r.agreement:.1%}" for r in runs)
                )
    finally:
        torch.set_num_threads(previous_threads)
    return result


def write_compression_policies_report(
    result: CompressionPoliciesResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Policy compression: ski teachers in fp32, fp16 and int8"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
