"""One search run: a budget of configurations, each evaluated through a backend and recorded in an Optuna study,
whatever method proposes them.

Every method of ``scripts/search.py`` (Optuna's samplers, regularized evolution, REINFORCE, an SB3 agent on the
search environment, DARTS) only proposes configurations and calls :meth:`Search.evaluate`. That one call:

- answers from the backend (the table, or a training through the evaluator's cache);
- charges one unit of the budget per configuration the method asks for. A configuration the search has seen
  before is answered from its history without training, but it still costs its unit: on a table, as in
  NAS-Bench-201's comparisons, a method is charged per query, so a method that keeps proposing the network it
  already has wastes its budget the way it would waste a training slot, and no method can loop forever;
- records each one as a COMPLETE trial of the search's study (value = validation accuracy; user attributes: the
  configuration, test accuracy, parameters, FLOPs, training seconds, and whether it repeats an earlier one), so
  optuna-dashboard shows the search, and a search that crashed resumes from the storage.

Resuming: running the same search again (same study) loads its records. A method that proposes without an
Optuna trial (evolution, REINFORCE, the RL agent, DARTS) is *replayed*: while it proposes exactly what it proposed
before, it is answered from the records, free and unrecorded, so a method that is deterministic given its seed
retraces the interrupted run and carries on from where it stopped: the resumed run is the run that would have
happened. Optuna's samplers instead see the study's trials and continue from them, with the records counted
against the budget. Trials a crash left RUNNING are marked FAIL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from trends.automl.backends import Backend
from trends.automl.evaluator import Evaluation
from trends.automl.space import Config, SearchSpace
from trends.automl.table import config_json

CONFIG_ATTR = "config"
REPEAT_ATTR = "repeat"


class BudgetExhausted(Exception):
    """Raised by :meth:`Search.evaluate` when the budget is spent; a method lets it end its loop."""


@dataclass(frozen=True)
class SearchRecord:
    """One configuration a search evaluated, in the order it was proposed."""

    config: Config
    val_accuracy: float
    test_accuracy: float
    parameters: int
    flops: int
    seconds: float  # what training it cost (on the table: what it cost when the table was built)
    repeat: bool = False  # the search had evaluated this configuration before (answered without training)

    @classmethod
    def of(cls, config: Mapping[str, Any], evaluation: Evaluation, repeat: bool = False) -> SearchRecord:
        return cls(
            config=dict(config),
            val_accuracy=evaluation.val_accuracy,
            test_accuracy=evaluation.test_accuracy,
            parameters=evaluation.parameters,
            flops=evaluation.flops,
            seconds=evaluation.seconds,
            repeat=repeat,
        )

    @classmethod
    def of_trial(cls, trial: optuna.trial.FrozenTrial) -> SearchRecord:
        attrs = trial.user_attrs
        return cls(
            config=json.loads(attrs[CONFIG_ATTR]),
            val_accuracy=float(trial.value),
            test_accuracy=float(attrs["test_accuracy"]),
            parameters=int(attrs["parameters"]),
            flops=int(attrs["flops"]),
            seconds=float(attrs["seconds"]),
            repeat=bool(attrs.get(REPEAT_ATTR, False)),
        )

    def user_attrs(self) -> dict[str, Any]:
        return {
            CONFIG_ATTR: config_json(self.config),
            "test_accuracy": self.test_accuracy,
            "parameters": self.parameters,
            "flops": self.flops,
            "seconds": self.seconds,
            REPEAT_ATTR: self.repeat,
        }


class Search:
    """The budget, history and records of one search run.

    :param backend: scores configurations (its ``space`` is the space searched)
    :param budget: configurations to evaluate (repeats included)
    :param study: the Optuna study that records this search (direction maximize); its earlier records are loaded
        as this search's history
    """

    def __init__(self, backend: Backend, budget: int, study: optuna.Study) -> None:
        if budget < 1:
            raise ValueError(f"the budget must be at least 1 configuration, got {budget}")
        self.backend = backend
        self.space: SearchSpace = backend.space
        self.budget = budget
        self.study = study
        self.records: list[SearchRecord] = []  # every evaluation, in order
        self._known: dict[str, SearchRecord] = {}  # configuration key -> its first record
        self._resume()
        self._earlier = list(self.records)  # what a replayed method must propose again, in order
        self._proposals = 0  # made in this run

    # -- what methods call ---------------------------------------------------------------------------------------

    def evaluate(self, config: Mapping[str, Any], trial: optuna.Trial | None = None) -> SearchRecord:
        """The record of ``config``, charged to the budget: from the search's history when it has evaluated it
        before (no training), else from the backend. BudgetExhausted when the budget is spent.

        :param trial: the Optuna trial that proposed ``config`` (Optuna's samplers): it is given the record's
            attributes and the caller tells it; without one the record is added to the study as a finished trial,
            unless it replays an earlier run's proposal (see the module's notes on resuming)
        """
        key = config_json(self.space.canonical(config))
        replayed = self._replay(key) if trial is None else None
        if replayed is not None:
            return replayed
        if self.done:
            raise BudgetExhausted(f"the budget of {self.budget} configurations is spent")
        known = self._known.get(key)
        if known is not None:
            record = replace(known, repeat=True)
        else:
            record = SearchRecord.of(json.loads(key), self.backend.evaluate(json.loads(key)))
            self._known[key] = record
        self.records.append(record)
        if trial is not None:
            for name, value in record.user_attrs().items():
                trial.set_user_attr(name, value)
        else:
            self.study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE, value=record.val_accuracy, user_attrs=record.user_attrs()
                )
            )
        return record

    def _replay(self, key: str) -> SearchRecord | None:
        """The earlier run's record of this proposal when the method is retracing it, else None (and replaying
        ends for good at the first proposal that differs)."""
        i = self._proposals
        self._proposals += 1
        if i < len(self._earlier) and config_json(self._earlier[i].config) == key:
            return self._earlier[i]
        self._earlier = []
        return None

    @property
    def done(self) -> bool:
        """Whether the budget is spent."""
        return len(self.records) >= self.budget

    @property
    def distinct(self) -> int:
        """How many different configurations the search has evaluated."""
        return len(self._known)

    def best(self) -> SearchRecord | None:
        """The record of the best validation accuracy so far (the earliest of equals), None before any."""
        return max(self.records, key=lambda r: r.val_accuracy, default=None)

    def anytime(self) -> np.ndarray:
        """(evaluations, 2) array: after each evaluation, the best validation accuracy so far and the test accuracy
        of that configuration: the anytime curve a comparison plots."""
        curve = np.empty((len(self.records), 2))
        best = -math.inf
        test = math.nan
        for i, record in enumerate(self.records):
            if record.val_accuracy > best:
                best, test = record.val_accuracy, record.test_accuracy
            curve[i] = best, test
        return curve

    def stop_reason(self) -> str:
        """Why a search that has ended ended, in words for a report."""
        if self.done:
            return "budget spent"
        return f"the method ended after {len(self.records)} of {self.budget} configurations"

    # -- history -------------------------------------------------------------------------------------------------

    def _resume(self) -> None:
        """Load the study's records as history; a trial a crash left RUNNING is marked FAIL (its evaluation, if it
        finished, is in the evaluator's cache and costs nothing to ask again)."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                self.study.tell(trial.number, state=TrialState.FAIL)
            elif trial.state == TrialState.COMPLETE and CONFIG_ATTR in trial.user_attrs:
                record = SearchRecord.of_trial(trial)
                self.records.append(record)
                self._known.setdefault(config_json(record.config), record)
