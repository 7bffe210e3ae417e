"""Train a child-network configuration once and remember the result forever, in an Optuna storage.

Every AutoML search, environment and benchmark of trendgym asks the same question, "how good is this network
trained this way on this dataset?", and many ask it about the same configurations. The :class:`Evaluator`
answers it from a cache when it can and trains (with :func:`trends.training.train_network`) only when it must,
so no configuration is trained twice, across searches, sessions, processes and machines.

The cache is one Optuna study (``trendgym-cache`` by default) in an Optuna storage: a SQLite file by default,
any SQLAlchemy URL (PostgreSQL, say) when several machines share one search. Each evaluated configuration is one
COMPLETE trial whose value is the validation accuracy and whose user attributes hold the configuration and the
whole result, so ``optuna-dashboard sqlite:///runs/automl/cache.db`` shows every training ever done, with its
learning curve (the validation accuracy of each epoch, as the trial's intermediate values).

A configuration is keyed by a hash of the canonical JSON of ``(dataset, spec, recipe)``: every field of the two
dataclasses, cast to its declared type (so ``learning_rate=1`` and ``learning_rate=1.0``, equal configurations,
share a key), with sorted keys. The key does not cover the training code itself: a change to
:mod:`trends.training` that changes results needs a new ``study_name`` (or storage), or old results are served.

Crash safety: a trial is written in one transaction and only once training has finished, so a kill or a Ctrl-C
in the middle of a training leaves no partial record and loses none already written.

Concurrency: several evaluators (threads excepted: one per thread) may share one storage. A miss re-reads the
storage before training and again just before writing, so a configuration another process finished meanwhile is
not written twice. Two processes that miss the same key at the same moment both train it; if both also pass the
re-check before either writes, the study gets two trials for that key, and every evaluator serves the first one
(the lower trial number), so the duplicate is harmless. It happens: two processes stepping through the same
list of tiny configurations in lockstep duplicated about a third of them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from trends.data import DATASETS, load_dataset
from trends.models import LayerSpec, NetworkSpec
from trends.training import TrainRecipe, TrainResult, train_network

DEFAULT_CACHE = Path("runs") / "automl" / "cache.db"  # relative to the working directory, like every run
DEFAULT_STUDY = "trendgym-cache"
KEY_LENGTH = 16  # hex digits of the sha256 kept: 64 bits, no collision in any cache a person will build
OPEN_ATTEMPTS = 4  # tries at opening a storage whose database raised an error (see open_storage)
OPEN_RETRY_SECONDS = 0.25  # the wait before the second try; it grows linearly
SQLITE_TIMEOUT = 30  # seconds a SQLite writer waits for another process's lock before "database is locked"
# The pip package of each SQLAlchemy driver a storage URL may need: postgresql:// is psycopg (3) in SQLAlchemy 2.1,
# which setup.cfg's extra "postgres" installs; postgresql+psycopg2:// and mysql:// name their own.
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pymysql": "PyMySQL"}
_CASTS = {"int": int, "float": float, "bool": bool, "str": str}  # declared field type -> canonical cast
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")  # the password of a user:password@host URL


@dataclass(frozen=True)
class Evaluation:
    """A trained configuration's record: what was trained, and what came out (see
    :class:`~trends.training.TrainResult` for the meaning of each number).

    ``cached`` says whether this call was answered from the storage without training; it is not part of the
    record, so a hit compares equal to the miss that recorded it.
    """

    key: str  # :func:`config_key` of dataset, spec and recipe
    dataset: str
    spec: NetworkSpec
    recipe: TrainRecipe
    val_accuracy: float
    test_accuracy: float
    val_loss: float
    epochs: int
    seconds: float  # what the training cost when it was done, also when served from the cache
    parameters: int
    flops: int
    diverged: bool
    cached: bool = field(default=False, compare=False)

    def to_user_attrs(self) -> dict[str, Any]:
        """The trial user attributes that store this record: JSON values only, readable in optuna-dashboard."""
        attrs = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spec", "recipe", "cached")}
        attrs.update(network=self.spec.describe(), spec=canonical(self.spec), recipe=canonical(self.recipe))
        return attrs

    @classmethod
    def from_user_attrs(cls, attrs: dict[str, Any], cached: bool = True) -> Evaluation:
        """The record :meth:`to_user_attrs` stored."""
        spec = NetworkSpec(tuple(LayerSpec(**layer) for layer in attrs["spec"]["layers"]))
        values = {f.name: attrs[f.name] for f in fields(cls) if f.name not in ("spec", "recipe", "cached")}
        return cls(spec=spec, recipe=TrainRecipe(**attrs["recipe"]), cached=cached, **values)


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data: a dataclass becomes a dict of its fields, each cast to its declared scalar
    type so that equal configurations built differently (``1`` or ``1.0``) give equal data; tuples become lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _cast(f.type, canonical(getattr(value, f.name))) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [canonical(item) for item in value]
    return value


def _cast(declared: Any, value: Any) -> Any:
    cast = _CASTS.get(declared if isinstance(declared, str) else getattr(declared, "__name__", ""))
    return value if cast is None else cast(value)


@lru_cache(maxsize=65536)
def config_key(dataset: str, spec: NetworkSpec, recipe: TrainRecipe) -> str:
    """The cache key of a configuration: a short sha256 of its canonical JSON. Memoised, because a table-backed
    environment step looks a key up and must stay well under 100 microseconds."""
    text = json.dumps(
        {"dataset": dataset, "spec": canonical(spec), "recipe": canonical(recipe)},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def storage_url(storage: str | Path | None) -> str:
    """The SQLAlchemy URL of ``storage``: None is the default SQLite file, a :class:`~pathlib.Path` a SQLite
    file (made absolute, so the URL still points at it from another directory), a string a URL as it is.

    A string is never taken for a file name, so a mistyped URL fails instead of quietly creating a new cache. For
    the same reason the folder of a SQLite file is made here, for a path the program or its caller chose, and never
    for a URL someone typed: ``sqlite:////nonexistent/dir/x.db`` is refused by :func:`open_storage` rather than
    making folders anywhere on the disk.
    """
    if storage is None:
        storage = DEFAULT_CACHE
    if isinstance(storage, Path):
        path = storage.expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if not isinstance(storage, str) or "://" not in storage:
        raise ValueError(
            f"storage {storage!r} is not a SQLAlchemy URL (sqlite:///cache.db, postgresql://user@host/db); "
            "pass a pathlib.Path for a SQLite file"
        )
    return storage


def redacted(url: str) -> str:
    """``url`` with its password hidden, fit for an error message or a log."""
    return _PASSWORD.sub(r"\1***@", url)


@contextmanager
def quiet_optuna(level: int = optuna.logging.WARNING) -> Iterator[None]:
    """Keep Optuna's INFO lines ("A new study created...") and its experimental-feature warnings out of the
    user's output, and give Optuna's verbosity back afterwards so the caller's own studies log as the caller
    chose. ``level=optuna.logging.ERROR`` also silences its warnings about sampling a parameter independently."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage at ``url``; a SQLite file's folder must exist. ``heartbeat_interval`` and
    ``grace_period`` (seconds) turn on Optuna's heartbeats, for worker processes sharing a study
    (:mod:`agents.workers`): a RUNNING trial whose heartbeat is older than the grace period is failed by the next
    process that looks for stale trials.

    Anything that stops the storage from opening (an unparsable URL, a missing database driver, a refused
    connection) is a ValueError with a one-line reason: it is the user's URL that is wrong, not the program.

    An error the database itself raised is retried a few times: two processes creating the same new storage at
    once race in Optuna's table creation (seen with SQLite: "UNIQUE constraint failed: alembic_version"), and the
    loser finds the storage ready a moment later."""
    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite:") else {}
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            _check_sqlite_folder(url)
            with quiet_optuna():
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_interval, grace_period=grace_period
                )
        except Exception as error:  # OSError, sqlalchemy's and the drivers' errors (trends/ does not import them)
            from_database = getattr(error, "orig", None) is not None  # sqlalchemy's DBAPIError wraps the driver's
            if from_database and attempt < OPEN_ATTEMPTS:
                time.sleep(OPEN_RETRY_SECONDS * attempt)
                continue
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if (driver := _missing_driver(error)) is not None:
                reason = f"its database driver {driver} is not installed; install it with: {_driver_install(driver)}"
            raise ValueError(f"cannot open the storage {redacted(url)}: {reason}") from error
    raise AssertionError("unreachable")


def _missing_driver(error: BaseException) -> str | None:
    """The module of the database driver whose import failed somewhere in ``error``'s chain (Optuna re-raises
    SQLAlchemy's ImportError as "Failed to import DB access module", which names none), or None."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, ImportError) and link.name:
            return link.name.split(".")[0]
        link = link.__cause__ or link.__context__
    return None


def _driver_install(module: str) -> str:
    """The command that installs the package of driver ``module``, written as the README writes commands (the
    scripts print it in the form that runs from a plain shell, through agents.cli.shown)."""
    package = DRIVER_PACKAGES.get(module, module)
    return f"python -m pip install {f'{package!r}' if '[' in package else package}"


def _check_sqlite_folder(url: str) -> None:
    """A SQLite URL's folder must exist: SQLite would fail with "unable to open database file", and making it
    would make folders wherever a typo points (:func:`storage_url` makes them for paths)."""
    path = url.removeprefix("sqlite:///").split("?")[0] if url.startswith("sqlite:///") else ""
    if path and path != ":memory:" and not Path(path).parent.is_dir():
        raise FileNotFoundError(f"the folder {Path(path).parent} does not exist; create it first")


class Evaluator:
    """Evaluates child-network configurations, training each only the first time any evaluator sharing the
    storage sees it.

    :param storage: where results live: None for the SQLite file ``runs/automl/cache.db`` (its folder created),
        a :class:`~pathlib.Path` for another SQLite file, or any SQLAlchemy URL (``postgresql://user@host/db``
        when several machines share one cache)
    :param study_name: the study that holds the cache; a different name is a separate cache (use one after a
        change to the training code that changes results)
    :param device: where a miss trains (``"cpu"``, ``"cuda"``, ``"auto"``); not part of the key, since the same
        configuration gives the same result up to floating-point noise wherever it trains
    """

    def __init__(self, storage: str | Path | None = None, study_name: str = DEFAULT_STUDY, device: str = "cpu") -> None:
        self.url = storage_url(storage)
        self.device = device
        self.storage = open_storage(self.url)
        self.study = self._open_study(study_name)
        self._index: dict[str, Evaluation] = {}  # key -> record, as served (cached=True)
        self._seen: set[int] = set()  # numbers of the trials already indexed, so a refresh parses only new ones
        self._refresh()

    def _open_study(self, study_name: str) -> optuna.Study:
        try:
            with quiet_optuna():
                study = optuna.create_study(
                    storage=self.storage, study_name=study_name, direction="maximize", load_if_exists=True
                )
        except Exception as error:  # a storage that opened but cannot hold studies (read-only file, permissions)
            raise ValueError(f"cannot open the study {study_name!r} in {redacted(self.url)}: {error}") from error
        if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
            raise ValueError(f"study {study_name!r} in {redacted(self.url)} is not an evaluator cache")
        return study

    def evaluate(self, dataset: str, spec: NetworkSpec, recipe: TrainRecipe) -> Evaluation:
        """The record of ``spec`` trained with ``recipe`` on ``dataset``: from the storage when any evaluator has
        trained it before (``cached=True``), else trained now and written (``cached=False``)."""
        key = self._key(dataset, spec, recipe)
        found = self.lookup(dataset, spec, recipe)
        if found is not None:
            return found
        result = train_network(spec, load_dataset(dataset), recipe, device=self.device)
        return self._record(key, dataset, spec, recipe, result)

    def lookup(self, dataset: str, spec: NetworkSpec, recipe: TrainRecipe) -> Evaluation | None:
        """The stored record of a configuration, or None when nobody has trained it; never trains. A key not in
        this evaluator's index is looked for again after reading what other processes have written since."""
        key = self._key(dataset, spec, recipe)
        if key not in self._index:
            self._refresh()
        return self._index.get(key)

    def records(self) -> list[Evaluation]:
        """Every stored record, one per configuration, oldest first."""
        self._refresh()
        return list(self._index.values())

    def __len__(self) -> int:
        """Configurations stored (by any process sharing the storage)."""
        self._refresh()
        return len(self._index)

    def __repr__(self) -> str:
        return f"Evaluator({redacted(self.url)!r}, study_name={self.study.study_name!r}, records={len(self._index)})"

    @staticmethod
    def _key(dataset: str, spec: NetworkSpec, recipe: TrainRecipe) -> str:
        """Check the configuration (a bad one fails here, in one line, before a lookup or a training) and key it."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        if not isinstance(recipe, TrainRecipe):
            raise TypeError(f"recipe must be a TrainRecipe, got {type(recipe).__name__}")
        return config_key(dataset, spec, recipe)

    def _refresh(self) -> None:
        """Index the trials written since the last refresh (by this or any other process). Optuna's cached RDB
        storage fetches only trials it has not seen, so a refresh costs little even on a large cache."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number in self._seen:
                continue
            self._seen.add(trial.number)
            key = trial.user_attrs.get("key")
            if key is not None and key not in self._index:  # a later duplicate of a key (a race) is ignored
                self._index[key] = self._parse(trial)

    def _parse(self, trial: FrozenTrial) -> Evaluation:
        try:
            return Evaluation.from_user_attrs(trial.user_attrs)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"trial {trial.number} of study {self.study.study_name!r} in {redacted(self.url)} "
                f"is not an evaluator record: {error!r}"
            ) from error

    def _record(
        self, key: str, dataset: str, spec: NetworkSpec, recipe: TrainRecipe, result: TrainResult
    ) -> Evaluation:
        """Write a finished training as one COMPLETE trial, unless another process wrote the key while this one
        trained; then its record is returned instead, so every process serves the same numbers."""
        self._refresh()
        if key in self._index:
            return replace(self._index[key], cached=False)
        evaluation = _evaluation(key, dataset, spec, recipe, result)
        trial = optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=evaluation.val_accuracy,
            user_attrs=evaluation.to_user_attrs(),
            intermediate_values={stats.epoch: stats.val_accuracy for stats in result.history},
        )
        with quiet_optuna():
            self.study.add_trial(trial)
        self._index[key] = replace(evaluation, cached=True)
        return evaluation


def _evaluation(key: str, dataset: str, spec: NetworkSpec, recipe: TrainRecipe, result: TrainResult) -> Evaluation:
    return Evaluation(
        key=key,
        dataset=dataset,
        spec=spec,
        recipe=recipe,
        val_accuracy=float(result.val_accuracy),
        test_accuracy=float(result.test_accuracy),
        val_loss=float(result.val_loss),
        epochs=int(result.epochs),
        seconds=float(result.seconds),
        parameters=int(result.parameters),
        flops=int(result.flops),
        diverged=bool(result.diverged),
    )
