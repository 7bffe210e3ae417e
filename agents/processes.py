"""Independent jobs run side by side in fresh processes: how the benchmarks use both cores.

One process per core, each with one torch thread (more threads than cores make small networks far slower), and
``spawn`` rather than ``fork``: a forked child inherits torch's thread pool and random state from the parent, a
spawned one starts clean, so a job gives the same result in a worker as in the parent.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")


def run_jobs(function: Callable[..., Result], jobs: Sequence[tuple[Any, ...]], workers: int) -> Iterator[Result]:
    """``function(*job)`` for every job, yielded in job order, always with one torch thread: here when ``workers``
    is 1 (the caller's thread count restored afterwards), otherwise in ``workers`` spawned processes
    (``function`` and the jobs must pickle: a module-level function and plain data)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1:
        import torch

        threads = torch.get_num_threads()
        _one_torch_thread()
        try:
            for job in jobs:
                yield function(*job)
        finally:
            torch.set_num_threads(threads)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_torch_thread) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        for future in futures:
            yield future.result()


def print_progress(message: str) -> None:
    """A worker's progress line: straight to stderr, flushed, since a callable of the parent cannot follow a job
    into its process."""
    print(message, file=sys.stderr, flush=True)


def _one_torch_thread() -> None:
    import torch

    from trends.training import TORCH_THREADS

    torch.set_num_threads(TORCH_THREADS)
