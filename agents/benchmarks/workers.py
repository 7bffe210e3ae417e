"""Worker processes on one study: how long a fixed search takes with 1, 2 and 4 workers, and what the storage
costs per trial.

Two measurements, both on the mnist1d-arch table (an evaluation is a lookup of microseconds, so what is timed is
the workers' own cost: Optuna's sampler, the claims, and the storage's transactions):

* **Workers.** ``budget`` configurations of ``method`` with 1, 2 and 4 worker processes (``agents.workers``, each a
  fresh interpreter with one torch thread) on one study in a SQLite file and in a PostgreSQL server started on
  loopback for the run (:mod:`agents.benchmarks.postgres`, ``fsync`` on, as a real server runs). Timed from the
  first worker's first ask to the last worker's exit from its loop, so the interpreters' start-up (seconds of
  importing torch) is left out; each run is checked for exactly ``budget`` COMPLETE trials and no configuration
  evaluated twice.
* **Storage overhead.** One worker in this process, ``overhead_trials`` trials, in an in-memory storage, a SQLite
  file and the PostgreSQL server: the time per trial, and what each database adds over memory.

Median and min-max over repeats; the repeats of each setting are interleaved with the others' so a burst of load
from another program touches them all alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from agents.benchmarks.postgres import PostgresServer
from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.workers import run_worker
from trends.automl.evaluator import open_storage
from trends.automl.search import CONFIG_ATTR, REPEAT_ATTR

BENCH_NAME = "workers"
STORAGES = ("sqlite", "postgres")
PROCESS_TIMEOUT = 1800  # seconds one worker may take before the run is declared hung

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WorkersBenchConfig:
    space: str = "mnist1d-arch"  # a space with a table: evaluations cost nothing, the workers' overhead shows
    method: str = "random"  # a sampler whose own cost does not grow with the trials, unlike TPE's or GP's
    budget: int = 200  # COMPLETE trials per search
    workers: tuple[int, ...] = (1, 2, 4)  # worker processes per search
    storages: tuple[str, ...] = STORAGES
    repeats: int = 3
    overhead_trials: int = 100  # trials of the single in-process worker that times each storage
    seed: int = 0  # worker w of repeat r uses seed + 100 r + w


@dataclass
class WorkersBenchResult:
    config: WorkersBenchConfig
    wall: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # storage -> workers -> s, per repeat
    per_trial: dict[str, list[float]] = field(default_factory=dict)  # storage (and "memory") -> s per trial
    verified: list[str] = field(default_factory=list)  # runs that did not end with exactly the budget, no repeats
    load: list[float] = field(default_factory=list)  # the 1-minute load average after each measurement
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        return workers_markdown(self)


def run_workers_bench(config: WorkersBenchConfig | None = None, progress: Progress | None = None) -> WorkersBenchResult:
    config = config or WorkersBenchConfig()
    say = progress or (lambda line: None)
    result = WorkersBenchResult(config)
    with tempfile.TemporaryDirectory(prefix="trendgym-workers-") as folder, contextlib.ExitStack() as stack:
        server = stack.enter_context(PostgresServer(fsync=True)) if "postgres" in config.storages else None

        def url_of(storage: str, name: str) -> str:
            if storage in ("memory", "postgres"):
                return server.url if storage == "postgres" else "memory"
            return f"sqlite:///{Path(folder) / f'{name}.db'}"

        for r in range(config.repeats):
            for storage in config.storages:
                for n in config.workers:
                    url = url_of(storage, f"{n}-{r}")
                    study = f"bench:{n}:{r}"
                    seconds = _time_workers(url, study, n, config.seed + 100 * r, config)
                    result.wall.setdefault(storage, {}).setdefault(str(n), []).append(seconds)
                    if not _exact_and_distinct(url, study, config.budget):
                        result.verified.append(f"{storage}, {n} workers, repeat {r}")
                    result.load.append(os.getloadavg()[0])
                    say(f"repeat {r + 1}/{config.repeats}: {storage}, {n} workers: {seconds:.1f} s")
            for storage in ("memory", *config.storages):
                seconds = _time_per_trial(
                    url_of(storage, f"overhead-{r}"), f"overhead:{r}", config.seed + 100 * r, config
                )
                result.per_trial.setdefault(storage, []).append(seconds)
                result.load.append(os.getloadavg()[0])
                say(f"repeat {r + 1}/{config.repeats}: one worker on {storage}: {1e3 * seconds:.1f} ms per trial")
    return result


def _time_workers(url: str, study: str, n: int, seed: int, config: WorkersBenchConfig) -> float:
    """Seconds from the first worker's first ask to the last one's end, ``n`` worker processes on one study."""
    open_storage(url)  # Optuna's tables exist before the workers race to make them
    command = [sys.executable, "-m", "agents.benchmarks.workers", url, study, config.space, config.method]
    workers = [
        subprocess.Popen([*command, str(config.budget), str(seed + w)], stdout=subprocess.PIPE, text=True)
        for w in range(n)
    ]
    spans = []
    for worker in workers:
        out, _ = worker.communicate(timeout=PROCESS_TIMEOUT)
        if worker.returncode != 0:
            raise RuntimeError(f"a benchmark worker failed (exit {worker.returncode}); see its error above")
        spans.append(json.loads(out.strip().splitlines()[-1]))
    return max(s["end"] for s in spans) - min(s["start"] for s in spans)


def _time_per_trial(url: str, study: str, seed: int, config: WorkersBenchConfig) -> float:
    if url != "memory":
        open_storage(url)
    outcome = run_worker(config.space, config.method, config.overhead_trials, study, url, seed=seed)
    return outcome.seconds / config.overhead_trials


def _exact_and_distinct(url: str, study: str, budget: int) -> bool:
    trials = optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    evaluated = [t.user_attrs[CONFIG_ATTR] for t in complete if not t.user_attrs[REPEAT_ATTR]]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    return len(complete) == budget and len(evaluated) == len(set(evaluated)) and not running


def _median_spread(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    values = [v * scale for v in values]
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def workers_markdown(result: WorkersBenchResult) -> str:
    c = result.config
    header = ["storage", *(f"{n} worker{'s' if n > 1 else ''}: s (min-max)" for n in c.workers)]
    rows = []
    for storage in c.storages:
        walls = result.wall[storage]
        one = statistics.median(walls[str(c.workers[0])])
        cells = [_median_spread(walls[str(n)]) for n in c.workers]
        cells = [cells[0]] + [
            f"{cell}, x{one / statistics.median(walls[str(n)]):.2f}"
            for n, cell in zip(c.workers[1:], cells[1:], strict=True)
        ]
        rows.append([storage, *cells])
    memory = statistics.median(result.per_trial["memory"])
    overhead_rows = [
        [
            storage,
            _median_spread(result.per_trial[storage], 1e3),
            "-" if storage == "memory" else f"{1e3 * (statistics.median(result.per_trial[storage]) - memory):.1f}",
        ]
        for storage in ("memory", *c.storages)
    ]
    checked = (
        "every run ended with exactly the budget and no configuration evaluated twice"
        if not result.verified
        else (
            "**runs that did not end with exactly the budget and distinct evaluations: "
            + "; ".join(result.verified)
            + "**"
        )
    )
    load = (
        f" (1-minute load average {min(result.load):.1f}-{max(result.load):.1f} on {result.machine['cpu_count']} cores)"
        if result.load
        else ""
    )
    return "\n".join(
        [
            f"Time to fill a study with {c.budget} COMPLETE trials of `{c.method}` on the {c.space} table "
            f"(seconds, median and min-max of {c.repeats} repeats; xN: speed-up over {c.workers[0]} worker):",
            "",
            markdown_table(header, rows),
            "",
            f"Time per trial of one worker ({c.overhead_trials} trials; ms, median and min-max) and what the "
            "database adds over an in-memory storage:",
            "",
            markdown_table(["storage", "ms per trial (min-max)", "overhead, ms per trial"], overhead_rows),
            "",
            f"Timed from the first worker's first ask to the last worker's end (interpreter start-up excluded); "
            f"{checked}. PostgreSQL 15 on loopback with fsync on; SQLite a file on the same disk. Each trial is "
            "about twenty small transactions (the trial, one per parameter, the claim, the record's attributes, "
            "the heartbeat, the tell) plus fresh reads of the study, so a database's commit latency sets the pace; "
            "a real evaluation (a training of seconds to minutes) dwarfs it. The machine ran other jobs "
            f"meanwhile{load}, so the spread is theirs: the minima are the closest to a quiet machine's numbers. "
            f"`.venv/bin/python scripts/bench.py workers`; {format_machine(result.machine)}.",
        ]
    )


def write_workers_report(result: WorkersBenchResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Worker processes on one study: SQLite and PostgreSQL"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _worker_main(argv: list[str]) -> None:
    """One benchmark worker: run agents.workers.run_worker and print its start and end times as JSON."""
    import torch

    from trends.training import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
    url, study, space, method, budget, seed = argv
    outcome = run_worker(space, method, int(budget), study, url, seed=int(seed))
    end = time.time()
    start = end - outcome.seconds  # the worker's loop, from its first ask: setting up is start-up, not search
    print(json.dumps({"start": start, "end": end, "records": len(outcome.records), "evaluated": outcome.evaluated}))


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
