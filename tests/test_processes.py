"""Jobs side by side in spawned processes: results in job order, one torch thread in each worker."""

import os

import pytest

from agents.processes import run_jobs


def _job(x: int) -> tuple[int, int, int]:
    import torch

    return x * x, os.getpid(), torch.get_num_threads()


def test_jobs_run_in_fresh_processes_with_one_torch_thread_and_come_back_in_order():
    results = list(run_jobs(_job, [(x,) for x in range(6)], workers=2))
    assert [square for square, _, _ in results] == [x * x for x in range(6)]
    assert os.getpid() not in {pid for _, pid, _ in results}
    assert {threads for _, _, threads in results} == {1}


def test_one_worker_runs_the_jobs_here_with_one_torch_thread_and_restores_the_count():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = list(run_jobs(_job, [(1,), (2,)], workers=1))
        assert [(pid, n) for _, pid, n in results] == [(os.getpid(), 1)] * 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_zero_workers_is_refused():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        list(run_jobs(_job, [(1,)], workers=0))
