"""Tabular benchmarks: every configuration of a search space trained once, shipped as a small CSV file.

A table turns a search that would train hundreds of networks into hundreds of dictionary lookups, the way
NAS-Bench-101 and NAS-Bench-201 made architecture search reproducible on a laptop: an environment step costs
microseconds, so RL controllers, evolution and Bayesian optimisation can be compared over many seeds, and a
result on the table is exactly what training would have given (each entry *is* a training, done once with the
space's fixed recipe and seed).

Files live in ``trends/automl/tables/``: ``<space>.csv`` (one row per configuration: its canonical JSON and the
record of its training) and ``<space>.json`` (how it was built: the command, the recipe, the versions, the
machine's total training time). ``scripts/search.py build-table --space <space>`` writes both; it trains through
an :class:`~trends.automl.evaluator.Evaluator`, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from trends.automl.evaluator import Evaluation, Evaluator, canonical, config_key
from trends.automl.space import Config, SearchSpace, get_space
from trends.files import atomic_write_text

TABLES_DIR = Path(__file__).parent / "tables"
COLUMNS = (
    "config",
    "val_accuracy",
    "test_accuracy",
    "val_loss",
    "epochs",
    "seconds",
    "parameters",
    "flops",
    "diverged",
)
CHUNK = 8  # configurations per task handed to a worker: progress is reported as chunks finish
_NUMBER_TYPES = {"val_accuracy": float, "test_accuracy": float, "val_loss": float, "seconds": float}


def config_json(config: Mapping[str, Any]) -> str:
    """The key a table stores a canonical configuration under (the same string as :meth:`SearchSpace.key`, without
    the validation walk, for callers that hold a canonical configuration already)."""
    return json.dumps(dict(config), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class TableInfo:
    """How a table was built: enough to rebuild it and to judge whether its numbers still apply."""

    space: str
    dataset: str
    recipe: dict[str, Any]
    entries: int
    training_seconds: float  # the sum of every entry's training time on the machine that built it
    command: str
    versions: dict[str, str]
    machine: str


class Table:
    """The records of every configuration of one search space, looked up by configuration.

    :param space: the space the table covers
    :param records: one record per configuration, in enumeration order
    :param info: how the table was built
    """

    def __init__(self, space: SearchSpace, records: Mapping[str, Evaluation], info: TableInfo) -> None:
        self.space = space
        self.info = info
        self._records = dict(records)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[tuple[Config, Evaluation]]:
        """(configuration, record) pairs in enumeration order."""
        for text, record in self._records.items():
            yield json.loads(text), record

    def lookup(self, config: Mapping[str, Any]) -> Evaluation:
        """The record of ``config``; ValueError when it is not a configuration of the space. A canonical
        configuration (what :meth:`SearchSpace.choose` builds) is found without re-validating it."""
        record = self._records.get(config_json(config))
        if record is None:
            record = self._records.get(self.space.key(config))  # ValueError, with the reason, if invalid
            if record is None:
                raise ValueError(f"{config_json(config)} is not in the table of {self.space.name!r}")
        return record

    def best(self, metric: str = "val_accuracy") -> tuple[Config, Evaluation]:
        """The configuration with the highest ``metric`` (the optimum a search on this table can reach)."""
        text, record = max(self._records.items(), key=lambda item: getattr(item[1], metric))
        return json.loads(text), record

    # -- files ---------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, space: str | SearchSpace, folder: Path = TABLES_DIR) -> Table:
        """The table of ``space`` shipped in ``folder``; ValueError naming the build command when there is none."""
        space = get_space(space) if isinstance(space, str) else space
        csv_path, info_path = table_paths(space.name, folder)
        if not csv_path.exists() or not info_path.exists():
            raise ValueError(
                f"no table for space {space.name!r} in {folder}; build it with "
                f"`python scripts/search.py build-table --space {space.name}`"
            )
        info = TableInfo(**json.loads(info_path.read_text(encoding="utf-8")))
        with open(csv_path, newline="", encoding="utf-8") as f:
            records = {row["config"]: _record_from_row(space, row) for row in csv.DictReader(f)}
        return cls(space, records, info)

    def save(self, folder: Path = TABLES_DIR) -> tuple[Path, Path]:
        """Write ``<space>.csv`` and ``<space>.json`` atomically; return their paths."""
        csv_path, info_path = table_paths(self.space.name, folder)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for text, record in self._records.items():
            writer.writerow({"config": text, **{c: _format(getattr(record, c)) for c in COLUMNS[1:]}})
        atomic_write_text(csv_path, out.getvalue())
        atomic_write_text(info_path, json.dumps(self.info.__dict__, indent=2) + "\n")
        return csv_path, info_path


def table_paths(space: str, folder: Path = TABLES_DIR) -> tuple[Path, Path]:
    return folder / f"{space}.csv", folder / f"{space}.json"


@cache
def load_table(space: str) -> Table:
    """The shipped table of ``space``, read once per process (environments and searches share it)."""
    return Table.load(space)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _record_from_row(space: SearchSpace, row: Mapping[str, str]) -> Evaluation:
    spec, recipe = space.build(json.loads(row["config"]))
    values: dict[str, Any] = {c: _NUMBER_TYPES.get(c, int)(row[c]) for c in COLUMNS[1:] if c != "diverged"}
    return Evaluation(
        key=config_key(space.dataset, spec, recipe),
        dataset=space.dataset,
        spec=spec,
        recipe=recipe,
        diverged=row["diverged"] == "1",
        cached=True,
        **values,
    )


# -- building ------------------------------------------------------------------------------------------------


def build_table(
    space: SearchSpace,
    storage: str | Path | None = None,
    workers: int = 1,
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Table:
    """Train every configuration of ``space`` (those the storage does not hold yet) with ``workers`` processes
    and return the table of all of them. Interrupt it at any time: what finished is in the storage, and the next
    call trains only the rest.

    :param progress: called with (done, total) as configurations finish
    """
    configs = list(space.enumerate())
    evaluator = Evaluator(storage)
    missing = [c for c in configs if evaluator.lookup(space.dataset, *space.build(c)) is None]
    done = len(configs) - len(missing)
    if progress:
        progress(done, len(configs))
    chunks = [missing[i : i + CHUNK] for i in range(0, len(missing), CHUNK)]
    for finished in _train_chunks(space, evaluator, chunks, workers):
        done += finished
        if progress:
            progress(done, len(configs))
    records = {}
    for config in configs:
        found = evaluator.lookup(space.dataset, *space.build(config))
        assert found is not None, "every configuration was trained above"
        records[config_json(config)] = found
    recipe = canonical(space.build(configs[0])[1])
    info = TableInfo(
        space=space.name,
        dataset=space.dataset,
        recipe=recipe,
        entries=len(records),
        training_seconds=round(sum(r.seconds for r in records.values()), 1),
        command=command,
        versions=_versions(),
        machine=f"{platform.machine()} {platform.processor() or platform.system()}, {multiprocessing.cpu_count()} CPUs",
    )
    return Table(space, records, info)


def _train_chunks(space: SearchSpace, evaluator: Evaluator, chunks: list[list[Config]], workers: int) -> Iterator[int]:
    """Train the chunks, in this process or in ``workers`` fresh ones; yield each chunk's size as it finishes."""
    if workers == 1:
        for chunk in chunks:
            for config in chunk:
                evaluator.evaluate(space.dataset, *space.build(config))
            yield len(chunk)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch state inherited by fork
    with context.Pool(workers) as pool:
        yield from pool.imap_unordered(_train_chunk, [(space.name, evaluator.url, chunk) for chunk in chunks])


def _train_chunk(item: tuple[str, str, list[Config]]) -> int:
    """A worker's task: train a chunk of configurations of a registered space into the storage at ``url``."""
    import torch

    from trends.training import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
    name, url, configs = item
    space = get_space(name)
    evaluator = _worker_evaluator(url)
    for config in configs:
        evaluator.evaluate(space.dataset, *space.build(config))
    return len(configs)


@cache
def _worker_evaluator(url: str) -> Evaluator:
    return Evaluator(url)


def _versions() -> dict[str, str]:
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
