"""Worker processes on one study (agents/workers.py, `scripts/search.py worker`), on a real PostgreSQL server the
tests start on loopback (the ``postgres_url`` fixture) and on a SQLite file: exactly the budget, no configuration
evaluated twice, and a worker killed with SIGKILL loses nothing it told while its running trial ends FAIL."""

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import assert_one_line_error, load_script, run_main
from optuna.trial import TrialState
from slow_backend import LoggedSlowBackend

from agents.workers import (
    CLAIM_ATTR,
    EVALUATE,
    REPEAT,
    SPENT,
    WAIT,
    WORKER_ATTR,
    WORKER_METHODS,
    StudyView,
    decide,
    run_worker,
)
from trends.automl.evaluator import open_storage
from trends.automl.search import CONFIG_ATTR, REPEAT_ATTR

REPO = Path(__file__).resolve().parents[1]
SEARCH = [sys.executable, str(REPO / "scripts" / "search.py"), "worker"]
PROCESS_TIMEOUT = 120  # seconds; a worker that hangs fails the test instead of the suite

search_script = load_script("search")


@pytest.fixture(params=["postgres", "sqlite"])
def storage(request, tmp_path):
    """A storage URL and how many workers the issue asks of it: 4 on PostgreSQL, 2 on SQLite."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url"), 4
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    open_storage(url)  # Optuna's tables, made once here rather than raced for by the first workers
    return url, 2


def trials_of(url: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False)


def assert_budget_and_no_duplicates(trials, budget: int) -> None:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == budget
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    evaluated = [t.user_attrs[CONFIG_ATTR] for t in complete if not t.user_attrs[REPEAT_ATTR]]
    assert len(evaluated) == len(set(evaluated))  # no configuration evaluated twice
    repeated = {t.user_attrs[CONFIG_ATTR] for t in complete if t.user_attrs[REPEAT_ATTR]}
    assert repeated <= set(evaluated)  # a repeat is served from someone's record


def test_workers_with_the_same_seed_share_the_budget_and_evaluate_each_configuration_once(storage, tmp_path):
    """Every worker proposes the same sequence (uniform, one seed), so every configuration is wanted by all of them
    at once: the claims must let exactly one evaluate it and make the others record repeats. The workers are
    processes forked from this one that run `scripts/search.py worker` (its main): the same program, without
    interpreters importing torch at once on two cores (the command itself: the next test)."""
    url, n_workers = storage
    budget, study = 12, "same-seed"
    argv = ["--study", study, "--storage", url, "--method", "uniform", "--seed", "7"]
    argv += ["--budget", str(budget), "--heartbeat", "1", "--grace", "3", "--quiet"]
    outputs = _fork_workers(argv, n_workers, tmp_path)
    for out in outputs:
        assert f"the study: {budget} of {budget} COMPLETE trials" in out
    trials = trials_of(url, study)
    assert_budget_and_no_duplicates(trials, budget)
    evaluated = sum(int(out.split("this worker: ")[1].split()[0]) for out in outputs)
    assert evaluated == sum(not t.user_attrs[REPEAT_ATTR] for t in trials if t.state == TrialState.COMPLETE)
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) >= 2  # they did share the study


def test_two_workers_on_sqlite_leave_no_failed_trial(tmp_path):
    """Every study of two workers used to end with a FAIL trial: one asked for while the other was evaluating the
    last unit of budget. Now a worker waits, unasked, while the last units are taken, and workers looking for the
    last unit together spread out first. Three studies; two asks in the same instant may still cost one FAIL."""
    failed = 0
    for study in ("tpe-1", "tpe-2", "tpe-3"):
        url = f"sqlite:///{tmp_path / study}.db"
        open_storage(url)
        argv = ["--study", study, "--storage", url, "--method", "tpe", "--budget", "12", "--quiet"]
        _fork_workers(argv, 2, tmp_path)
        trials = trials_of(url, study)
        assert_budget_and_no_duplicates(trials, 12)
        failed += sum(t.state == TrialState.FAIL for t in trials)
    assert failed <= 1


def test_a_worker_asks_for_no_trial_while_the_last_units_are_taken():
    working = StudyView(complete=[_complete("A"), _complete("B")], claims={5: "C"}, working=1)
    assert working.units_taken == 3  # budget 3: the third unit is being evaluated, so asking would end FAIL


def test_the_worker_command_runs_as_a_program():
    argv = [*SEARCH, "--storage", "memory", "--method", "evolution", "--budget", "3", "--seed", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "the study: 3 of 3 COMPLETE trials" in done.stdout and "best validation accuracy" in done.stdout
    assert done.stderr.count("trial ") == 3 and "Warning" not in done.stderr  # a line per trial, no warnings


def _fork_workers(argv: list[str], n: int, tmp_path: Path) -> list[str]:
    """``n`` processes forked from this one, each running `search.py worker` (its main): their standard outputs."""
    context = multiprocessing.get_context("fork")
    paths = [tmp_path / f"worker{i}.out" for i in range(n)]
    workers = [context.Process(target=_script_main, args=(["worker", *argv], path)) for path in paths]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=PROCESS_TIMEOUT)
        assert worker.exitcode == 0
    return [path.read_text() for path in paths]


def _script_main(argv: list[str], out: Path) -> None:
    with open(out, "w") as file, contextlib.redirect_stdout(file):
        code = search_script.main(argv)
    sys.exit(code)


def test_a_killed_worker_keeps_what_it_told_and_its_running_trial_ends_failed(storage, tmp_path):
    """A worker tells two trials, then is killed in the middle of its third evaluation (which would take a
    minute); a worker that comes after it finishes the budget, which takes it past the grace period: the dead
    worker's claim holds a unit of budget until its trial is failed."""
    url, _ = storage
    budget, study, log = 6, "kill", tmp_path / "evaluations.log"
    victim = multiprocessing.get_context("fork").Process(target=_slow_worker, args=(url, study, budget, log))
    victim.start()
    try:
        running, told = _wait_for_the_third_evaluation(url, study, victim.pid, log)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=PROCESS_TIMEOUT)
    finally:
        if victim.is_alive():
            victim.kill()
    assert victim.exitcode == -signal.SIGKILL
    started = time.monotonic()
    survivor = run_worker(
        "mnist1d-arch", "tpe", budget, study, url, seed=2, backend=LoggedSlowBackend(str(log)), heartbeat=1, grace=3
    )
    assert time.monotonic() - started >= 1  # it waited for the grace period (3 s from the last heartbeat) to pass
    trials = {t.number: t for t in trials_of(url, study)}
    assert trials[running].state == TrialState.FAIL  # its heartbeat stopped: failed after the grace period
    assert {n: trials[n].value for n in told} == told  # nothing the killed worker told is lost or changed
    assert_budget_and_no_duplicates(list(trials.values()), budget)
    assert survivor.study_complete == budget
    evaluations = log.read_text().splitlines()
    killed = trials[running].user_attrs[CLAIM_ATTR]  # it died evaluating this one, which the survivor may redo
    others = [key for key in evaluations if key != killed]
    assert len(others) == len(set(others)) and evaluations.count(killed) <= 2


def _slow_worker(url: str, study: str, budget: int, log: Path) -> None:
    """A tpe worker (a process forked from the test's) whose third evaluation and later ones take a minute each."""
    run_worker("mnist1d-arch", "tpe", budget, study, url, 1, LoggedSlowBackend(str(log), 2, 60), heartbeat=1, grace=3)


def _wait_for_the_third_evaluation(url: str, study: str, pid: int, log: Path) -> tuple[int, dict[int, float]]:
    """Wait until the worker ``pid`` has told two trials and started its third evaluation: the number of the trial
    it is evaluating, and the values of the trials it told."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            trials = [t for t in trials_of(url, study) if t.user_attrs.get(WORKER_ATTR, "").endswith(f":{pid}")]
            told = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
            claimed = [t.number for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(CLAIM_ATTR)]
            assert len(told) >= 2 and len(claimed) == 1
            return claimed[0], told
        time.sleep(0.05)
    raise AssertionError("the worker never started its third evaluation")


def _complete(key: str) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(value=0.5, user_attrs={CONFIG_ATTR: key, REPEAT_ATTR: False})


@pytest.mark.parametrize(
    ("complete", "claims", "verdict"),
    [
        ([], {}, EVALUATE),  # nobody holds it
        ([], {3: "B"}, EVALUATE),  # another configuration is being evaluated
        ([], {3: "A"}, WAIT),  # another trial holds it: wait for its record
        (["A"], {}, REPEAT),  # someone evaluated it: a repeat from that record
        (["A"], {3: "A"}, REPEAT),  # evaluated, and another trial records its repeat too
        (["B", "C"], {3: "D"}, WAIT),  # the last unit of budget is claimed
        (["B", "C", "D"], {}, SPENT),  # the study holds the budget
    ],
)
def test_a_claim_goes_ahead_only_with_a_unit_of_budget_and_a_configuration_nobody_else_holds(complete, claims, verdict):
    view = StudyView(complete=[_complete(key) for key in complete], claims={9: "A", **claims})
    decided, record = decide(view, 9, "A", budget=3)  # trial 9 claims configuration "A"
    assert decided == verdict
    assert (record is not None) == (verdict == REPEAT)


@pytest.mark.parametrize("method", WORKER_METHODS)
def test_every_worker_method_fills_the_budget_alone(method, tmp_path):
    outcome = run_worker("mnist1d-arch", method, 8, storage="memory", seed=0)
    assert outcome.study_complete == 8 and len(outcome.records) == 8
    assert outcome.evaluated == len({str(r.config) for r in outcome.records if not r.repeat})
    assert outcome.best == max(outcome.records, key=lambda r: r.val_accuracy)


def test_a_worker_joining_a_finished_study_stops_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    run_worker("mnist1d-arch", "random", 5, storage=url, seed=0, study_name="done")
    again = run_worker("mnist1d-arch", "random", 5, storage=url, seed=1, study_name="done")
    assert again.records == [] and again.study_complete == 5


@pytest.mark.parametrize(
    ("argv", "code", "mentions"),
    [
        (["--method", "rl"], 1, "cannot run as a worker"),
        (["--method", "darts"], 1, "run darts as a single search"),
        (["--budget", "0"], 2, "--budget"),
        (["--budget", "600"], 1, "exceeds the 542 configurations"),
        (["--storage", "runs/cache.db"], 1, "not a SQLAlchemy URL"),
        (["--heartbeat", "5", "--grace", "5"], 1, "shorter than the grace"),
        (["--method", "tpe", "--method-args", "startup:3"], 1, "bad setting for TPESampler"),
    ],
)
def test_bad_worker_input_is_one_line_and_a_nonzero_exit(argv, code, mentions, capsys, tmp_path):
    storage = ["--storage", f"sqlite:///{tmp_path / 'w.db'}"] if "--storage" not in argv else []
    exit_code, _, err = run_main(search_script, ["worker", *storage, *argv], capsys)
    assert_one_line_error(exit_code, err, code, mentions)


def test_a_study_of_another_backend_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    run_worker("mnist1d-arch", "random", 2, storage=url, seed=0, study_name="shared")
    argv = ["worker", "--storage", url, "--study", "shared", "--backend", "train"]
    exit_code, _, err = run_main(search_script, argv, capsys)
    assert_one_line_error(exit_code, err, 1, "searches backend 'table', not 'train'")


def test_the_workers_benchmark_times_each_setting_and_checks_every_run(tmp_path):
    from agents.benchmarks.workers import WorkersBenchConfig, run_workers_bench, write_workers_report

    config = WorkersBenchConfig(budget=4, workers=(1,), storages=("sqlite",), repeats=1, overhead_trials=3)
    result = run_workers_bench(config)
    assert result.verified == [] and len(result.wall["sqlite"]["1"]) == 1 and len(result.load) == 3
    assert set(result.per_trial) == {"memory", "sqlite"}
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:workers -->\n<!-- /bench:workers -->\n")
    written = write_workers_report(result, tmp_path, readme)
    assert (
        written["readme"]
        and "| sqlite |" in readme.read_text()
        and "no configuration evaluated twice" in readme.read_text()
    )
