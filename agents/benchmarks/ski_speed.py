"""How fast the ski env steps, measured against Gymnasium's CartPole-v1 in the same run.

Absolute steps per second depend on the machine; a ratio to CartPole (the env every RL user knows the speed
of) measured in the same process, minutes apart, mostly does not. So every configuration is timed for the
ski env and for CartPole with the same number of steps, the same seeds and the same loop, and the report
states the ratio. The targets come from the issue that asked for this benchmark:

* the single env's step costs at most 2x CartPole's (``gym.make``, default wrappers, resets included);
* the native vector env at 1024 skiers delivers at least a quarter of CartPole's vector throughput.

Method, and why:

* actions are drawn before the clock starts (from a seeded generator) so sampling is not timed;
* each repeat makes a fresh env, resets it with that repeat's seed and runs a few untimed warm-up steps (the
  first step of a ``gym.make`` env runs the passive env checker), then times ``steps`` calls to ``step()``
  with ``time.perf_counter``; the single env resets on episode end inside the timed loop, the vector envs
  autoreset, so resets are paid as a user pays them;
* ski and CartPole repeats alternate, and which of the two goes first alternates from repeat to repeat, so a
  burst of machine noise hits both alike; the report gives the median over repeats and the min-max spread;
* peak memory is measured in a fresh process per configuration, so no configuration inherits
  another's peak.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  registers the trendgym/ ids, also in a spawned process that unpickles our functions
from agents.benchmarks.report import (
    format_machine,
    format_rate,
    machine_info,
    markdown_table,
    publish,
)

BENCH_NAME = "ski_speed"  # names the docs/bench files and the README markers
SKI_ID = "trendgym/Ski-v0"
CARTPOLE_ID = "CartPole-v1"
SINGLE_COST_TARGET = 2.0  # the ski step may cost at most this many CartPole steps
VECTOR_THROUGHPUT_TARGET = 0.25  # share of CartPole's vector throughput the ski vector env must reach...
VECTOR_TARGET_SIZE = 1024  # ...at this many skiers
ACTION_CYCLE = 256  # distinct pre-drawn action batches a vector run cycles through (bounds their memory)

Progress = Callable[[str], None]
_REPO_ROOT = Path(__file__).resolve().parents[2]  # where a child process finds the packages


@dataclass(frozen=True)
class SkiSpeedConfig:
    """What to time; the defaults are the published run (about 2 minutes on a 2-core machine)."""

    repeats: int = 5  # timed repeats of every configuration; the report gives their median and range
    steps: int = 10_000  # calls to step() per repeat (a vector step counts once here, n times in steps/s)
    vector_sizes: tuple[int, ...] = (1, 64, VECTOR_TARGET_SIZE)  # skiers (and carts) per native vector env
    sync_size: int | None = 64  # skiers in Gymnasium's SyncVectorEnv, for context; None leaves it out
    seed: int = 0  # repeat r resets the envs and draws its actions with seed + r
    warmup: int = 100  # untimed steps before each timed run
    memory: bool = True  # measure the peak RSS of every configuration in its own process
    memory_steps: int = 2_000  # steps run in that process (covers an episode, so resets are included)

    def __post_init__(self) -> None:
        checks = [
            (self.repeats >= 1, f"repeats must be at least 1, got {self.repeats}"),
            (self.steps >= 1, f"steps must be at least 1, got {self.steps}"),
            (self.warmup >= 0, f"warmup must be non-negative, got {self.warmup}"),
            (self.memory_steps >= 1, f"memory_steps must be at least 1, got {self.memory_steps}"),
            (all(n >= 1 for n in self.vector_sizes), f"vector sizes must be at least 1, got {self.vector_sizes}"),
            (self.sync_size is None or self.sync_size >= 1, f"sync_size must be at least 1, got {self.sync_size}"),
            (self.seed >= 0, f"seed must be non-negative, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def seeds(self) -> list[int]:
        return [self.seed + r for r in range(self.repeats)]


@dataclass(frozen=True)
class Setup:
    """One configuration: an env id made one way (``single`` = ``gym.make``, else a ``vectorization_mode``)."""

    env_id: str
    mode: str  # "single", "vector_entry_point" or "sync"
    num_envs: int = 1

    @property
    def name(self) -> str:
        env = "ski" if self.env_id == SKI_ID else "cartpole"
        return f"{env}/single" if self.mode == "single" else f"{env}/{self.mode}/{self.num_envs}"


@dataclass
class Timing:
    """The timed repeats of one setup, and its peak memory."""

    setup: Setup
    steps: int
    seconds: list[float] = field(default_factory=list)
    peak_rss_mib: float | None = None  # highest resident memory of a fresh process that ran this setup
    baseline_rss_mib: float | None = None  # the same process's peak after imports, before making the env

    @property
    def rates(self) -> list[float]:
        """Env steps per second of each repeat (a vector step of n envs is n env steps)."""
        return [self.setup.num_envs * self.steps / s for s in self.seconds]

    @property
    def rate(self) -> float:
        """Median env steps per second."""
        return statistics.median(self.rates)

    @property
    def us_per_call(self) -> float:
        """Microseconds per call to ``step()`` at the median rate (per env step for the single env).

        Derived from :attr:`rate` rather than as its own median so that the two always agree (with an even
        number of repeats the median of times is not the reciprocal of the median of rates).
        """
        return self.setup.num_envs / self.rate * 1e6

    def to_dict(self) -> dict[str, Any]:
        rates = self.rates
        return {
            "name": self.setup.name,
            "env_id": self.setup.env_id,
            "mode": self.setup.mode,
            "num_envs": self.setup.num_envs,
            "steps_per_repeat": self.steps,
            "seconds": self.seconds,
            "steps_per_second": {"median": self.rate, "min": min(rates), "max": max(rates), "all": rates},
            "us_per_call_median": self.us_per_call,
            "peak_rss_mib": self.peak_rss_mib,
            "baseline_rss_mib": self.baseline_rss_mib,
        }


@dataclass
class Comparison:
    """One row of the report: a ski setup, the CartPole setup it is compared with, and the target if any.

    ``target`` says which ratio the row is about: ``"cost"`` (ski time per step over CartPole's, which must
    stay at most ``threshold``) or ``"throughput"`` (ski steps/s over CartPole's, which must reach at least
    ``threshold``). A row without ``threshold`` is reported without a verdict.
    """

    label: str
    ski: Timing
    cartpole: Timing | None = None
    target: str | None = None
    threshold: float | None = None

    @property
    def throughput_ratio(self) -> float | None:
        """Ski median steps/s over CartPole's."""
        return None if self.cartpole is None else self.ski.rate / self.cartpole.rate

    @property
    def cost_ratio(self) -> float | None:
        """Ski median time per env step over CartPole's (the reciprocal of the throughput ratio)."""
        return None if self.cartpole is None else self.cartpole.rate / self.ski.rate

    def paired_ratios(self) -> list[float]:
        """The ratio of each repeat's interleaved pair, in the target's sense: its spread shows the noise."""
        if self.cartpole is None:
            return []
        pairs = zip(self.ski.seconds, self.cartpole.seconds, strict=True)
        if self.target == "cost":
            return [s / c for s, c in pairs]
        return [c / s for s, c in pairs]  # same steps per repeat, so time ratio = inverse throughput ratio

    @property
    def ratio(self) -> float | None:
        """The ratio the target is about: cost for the single env, throughput for the vector envs."""
        return self.cost_ratio if self.target == "cost" else self.throughput_ratio

    @property
    def passed(self) -> bool | None:
        if self.threshold is None or self.ratio is None:
            return None
        return self.ratio <= self.threshold if self.target == "cost" else self.ratio >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ski": self.ski.setup.name,
            "cartpole": None if self.cartpole is None else self.cartpole.setup.name,
            "throughput_ratio": self.throughput_ratio,
            "cost_ratio": self.cost_ratio,
            "paired_ratios": self.paired_ratios(),
            "target": self.target,
            "threshold": self.threshold,
            "passed": self.passed,
        }


@dataclass
class SkiSpeedResult:
    """Everything one run measured, with where and when."""

    config: SkiSpeedConfig
    comparisons: list[Comparison]
    machine: dict[str, Any]
    date: str

    def timings(self) -> list[Timing]:
        return [t for c in self.comparisons for t in (c.ski, c.cartpole) if t is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": BENCH_NAME,
            "date": self.date,
            "machine": self.machine,
            "config": {
                "repeats": self.config.repeats,
                "steps": self.config.steps,
                "vector_sizes": list(self.config.vector_sizes),
                "sync_size": self.config.sync_size,
                "warmup": self.config.warmup,
                "memory_steps": self.config.memory_steps if self.config.memory else None,
            },
            "seeds": self.config.seeds,
            "configurations": [t.to_dict() for t in self.timings()],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def to_markdown(self) -> str:
        return ski_speed_markdown(self)


def _make(setup: Setup) -> gym.Env | gym.vector.VectorEnv:
    if setup.mode == "single":
        return gym.make(setup.env_id)
    return gym.make_vec(setup.env_id, num_envs=setup.num_envs, vectorization_mode=setup.mode)


def _draw_actions(env: gym.Env | gym.vector.VectorEnv, setup: Setup, steps: int, seed: int) -> list[Any]:
    """The actions of one run, drawn before timing: Python ints for a single env (what ``step`` gets from a
    user's loop), int64 arrays for a vector env, cycling through a bounded set so memory stays small."""
    rng = np.random.default_rng(seed)
    if setup.mode == "single":
        return rng.integers(0, env.action_space.n, size=steps).tolist()
    batches = list(rng.integers(0, env.single_action_space.n, size=(min(steps, ACTION_CYCLE), setup.num_envs)))
    return [batches[i % len(batches)] for i in range(steps)]


def _run(env: gym.Env | gym.vector.VectorEnv, actions: list[Any], single: bool) -> None:
    """The loop being timed, as a user writes it: step, and reset a single env when its episode ends."""
    step = env.step
    if single:
        reset = env.reset
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                reset()
    else:
        for action in actions:
            step(action)


def time_setup(setup: Setup, steps: int, seed: int, warmup: int = 100) -> float:
    """Seconds taken by ``steps`` calls to ``step()`` of a freshly made and reset env (after the warm-up)."""
    env = _make(setup)
    try:
        env.reset(seed=seed)
        single = setup.mode == "single"
        actions = _draw_actions(env, setup, steps, seed)
        if warmup:
            _run(env, actions[:warmup], single)
        start = time.perf_counter()
        _run(env, actions, single)
        return time.perf_counter() - start
    finally:
        env.close()


def _peak_rss_mib() -> float:
    """The peak resident memory of this process in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, not ``getrusage().ru_maxrss``: the kernel folds the
    parent's peak into ``ru_maxrss`` of a process started by fork+exec (what ``spawn`` does), so a child of a
    benchmark that has just run 1024 skiers would report at least the parent's peak. ``VmHWM`` belongs to the
    process's own address space, which exec creates fresh.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB elsewhere


def measure_peak_rss(setup: Setup, steps: int, seed: int) -> tuple[float, float]:
    """Run ``setup`` for ``steps`` steps in this process and return (peak RSS after imports, peak RSS) in MiB.

    Meant for a fresh process (see :func:`peak_rss_in_subprocess`). Both envs import the same modules, so the
    difference between the two numbers is what the env itself adds; the actions are drawn before the
    baseline is read so they do not count as the env's.
    """
    env = _make(setup)
    actions = _draw_actions(env, setup, steps, seed)
    env.close()
    del env
    baseline = _peak_rss_mib()
    env = _make(setup)
    try:
        env.reset(seed=seed)
        _run(env, actions, setup.mode == "single")
    finally:
        env.close()
    return baseline, _peak_rss_mib()


def peak_rss_in_subprocess(setup: Setup, steps: int, seed: int) -> tuple[float, float]:
    """:func:`measure_peak_rss` in a new Python process, so no configuration inherits another's peak.

    A plain subprocess rather than ``multiprocessing``'s spawn: spawn re-runs the caller's main module in the
    child, which breaks callers without an ``if __name__ == "__main__"`` guard (``python -c``, notebooks).
    """
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from agents.benchmarks.ski_speed import Setup, measure_peak_rss; "
        "a = json.loads(sys.argv[2]); "
        "print(json.dumps(measure_peak_rss(Setup(*a['setup']), a['steps'], a['seed'])))"
    )
    args = {"setup": [setup.env_id, setup.mode, setup.num_envs], "steps": steps, "seed": seed}
    done = subprocess.run(
        [sys.executable, "-c", code, str(_REPO_ROOT), json.dumps(args)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring the memory of {setup.name} failed:\n{done.stderr.strip()}")
    baseline, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return baseline, peak


def _comparisons(config: SkiSpeedConfig) -> list[Comparison]:
    """The report's rows, with empty timings: single env, native vector env per size, SyncVectorEnv."""

    def timing(env_id: str, mode: str, n: int = 1) -> Timing:
        return Timing(Setup(env_id, mode, n), config.steps)

    rows = [
        Comparison("single env", timing(SKI_ID, "single"), timing(CARTPOLE_ID, "single"), "cost", SINGLE_COST_TARGET)
    ]
    for n in config.vector_sizes:
        rows.append(
            Comparison(
                f"vector env, {n} {'skier' if n == 1 else 'skiers'}",
                timing(SKI_ID, "vector_entry_point", n),
                timing(CARTPOLE_ID, "vector_entry_point", n),
                "throughput",
                VECTOR_THROUGHPUT_TARGET if n == VECTOR_TARGET_SIZE else None,
            )
        )
    if config.sync_size is not None:
        n = config.sync_size
        rows.append(Comparison(f"SyncVectorEnv, {n} skiers (context)", timing(SKI_ID, "sync", n)))
    return rows


def run_ski_speed(config: SkiSpeedConfig | None = None, progress: Progress | None = None) -> SkiSpeedResult:
    """Time every configuration ``config.repeats`` times, interleaving ski and CartPole, then measure memory."""
    config = config or SkiSpeedConfig()
    say = progress or (lambda message: None)
    rows = _comparisons(config)
    for r, seed in enumerate(config.seeds):
        for row in rows:
            pair = [t for t in (row.ski, row.cartpole) if t is not None]
            for timing in pair if r % 2 == 0 else pair[::-1]:
                timing.seconds.append(time_setup(timing.setup, config.steps, seed, config.warmup))
            rates = ", ".join(f"{t.setup.name} {format_rate(t.rates[-1])}/s" for t in pair)
            say(f"repeat {r + 1}/{config.repeats}: {rates}")
    if config.memory:
        for timing in (t for row in rows for t in (row.ski, row.cartpole) if t is not None):
            timing.baseline_rss_mib, timing.peak_rss_mib = peak_rss_in_subprocess(
                timing.setup, config.memory_steps, config.seed
            )
            say(f"peak memory {timing.setup.name}: {timing.peak_rss_mib:.0f} MiB")
    return SkiSpeedResult(
        config=config,
        comparisons=rows,
        machine=machine_info(),
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _repeats(n: int) -> str:
    return "1 repeat" if n == 1 else f"{n} repeats"


def _spread(timing: Timing) -> str:
    rates = timing.rates
    if len(rates) == 1:
        return format_rate(rates[0])
    return f"{format_rate(timing.rate)} ({format_rate(min(rates))}–{format_rate(max(rates))})"


def _ratio_cell(row: Comparison) -> str:
    if row.ratio is None:
        return "—"
    kind = "cost" if row.target == "cost" else "throughput"
    paired = row.paired_ratios()
    spread = f" ({min(paired):.2f}–{max(paired):.2f})" if len(paired) > 1 else ""
    return f"{kind} {row.ratio:.2f}×{spread}"


def _target_cells(row: Comparison) -> tuple[str, str]:
    if row.threshold is None:
        return "—", "—"
    sign = "≤" if row.target == "cost" else "≥"
    return f"{row.target} {sign} {row.threshold:g}×", "pass" if row.passed else "**FAIL**"


def _us_cell(row: Comparison) -> str:
    return " / ".join(f"{t.us_per_call:.1f}" for t in (row.ski, row.cartpole) if t is not None)


def _memory_cell(row: Comparison) -> str:
    values = [t.peak_rss_mib for t in (row.ski, row.cartpole) if t is not None]
    if any(v is None for v in values):
        return "—"
    return " / ".join(f"{v:.0f}" for v in values)


def ski_speed_markdown(result: SkiSpeedResult) -> str:
    """The report: one row per comparison, medians with min–max over repeats, then how it was measured."""
    header = [
        "configuration",
        "ski steps/s",
        "CartPole steps/s",
        "µs per step() (ski / CartPole)",
        "ski ÷ CartPole",
        "target",
        "result",
        "peak RSS MiB (ski / CartPole)",
    ]
    rows = []
    for row in result.comparisons:
        rows.append(
            [
                row.label,
                _spread(row.ski),
                "—" if row.cartpole is None else _spread(row.cartpole),
                _us_cell(row),
                _ratio_cell(row),
                *_target_cells(row),
                _memory_cell(row),
            ]
        )
    config = result.config
    notes = [
        f"Steps/s are env steps (a vector step of n envs counts n), median over {_repeats(config.repeats)} of "
        f"{config.steps:,} `step()` calls each, min–max in brackets; ratios are of medians, their brackets the "
        "range of the per-repeat ratios of interleaved ski/CartPole pairs. Single envs come from `gym.make` "
        "with default wrappers and reset inside the timed loop; vector envs from `gym.make_vec` "
        "(`vector_entry_point`, or `sync` for the context row) with built-in autoreset.",
    ]
    baselines = [t.baseline_rss_mib for t in result.timings() if t.baseline_rss_mib is not None]
    if baselines:
        notes.append(
            f"Peak RSS: a fresh process per configuration running {config.memory_steps:,} steps of it (about "
            f"{statistics.median(baselines):.0f} MiB of that is Python, numpy and gymnasium after import)."
        )
    native = {c.ski.setup.num_envs: c.ski for c in result.comparisons if c.ski.setup.mode == "vector_entry_point"}
    sync = next((c.ski for c in result.comparisons if c.ski.setup.mode == "sync"), None)
    if sync is not None and sync.setup.num_envs in native:
        notes.append(
            f"At {sync.setup.num_envs} skiers the native vector env steps "
            f"{native[sync.setup.num_envs].rate / sync.rate:.1f}× as fast as Gymnasium's `SyncVectorEnv` of the "
            "single env."
        )
    notes.append(
        f"Run {result.date} on {format_machine(result.machine)}; seeds {', '.join(map(str, config.seeds))}; "
        f"{_repeats(config.repeats)}. Regenerate with `.venv/bin/python scripts/bench.py ski`."
    )
    return markdown_table(header, rows) + "\n\n" + "\n\n".join(notes) + "\n"


def write_ski_speed_report(result: SkiSpeedResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    """Write ``ski_speed.md`` and ``ski_speed.json`` into ``out_dir`` (atomically) and the README section;
    see :func:`agents.benchmarks.report.publish` for what it returns."""
    return publish(BENCH_NAME, "Ski env speed", result.to_markdown(), result.to_dict(), out_dir, readme)
