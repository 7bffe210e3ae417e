"""Many worker processes, on one machine or many, searching together through one Optuna study.

trendgym has no scheduler of its own: the Optuna storage is the engine. Start ``scripts/search.py worker`` with the
same ``--study`` and ``--storage`` (a SQLite file on one machine, a PostgreSQL URL across machines) as many times as
you like, whenever you like; each worker asks the shared study for a configuration, evaluates it and tells the
result, until the study holds ``budget`` finished (COMPLETE) trials, its own and everyone else's. The guarantees:

- **Exactly the budget.** The study ends with ``budget`` COMPLETE trials, however many workers ran.
- **No configuration evaluated twice.** A worker never evaluates a configuration another worker has evaluated or
  is evaluating. When its method proposes one another worker has *finished*, the trial is recorded as a repeat
  served from that record (it costs its unit of budget, as a repeat does in a single search, see
  :mod:`trends.automl.search`); when another worker is still *evaluating* it, the worker waits for that result
  and records the repeat then.
- **A killed worker loses nothing already told, and its trial ends FAIL.** Every trial is written in its own
  transactions, so the COMPLETE trials of a worker killed with SIGKILL stay as they were. The storage is opened
  with Optuna's heartbeats (:data:`HEARTBEAT_SECONDS`, :data:`GRACE_SECONDS`): a thread of the worker writes the
  trial's heartbeat while it runs, and every worker fails stale trials (no heartbeat for the grace period) before
  each ask and while it waits, so the dead worker's RUNNING trial becomes FAIL and its configuration and its unit
  of budget go back to the others. Optuna's heartbeat runs only inside ``study.optimize``; workers ask and tell,
  so they beat and fail stale trials themselves, through the storage's public methods.

How the first two hold without a lock server: a worker *claims* its proposal by writing the configuration's key
as the trial's ``claim`` user attribute, then reads the study's trials fresh from the database (past Optuna's
trial cache, which can miss a trial whose creation committed late). It goes ahead only if (a) the COMPLETE
trials plus the other RUNNING trials holding a claim leave a unit of budget for it, and (b) no other RUNNING trial
claims the same key. Otherwise it withdraws its claim (the attribute becomes "") and waits, only reading the
study at growing random intervals, until the holders have finished (or died and been failed), then claims again.
Since every worker writes its claim before it reads, of any two workers that both go ahead the later reader saw
the earlier's claim: two cannot both take the last unit or the same configuration. Two that see each other both
withdraw, and the random waits make a repeat of that collision unlikely (:func:`decide` is the rule).

Which methods work as workers (:data:`WORKER_METHODS`): Optuna's samplers (``random``, ``tpe``, ``gp``,
``cmaes``, ``ga``) see every worker's trials through the study, as in Optuna's own distributed optimisation; TPE
runs with ``constant_liar`` so workers asking at once spread out. ``uniform`` samples the space's configurations
independently in each worker. ``evolution`` is regularized evolution in its asynchronous steady-state form (the
form Real et al. ran on many workers): the population is the ``population_size`` most recently finished trials of
the whole study, and each worker mutates the winner of a tournament among them. ``reinforce``, ``ppo-controller``,
``rl`` and ``darts`` learn from their own stream of proposals inside one process and are refused as workers
(:func:`run_worker` raises a one-line ValueError): run them as a single search.

Traces a worker leaves: each trial carries a ``worker`` attribute (host:pid) and its ``claim``. A worker asks for
no trial while the trials others are working on take the last units of budget (it waits, only reading, until they
are told or freed): a trial asked then would have to end FAIL. Workers that look for the last unit together (they
finished their trials together) wait a random moment of up to :data:`LAST_UNIT_SPREAD` and look again, so the first
to ask is seen by the others; two that still ask in the same instant can leave one FAIL trial beside the budget's
COMPLETE ones (one in 16 runs of two TPE workers on SQLite, each of which used to leave one). A worker killed
between asking for a trial and writing its first heartbeat (one transaction later) leaves a RUNNING trial that
Optuna never finds stale; with no worker attribute, it holds a unit of budget for the grace period only. A single
search (``scripts/search.py`` without ``worker``) resuming a study fails every RUNNING trial it finds, so do not
point one at a study whose workers are running.

Repeats: a repeat of a finished configuration costs its unit of budget, as in a single search, so that a budget
means the same for every method and worker count. TPE on a table of a few hundred configurations proposes many:
with budget 100 on ``mnist1d-arch``, 57-68 repeats in a single search (seeds 0-2) and 45-56 with 1, 2 or 4
workers; claims held by another worker made at most one or two of them wait.

Seeds: a worker without a seed draws one, so that workers started with the same command do not propose the same
sequence; one given a seed is reproducible only as far as the other workers' timing allows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from agents.search import OPTUNA_METHODS, ask_fixed, configured, optuna_sampler
from trends.automl.backends import Backend, make_backend
from trends.automl.evaluator import open_storage, quiet_optuna, storage_url
from trends.automl.search import CONFIG_ATTR, SearchRecord
from trends.automl.space import Config, SearchSpace, get_space
from trends.automl.table import config_json

WORKER_METHODS = (*OPTUNA_METHODS, "uniform", "evolution")
HEARTBEAT_SECONDS = 5  # how often a running trial's heartbeat is written
GRACE_SECONDS = 30  # a RUNNING trial with no heartbeat for this long is failed: well past a busy machine's stalls
CLAIM_ATTR = "claim"  # user attribute: the configuration key a RUNNING trial holds, "" once it gave it up
WORKER_ATTR = "worker"  # user attribute: host:pid of the worker that ran the trial
LAST_UNIT_SPREAD = 0.5  # seconds over which workers spread their asks for the last unit of budget
WAIT_SECONDS = (0.02, 1.0)  # the first and the longest wait before a worker tries a withdrawn claim again
EVALUATE, REPEAT, SPENT, WAIT = "evaluate", "repeat", "spent", "wait"  # what a claim decides (decide)

Log = Callable[[str], None]


@dataclass
class WorkerOutcome:
    """What one worker did, and the state of the study when it stopped."""

    worker: str  # host:pid
    seed: int
    study_name: str
    budget: int
    records: list[SearchRecord] = field(default_factory=list)  # the trials this worker told COMPLETE, in order
    withdrawn: int = 0  # claims this worker gave up (another held the configuration or the last units)
    study_complete: int = 0  # COMPLETE trials in the study when the worker stopped
    best: SearchRecord | None = None  # the study's best record when the worker stopped
    seconds: float = 0.0

    @property
    def evaluated(self) -> int:
        """Configurations this worker evaluated (asked its backend about): its records that are not repeats."""
        return sum(not record.repeat for record in self.records)


def worker_study_name(space: str, method: str, backend: str, settings: Mapping[str, Any] | None = None) -> str:
    """The study workers share by default: one per (space, method, backend, settings); no seed, since every
    worker has its own."""
    variant = "".join(f":{key}={value}" for key, value in sorted((settings or {}).items()))
    return f"workers:{space}:{method}:{backend}{variant}"


def run_worker(
    space: str | SearchSpace,
    method: str,
    budget: int,
    study_name: str | None = None,
    storage: str | Path | None = None,
    seed: int | None = None,
    backend: str | Backend = "table",
    device: str = "cpu",
    settings: Mapping[str, Any] | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    grace: int = GRACE_SECONDS,
    log: Log | None = None,
) -> WorkerOutcome:
    """Work on the shared study ``study_name`` (default :func:`worker_study_name`) of ``storage`` (a SQLAlchemy URL
    or a SQLite :class:`~pathlib.Path`; None: the default SQLite cache; ``"memory"``: a private in-memory study, for
    measuring) until it holds ``budget`` COMPLETE trials (see the module's notes). ``seed`` None draws one.
    ``heartbeat`` and ``grace`` are the heartbeat interval and grace period in seconds. ValueError (one line) for a
    method that cannot work as a worker, a bad setting, or a study that another space or backend started."""
    if method not in WORKER_METHODS:
        raise ValueError(
            f"method {method!r} cannot run as a worker: it learns from its own proposals in one process; "
            f"workers run {', '.join(WORKER_METHODS)} (run {method} as a single search instead)"
        )
    if heartbeat < 1 or grace <= heartbeat:
        raise ValueError(f"the heartbeat ({heartbeat} s) must be at least 1 s and shorter than the grace ({grace} s)")
    space = get_space(space) if isinstance(space, str) else space
    backend_name = backend if isinstance(backend, str) else type(backend).__name__
    if isinstance(backend, str):
        backend = make_backend(space, backend, storage=None if storage == "memory" else storage, device=device)
    settings = dict(settings or {})
    study_name = study_name or worker_study_name(space.name, method, backend_name, settings)
    seed = secrets.randbits(31) if seed is None else seed
    shared = SharedStudy.open(storage, study_name, heartbeat, grace)
    shared.agree({"space": space.name, "backend": backend_name})
    proposer = _proposer(method, space, seed, settings, shared)
    worker = Worker(shared, backend, budget, proposer, seed, log)
    return worker.run()


# -- the shared study ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyView:
    """The study's trials as one fresh read saw them: what the claims are decided on."""

    complete: list[FrozenTrial]  # in trial-number order
    claims: dict[int, str]  # trial number -> configuration key, for RUNNING trials that hold a claim
    working: int = 0  # RUNNING trials of live or heartbeating workers, claiming or about to (WORKER_ATTR set)

    @property
    def units_taken(self) -> int:
        """Units of budget spent or spoken for: COMPLETE trials and the trials workers are working on."""
        return len(self.complete) + self.working

    def first_record(self, key: str) -> FrozenTrial | None:
        """The earliest COMPLETE trial of configuration ``key``."""
        return next((t for t in self.complete if t.user_attrs.get(CONFIG_ATTR) == key), None)


class SharedStudy:
    """A study in a storage that several processes write, read past Optuna's cache when it matters."""

    def __init__(
        self, storage: optuna.storages.BaseStorage, study: optuna.Study, url: str, grace: float = GRACE_SECONDS
    ) -> None:
        self.storage = storage  # the storage itself, not the caching wrapper the study reads through
        self.study = study
        self.url = url
        self.grace = grace  # seconds after which a RUNNING trial with no heartbeat counts as dead
        self.study_id = storage.get_study_id_from_name(study.study_name)

    @classmethod
    def open(cls, storage: str | Path | None, study_name: str, heartbeat: int, grace: int) -> SharedStudy:
        with quiet_optuna():
            if storage == "memory":
                rdb, url = optuna.storages.InMemoryStorage(), "memory"
            else:
                url = storage_url(storage)
                rdb = open_storage(url, heartbeat_interval=heartbeat, grace_period=grace)
            study = optuna.create_study(storage=rdb, study_name=study_name, direction="maximize", load_if_exists=True)
        return cls(rdb, study, url, grace)

    @property
    def beats(self) -> bool:
        """Whether the storage keeps heartbeats (an RDB storage opened with an interval)."""
        return (
            isinstance(self.storage, optuna.storages.RDBStorage) and self.storage.get_heartbeat_interval() is not None
        )

    def agree(self, attrs: Mapping[str, str]) -> None:
        """Record ``attrs`` on a new study, or check that an existing one was started with the same values."""
        recorded = self.study.user_attrs
        for name, value in attrs.items():
            if name not in recorded:
                self.study.set_user_attr(name, value)
            elif recorded[name] != value:
                raise ValueError(
                    f"study {self.study.study_name!r} searches {name} {recorded[name]!r}, not {value!r}; "
                    "give another --study"
                )

    def view(self) -> StudyView:
        """A fresh read of the study's COMPLETE and RUNNING trials, straight from the database."""
        trials = self.storage.get_all_trials(
            self.study_id, deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
        )
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        # A trial's worker attribute is written after its first heartbeat: a trial holding one is either worked on
        # or will be failed as stale. One without it was asked moments ago (on a busy database its first writes
        # take a while), or its worker died before its first heartbeat and Optuna will never fail it: counting it
        # for a grace period only covers the first without blocking the budget for good.
        recent = datetime.now() - timedelta(seconds=self.grace)
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING and (WORKER_ATTR in t.user_attrs or t.datetime_start > recent)
        ]
        claims = {t.number: t.user_attrs[CLAIM_ATTR] for t in running if t.user_attrs.get(CLAIM_ATTR)}
        return StudyView(complete=complete, claims=claims, working=len(running))

    def fail_stale(self) -> None:
        """Fail the RUNNING trials whose heartbeat is older than the grace period (dead workers' trials)."""
        if self.beats:
            with quiet_optuna():
                optuna.storages.fail_stale_trials(self.study)

    @contextlib.contextmanager
    def heartbeat(self, trial: optuna.Trial) -> Iterator[None]:
        """Write ``trial``'s heartbeat now and then every interval, from a thread, while the block runs."""
        if not self.beats:
            yield
            return
        storage = self.storage
        trial_id = storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        storage.record_heartbeat(trial_id)  # at once: a trial with no heartbeat is never found stale
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(storage.get_heartbeat_interval()):
                with contextlib.suppress(Exception):  # a missed beat; the next one may pass
                    storage.record_heartbeat(trial_id)

        thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


# -- one worker ------------------------------------------------------------------------------------------------

Proposer = Callable[[optuna.Trial], Config]


class Worker:
    """Asks, claims, evaluates and tells until the shared study holds the budget (the module's notes)."""

    def __init__(
        self, shared: SharedStudy, backend: Backend, budget: int, propose: Proposer, seed: int, log: Log | None
    ) -> None:
        if budget < 1:
            raise ValueError(f"the budget must be at least 1 configuration, got {budget}")
        self.shared = shared
        self.study = shared.study
        self.backend = backend
        self.space = backend.space
        self.budget = budget
        self.propose = propose
        self.log = log or (lambda line: None)
        self.rng = np.random.default_rng(seed)
        self.outcome = WorkerOutcome(
            worker=f"{socket.gethostname()}:{os.getpid()}", seed=seed, study_name=self.study.study_name, budget=budget
        )

    def run(self) -> WorkerOutcome:
        started = time.perf_counter()
        wait, spread = WAIT_SECONDS[0], False
        while True:
            self.shared.fail_stale()
            view = self.shared.view()
            if len(view.complete) >= self.budget:
                break
            if view.units_taken >= self.budget:  # the last units are being evaluated or waited for: a trial
                time.sleep(wait * self.rng.uniform(0.5, 1.5))  # asked now would end FAIL, so wait unasked
                wait = min(wait * 1.5, WAIT_SECONDS[1])
                continue
            if view.units_taken == self.budget - 1 and not spread:  # workers that finished together would all
                time.sleep(self.rng.uniform(0.0, LAST_UNIT_SPREAD))  # ask for the last unit at once: spread out,
                spread = True  # then look again; the first to ask is seen by the others
                continue
            wait, spread = WAIT_SECONDS[0], False
            with warnings.catch_warnings():  # "Heartbeat ... supposed to be used with Study.optimize": it beats here
                warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
                trial = self.study.ask()
            try:
                with self.shared.heartbeat(trial):
                    self._work_on(trial)
            except BaseException:  # Ctrl-C or an error mid-trial: the trial is over, not left RUNNING
                with contextlib.suppress(Exception):
                    self.study.tell(trial, state=TrialState.FAIL)
                raise
        self.shared.fail_stale()
        view = self.shared.view()
        self.outcome.study_complete = len(view.complete)
        best = max((t for t in view.complete if CONFIG_ATTR in t.user_attrs), key=lambda t: t.value, default=None)
        self.outcome.best = SearchRecord.of_trial(best) if best is not None else None
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def _work_on(self, trial: optuna.Trial) -> None:
        trial.set_user_attr(WORKER_ATTR, self.outcome.worker)
        config = self.space.canonical(self.propose(trial))
        key = config_json(config)
        verdict, earlier = self._claim(trial, key)
        if verdict == SPENT:  # others spent the last units while this trial waited
            self.study.tell(trial, state=TrialState.FAIL)
            return
        if verdict == REPEAT:
            record = replace(SearchRecord.of_trial(earlier), repeat=True)
        else:
            record = SearchRecord.of(config, self.backend.evaluate(config))
        for name, value in record.user_attrs().items():
            trial.set_user_attr(name, value)
        try:
            self.study.tell(trial, record.val_accuracy)
        except optuna.exceptions.UpdateFinishedTrialError:  # failed as stale meanwhile (a stall past the grace)
            self.log(f"trial {trial.number} was failed as stale before it could be told; its result is dropped")
            return
        self.outcome.records.append(record)
        what = "repeat of an earlier trial" if record.repeat else "evaluated"
        self.log(f"trial {trial.number}: {what}, validation accuracy {record.val_accuracy:.4f}")

    def _claim(self, trial: optuna.Trial, key: str) -> tuple[str, FrozenTrial | None]:
        """Claim configuration ``key`` and a unit of budget for ``trial``, waiting as long as others hold them:
        (EVALUATE, None) when the trial is to evaluate it, (REPEAT, the earliest COMPLETE trial of ``key``) when it
        is to record a repeat of that record, (SPENT, None) when the study has reached its budget."""
        wait = WAIT_SECONDS[0]  # grows while the trial waits, and over repeated collisions (random spread)
        while True:
            trial.set_user_attr(CLAIM_ATTR, key)
            verdict, earlier = decide(self.shared.view(), trial.number, key, self.budget)
            if verdict != WAIT:
                return verdict, earlier
            trial.set_user_attr(CLAIM_ATTR, "")  # withdraw; wait, only reading, until claiming could succeed
            self.outcome.withdrawn += 1
            while True:
                time.sleep(wait * self.rng.uniform(0.5, 1.5))
                wait = min(wait * 1.5, WAIT_SECONDS[1])
                self.shared.fail_stale()  # a dead worker's claim is released once its trial is failed
                verdict, _ = decide(self.shared.view(), trial.number, key, self.budget)
                if verdict == SPENT:
                    return SPENT, None
                if verdict != WAIT:
                    break


def decide(view: StudyView, number: int, key: str, budget: int) -> tuple[str, FrozenTrial | None]:
    """What trial ``number``, holding a claim on configuration ``key``, may do as ``view`` shows the study: SPENT
    when it holds ``budget`` COMPLETE trials; WAIT when the other trials' claims take the units left or one of them
    claims ``key``; else REPEAT with the earliest record of ``key`` when there is one, or EVALUATE."""
    if len(view.complete) >= budget:
        return SPENT, None
    others = [k for n, k in view.claims.items() if n != number]
    if len(view.complete) + len(others) >= budget:  # no unit left for this trial
        return WAIT, None
    earlier = view.first_record(key)
    if earlier is not None:
        return REPEAT, earlier
    return (WAIT, None) if key in others else (EVALUATE, None)


# -- what each method proposes -----------------------------------------------------------------------------------


def _proposer(method: str, space: SearchSpace, seed: int, settings: dict[str, Any], shared: SharedStudy) -> Proposer:
    """The function that turns a fresh trial into ``method``'s next configuration; sets the study's sampler."""
    study = shared.study
    if method in OPTUNA_METHODS:
        if method == "tpe":
            settings = {"constant_liar": True, **settings}  # count running trials as bad, so workers spread out
        study.sampler = optuna_sampler(method, seed, settings)
        fixed = method in ("gp", "cmaes", "ga")

        def ask_optuna(trial: optuna.Trial) -> Config:
            with quiet_optuna(optuna.logging.ERROR), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*independent sampl.*")
                return ask_fixed(space, trial, method == "cmaes") if fixed else space.suggest(trial)

        return ask_optuna
    study.sampler = optuna.samplers.RandomSampler(seed=seed)  # asks no parameters: the cheapest sampler
    rng = np.random.default_rng(seed)
    if method == "uniform":
        if settings:
            raise ValueError(f"uniform random search has no settings, got {', '.join(settings)}")
        return lambda trial: space.sample_uniform(rng)
    return _evolution_proposer(space, rng, settings, shared)


def _evolution_proposer(
    space: SearchSpace, rng: np.random.Generator, settings: Mapping[str, Any], shared: SharedStudy
) -> Proposer:
    """Asynchronous regularized evolution: until the study holds ``population_size`` COMPLETE trials, uniform
    random configurations; then the population is the ``population_size`` trials finished last (aging: the
    oldest die, whoever evaluated them), ``sample_size`` of them are drawn with replacement and the best one's
    mutation is proposed."""
    from trends.automl.evolution import EvolutionConfig, mutate

    config = configured(EvolutionConfig, settings)

    def propose(trial: optuna.Trial) -> Config:
        complete = shared.view().complete
        if len(complete) < config.population_size:
            return space.sample_uniform(rng)
        complete.sort(key=lambda t: (t.datetime_complete, t.number))
        population = complete[-config.population_size :]
        sample = [population[i] for i in rng.integers(len(population), size=config.sample_size)]
        parent = max(sample, key=lambda t: t.value)
        return mutate(space, SearchRecord.of_trial(parent).config, rng)

    return propose
