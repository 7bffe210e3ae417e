"""The tuner's study: one Optuna study in a relational storage that any number of worker processes share.

trendgym builds no scheduler: the storage is the engine. Every worker (a process of ``--n-jobs``, or the same
``train.py --optimize --storage URL --study-name NAME`` started on another machine) opens the same study, asks it
for a trial, trains, and tells it the result; Optuna's trial numbers and states keep two workers from taking the
same trial. Heartbeats (``HEARTBEAT_INTERVAL``) mark a worker's trial alive; a trial whose heartbeat is older
than ``GRACE_PERIOD`` (its worker was killed) is failed by the next worker that asks for a trial, and does not
count against the budget, so the others make it up.

The budget is ``n_trials`` finished trials (COMPLETE or PRUNED) in the study, all workers together, what
Optuna's ``MaxTrialsCallback(n_trials, states=(COMPLETE, PRUNED))`` counts. The callback only stops a worker
after a trial ends, so several workers would overshoot by up to one trial each; here a worker counts before it
asks for a trial (finished and running ones), and a trial that finds itself beyond the budget once it has a
number (two workers asked at the same instant) gives up at once, so a study ends with exactly ``n_trials``.
A worker whose remaining budget is all running elsewhere waits: if one of those trials was a dead worker's, its
heartbeat goes stale, it is failed, and the waiting worker makes it up. Rerunning the same command resumes the
study and tops it up to ``n_trials``.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from agents.algorithms import algorithm_class, check_action_space
from agents.hyperparams import apply_overrides, load_hyperparams, parse_key_values, resolve
from agents.runs import RUNS_ROOT
from agents.search import optuna_sampler
from agents.seeds import MAX_TRAIN_SEED
from agents.training import RESERVED, ConfigError, default_vec_env, probe_env
from agents.tuning.objective import Objective, TrialSetup
from agents.vec_env import VEC_ENV_KINDS
from trends.automl.evaluator import open_storage, quiet_optuna, redacted, storage_url

SAMPLERS = ("random", "tpe", "gp")
PRUNERS = ("median", "halving", "none")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_INTERVAL = 20  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # seconds without a heartbeat after which a running trial is taken for dead and failed
TUNING_DIR = "tuning"  # under the runs root: the default SQLite storage and each study's report folder
# What a study records when it is created; a later worker with other values would mix incomparable trials.
STUDY_KEYS = ("algo", "env", "env_kwargs", "budget", "eval_freq", "eval_episodes", "seed")


class BudgetReached(Exception):
    """The study already has its ``n_trials``: this trial was asked for at the same moment as the last one."""


@dataclass
class TuneConfig:
    """What ``train.py --optimize`` asks for; fields share their names with the command-line flags."""

    algo: str = "ppo"
    env: str = "trendgym/Ski-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0  # the training seed of every trial (trials differ by their hyper-parameters only)
    timesteps: int | None = None  # the budget of one trial; None: n_timesteps of the yml (usually too long)
    n_envs: int | None = None  # None: n_envs of the yml
    hyperparams: list[str] = field(default_factory=list)  # "key:value": fixed, never sampled
    hyperparams_file: Path | None = None  # a yml in RL Zoo's format to sample on instead of agents/hyperparams/
    n_trials: int = 20  # finished trials in the study, all workers together
    n_jobs: int = 1  # worker processes started here
    sampler: str = "tpe"  # random, tpe (Bayesian, tree-structured Parzen estimator) or gp (Gaussian process)
    pruner: str = "median"  # median (RL Zoo's default), halving (successive halving) or none
    n_startup_trials: int = 5  # random trials before the sampler models, and complete ones before pruning starts
    storage: str | None = None  # a SQLAlchemy URL; None: SQLite at <root>/tuning/<algo>_<env>.db
    study_name: str | None = None  # None: <algo>_<env>[_<key>-<value>...]
    root: Path = RUNS_ROOT  # the report goes to <root>/tuning/<study name>/
    eval_freq: int = 100_000  # env steps between a trial's evaluations
    eval_episodes: int = 20  # validation courses per evaluation
    vec_env: str | None = None  # None: the env's native vector env when it has one
    device: str = "cpu"
    verbose: int = 1  # 0 quiet, 1 a line per trial, 2 also a line per evaluation
    heartbeat_interval: int = HEARTBEAT_INTERVAL
    grace_period: int = GRACE_PERIOD


@dataclass
class StudyPlan:
    """A checked request: the trials' setup, and where their study lives."""

    setup: TrialSetup
    study_name: str
    storage: str  # SQLAlchemy URL
    out_dir: Path


def env_name(env: str) -> str:
    return env.split(":")[-1].split("/")[-1]


def default_study_name(algo: str, env: str, env_kwargs: dict[str, Any]) -> str:
    """``ppo_Ski-v0``, ``ppo_Ski-v0_slope-blue``: one study per algorithm, env and env arguments."""
    suffix = "".join(f"_{key}-{value}" for key, value in sorted(env_kwargs.items()))
    return f"{algo.lower()}_{env_name(env)}{suffix}"


def safe_folder_name(name: str) -> str:
    """A study name as a folder name (a study name may hold any character)."""
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name) or "study"


def _check_options(config: TuneConfig) -> None:
    if config.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {config.sampler!r}")
    if config.pruner not in PRUNERS:
        raise ConfigError(f"--pruner must be one of {', '.join(PRUNERS)}, got {config.pruner!r}")
    for name in ("n_trials", "n_jobs", "eval_freq", "eval_episodes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if config.n_startup_trials < 0:
        raise ConfigError("--n-startup-trials must not be negative")
    if not 0 <= config.seed < MAX_TRAIN_SEED:
        raise ConfigError(f"--seed must be in 0..{MAX_TRAIN_SEED - 1} (higher seeds are the validation courses)")
    if config.vec_env is not None and config.vec_env not in VEC_ENV_KINDS:
        raise ConfigError(f"--vec-env must be one of {', '.join(VEC_ENV_KINDS)}, got {config.vec_env!r}")


def plan_study(config: TuneConfig) -> StudyPlan:
    """Check everything the user typed (env, algorithm, yml entry, options) before a storage is touched."""
    _check_options(config)
    algo = config.algo.lower()
    algorithm_class(algo)
    env = probe_env(config.env, config.env_kwargs)
    try:
        check_action_space(algo, env.action_space, config.env)
        if algo == "maskableppo" and not hasattr(env.unwrapped, "action_masks"):
            raise ConfigError(f"maskableppo needs an env with action_masks(); {config.env} has none, use ppo")
    finally:
        env.close()
    overrides = parse_key_values(config.hyperparams)
    entry = load_hyperparams(algo, config.env, config.hyperparams_file, config.env_kwargs)
    entry = apply_overrides(entry, config.hyperparams)
    for key, flag in RESERVED.items():
        if key in entry:
            raise ConfigError(f"set {key} with {flag}, not --hyperparams")
    fixed = set(overrides)
    if config.n_envs is not None:
        entry["n_envs"] = config.n_envs
    if config.timesteps is not None:
        entry["n_timesteps"] = config.timesteps
    _, settings = resolve(entry, algo)  # a bad entry fails now, in one line, not in every trial
    entry.update(n_envs=settings.n_envs, n_timesteps=settings.n_timesteps)
    vec_env = config.vec_env or default_vec_env(config.env, config.env_kwargs)
    setup = TrialSetup(
        algo=algo,
        env=config.env,
        env_kwargs=dict(config.env_kwargs),
        entry=entry,
        fixed=frozenset(fixed),
        seed=config.seed,
        eval_freq=config.eval_freq,
        eval_episodes=config.eval_episodes,
        vec_env=vec_env,
        device=config.device,
        progress=config.verbose >= 2,
    )
    study_name = config.study_name or default_study_name(algo, config.env, config.env_kwargs)
    tuning_dir = Path(config.root) / TUNING_DIR
    url = storage_url(config.storage if config.storage else tuning_dir / f"{algo}_{env_name(config.env)}.db")
    return StudyPlan(setup, study_name, url, tuning_dir / safe_folder_name(study_name))


def study_record(setup: TrialSetup) -> dict[str, Any]:
    """What the study's user attributes hold about how its trials are made and judged."""
    return {
        "algo": setup.algo,
        "env": setup.env,
        "env_kwargs": dict(setup.env_kwargs),
        "budget": setup.budget,
        "eval_freq": setup.eval_freq,
        "eval_episodes": setup.eval_episodes,
        "seed": setup.seed,
    }


def make_sampler(name: str, seed: int, n_startup_trials: int) -> optuna.samplers.BaseSampler:
    """RL Zoo's choices: TPE multivariate, GP and TPE starting with ``n_startup_trials`` random ones."""
    settings: dict[str, Any] = {}
    if name == "tpe":
        settings = {"n_startup_trials": n_startup_trials, "multivariate": True}
    elif name == "gp":
        settings = {"n_startup_trials": n_startup_trials}
    return optuna_sampler(name, seed, settings)


def make_pruner(name: str, n_startup_trials: int, n_evaluations: int) -> optuna.pruners.BasePruner:
    """median: prune a trial whose evaluation is below the median of earlier trials' at the same evaluation, once
    ``n_startup_trials`` trials are complete, with RL Zoo's warm-up of ``n_evaluations // 3`` reported steps
    (Optuna prunes from step ``n_warmup_steps`` on, and steps here count evaluations from 1: with 4 evaluations a
    trial can be pruned from its first, with 6 from its second). halving: successive halving with RL Zoo's
    settings, rungs at evaluations 1, 4, 16... where only the best quarter goes on."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_evaluations // 3)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4, min_early_stopping_rate=0)
    return optuna.pruners.NopPruner()


def open_tuning_study(plan: StudyPlan, config: TuneConfig, worker: int = 0, heartbeats: bool = True) -> optuna.Study:
    """The plan's study (created if new, resumed otherwise), with heartbeats and this worker's sampler.

    The sampler's seed mixes ``--seed``, the trials already in the study, the worker's index and the machine's
    name: a fresh single-process search is reproducible, and workers sharing a study (here or on other machines)
    do not draw the same random configurations. ConfigError when the study was made for another task."""
    storage = open_storage(
        plan.storage,
        heartbeat_interval=config.heartbeat_interval if heartbeats else None,
        grace_period=config.grace_period if heartbeats else None,
    )
    record = study_record(plan.setup)
    with quiet_optuna():
        study = optuna.create_study(
            storage=storage, study_name=plan.study_name, direction="maximize", load_if_exists=True
        )
        known = study.user_attrs
        if not known:
            for key, value in record.items():
                study.set_user_attr(key, value)
        else:
            _check_same_task(plan, known, record)
        host = zlib.crc32(socket.gethostname().encode())
        sequence = np.random.SeedSequence([config.seed, len(study.trials), worker, host])
        study.sampler = make_sampler(config.sampler, int(sequence.generate_state(1)[0]), config.n_startup_trials)
        study.pruner = make_pruner(config.pruner, config.n_startup_trials, plan.setup.n_evaluations)
    return study


def _check_same_task(plan: StudyPlan, known: dict[str, Any], record: dict[str, Any]) -> None:
    differ = [key for key in STUDY_KEYS if key in known and known[key] != record[key]]
    if differ:
        shown = ", ".join(f"{key} {known[key]!r} (now {record[key]!r})" for key in differ)
        raise ConfigError(
            f"study {plan.study_name!r} in {redacted(plan.storage)} was made with {shown}; "
            "its trials would not compare with these: give another --study-name"
        )


def count_trials(study: optuna.Study, states: tuple[TrialState, ...] = FINISHED) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def trials_taken(study: optuna.Study) -> list[FrozenTrial]:
    """Finished and running trials, in the order they were asked for: the first ``n_trials`` are the budget."""
    states = (*FINISHED, TrialState.RUNNING)
    return sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)


@dataclass
class BudgetedObjective:
    """The objective, refusing a trial numbered beyond the budget (see the module docstring)."""

    objective: Objective
    n_trials: int

    def __call__(self, trial: optuna.Trial) -> float:
        numbers = [t.number for t in trials_taken(trial.study)]
        if trial.number in numbers[self.n_trials :]:
            trial.set_user_attr("surplus", True)
            raise BudgetReached(f"the study already has {self.n_trials} trials")
        return self.objective(trial)


def run_worker(
    plan: StudyPlan, config: TuneConfig, worker: int = 0, report: Callable[[str], None] | None = None
) -> int:
    """Run trials of the plan's study until it holds ``n_trials`` finished ones; returns how many this worker ran.
    Ctrl-C ends the running trial (FAILED: it did not finish) and raises KeyboardInterrupt."""
    torch.set_num_threads(1)
    study = open_tuning_study(plan, config, worker)
    budgeted = BudgetedObjective(Objective(plan.setup), config.n_trials)
    ran = 0
    waiting_since: float | None = None
    with quiet_optuna():
        while True:
            optuna.storages.fail_stale_trials(study)
            if count_trials(study) >= config.n_trials:
                return ran
            if len(trials_taken(study)) >= config.n_trials:  # the rest of the budget is running elsewhere
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > config.grace_period + config.heartbeat_interval:
                    return ran  # their workers are alive (a dead one's trial would have been failed by now)
                time.sleep(min(config.heartbeat_interval, 5))
                continue
            waiting_since = None
            started = time.perf_counter()
            finished = _Finished()
            study.optimize(budgeted, n_trials=1, catch=(BudgetReached,), gc_after_trial=True, callbacks=[finished])
            trial = finished.trial
            if trial is None or trial.user_attrs.get("surplus"):
                return ran
            ran += 1
            if report is not None:
                report(describe_trial(study, trial, time.perf_counter() - started, worker))


class _Finished:
    """An Optuna callback keeping the trial this worker just finished (others may finish theirs meanwhile)."""

    def __init__(self) -> None:
        self.trial: FrozenTrial | None = None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.trial = trial


def describe_trial(study: optuna.Study, trial: FrozenTrial, seconds: float, worker: int) -> str:
    """One line per finished trial: its state, value and the best so far."""
    if trial.state == TrialState.COMPLETE:
        clean = trial.user_attrs.get("clean_rate")
        outcome = f"return {trial.value:.1f}" + (f" ({clean:.0%} clean)" if clean is not None else "")
    elif trial.state == TrialState.PRUNED:
        diverged = trial.user_attrs.get("diverged")
        last = max(trial.intermediate_values.items(), default=None)
        outcome = (
            f"diverged ({diverged})"
            if diverged
            else f"pruned at evaluation {last[0]}, return {last[1]:.1f}"
            if last
            else "pruned"
        )
    else:
        outcome = trial.state.name.lower()
    done = count_trials(study)
    best = best_trial(study)
    best_text = f"; best: trial {best.number}, {best.value:.1f}" if best is not None else ""
    worker_text = f" (worker {worker})" if worker else ""
    return f"trial {trial.number}{worker_text}: {outcome} in {seconds:.0f} s [{done} finished{best_text}]"


def _worker_process(plan: StudyPlan, config: TuneConfig, worker: int) -> None:
    """A spawned worker's main: one line per trial on stdout; Ctrl-C ends it quietly (its trial is FAILED)."""
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(plan, config, worker, report=_printer(config))


def _printer(config: TuneConfig) -> Callable[[str], None] | None:
    return (lambda line: print(line, flush=True)) if config.verbose >= 1 else None


@dataclass
class WorkersOutcome:
    interrupted: bool
    failed_workers: int = 0


def run_workers(plan: StudyPlan, config: TuneConfig) -> WorkersOutcome:
    """``n_jobs`` workers on the plan's study: in this process for one (so a test, a debugger and Ctrl-C see it
    directly), else as spawned processes, which run truly in parallel (torch and the envs hold the GIL for much of
    a step, so threads would mostly take turns) and never share a torch or an env by accident."""
    if config.n_jobs == 1:
        try:
            run_worker(plan, config, 0, report=_printer(config))
        except KeyboardInterrupt:
            return WorkersOutcome(interrupted=True)
        return WorkersOutcome(interrupted=False)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(plan, config, i), daemon=False) for i in range(config.n_jobs)
    ]
    for process in processes:
        process.start()
    interrupted = False
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        interrupted = True
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan the workers
        try:
            for process in processes:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGINT)
            for process in processes:
                process.join()
        finally:
            signal.signal(signal.SIGINT, previous)
    failed = sum(1 for p in processes if p.exitcode not in (0, None) and p.exitcode != -signal.SIGINT)
    return WorkersOutcome(interrupted=interrupted, failed_workers=failed)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the highest value that carries its hyper-parameters (None if there is none)."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "hyperparams" in t.user_attrs and t.value is not None and math.isfinite(t.value)
    ]
    return max(complete, key=lambda t: t.value, default=None)  # type: ignore[arg-type,return-value]
