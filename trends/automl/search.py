"""One search run: a budget of distinct configurations, each evaluated through a backend and recorded in an Optuna
study, whatever method proposes them.

Every method of ``scripts/search.py`` (Optuna's samplers, regularized evolution, REINFORCE, an SB3 agent on the
search environment, DARTS) only proposes configurations and calls :meth:`Search.evaluate`. That one call:

- answers from the backend (the table, or a training through the evaluator's cache);
- counts the budget in *distinct* configurations: a configuration the search has already evaluated is answered
  from its history for free, so a method that proposes the same network twice is not charged twice (and cannot
  stall forever: :attr:`Search.max_proposals` ends it);
- records each new configuration as one COMPLETE trial of the search's study (value = validation accuracy; user
  attributes: the configuration, test accuracy, parameters, FLOPs, training seconds), so optuna-dashboard shows
  the search, and a search that crashed resumes from the storage.

Resuming: running the same search again (same study) finds its records in the study and serves them as history.
A method that is deterministic given its seed proposes the same configurations again; they cost nothing, and
it carries on past where it stopped: the resumed run is the run that would have happened. Optuna's samplers
instead see the study's trials and continue from them. Trials a crash left RUNNING are marked FAIL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from trends.automl.backends import Backend
from trends.automl.evaluator import Evaluation
from trends.automl.space import Config, SearchSpace
from trends.automl.table import config_json

PROPOSALS_PER_EVALUATION = 10  # proposals a method may make per budgeted evaluation before the search stops it
CONFIG_ATTR = "config"
REPEAT_ATTR = "repeat"


class BudgetExhausted(Exception):
    """Raised by :meth:`Search.evaluate` when a new configuration is asked for after the budget is spent (or a
    method has proposed :attr:`Search.max_proposals` configurations); a method lets it end its loop."""


@dataclass(frozen=True)
class SearchRecord:
    """One distinct configuration a search evaluated, in the order it was evaluated."""

    config: Config
    val_accuracy: float
    test_accuracy: float
    parameters: int
    flops: int
    seconds: float  # what training it cost (on the table: what it cost when the table was built)

    @classmethod
    def of(cls, config: Mapping[str, Any], evaluation: Evaluation) -> SearchRecord:
        return cls(
            config=dict(config),
            val_accuracy=evaluation.val_accuracy,
            test_accuracy=evaluation.test_accuracy,
            parameters=evaluation.parameters,
            flops=evaluation.flops,
            seconds=evaluation.seconds,
        )

    def user_attrs(self) -> dict[str, Any]:
        return {
            CONFIG_ATTR: config_json(self.config),
            "test_accuracy": self.test_accuracy,
            "parameters": self.parameters,
            "flops": self.flops,
            "seconds": self.seconds,
        }


class Search:
    """The budget, history and records of one search run.

    :param backend: scores configurations (its ``space`` is the space searched)
    :param budget: distinct configurations to evaluate
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
        self.max_proposals = PROPOSALS_PER_EVALUATION * budget
        self.proposals = 0
        self.records: list[SearchRecord] = []
        self._known: dict[str, SearchRecord] = {}
        self._resume()

    # -- what methods call ---------------------------------------------------------------------------------------

    def evaluate(self, config: Mapping[str, Any], trial: optuna.Trial | None = None) -> SearchRecord:
        """The record of ``config``: from the history when this search has evaluated it, else from the backend
        (recorded, and charged to the budget). BudgetExhausted when it is new and the budget is spent.

        :param trial: the Optuna trial that proposed ``config`` (Optuna's samplers): it is given the record's
            attributes and the caller tells it; without one, a new configuration is added to the study as a
            finished trial
        """
        self.proposals += 1
        key = config_json(self.space.canonical(config))
        known = self._known.get(key)
        if known is None and (self.done or self.proposals > self.max_proposals):
            raise BudgetExhausted(self._exhausted_reason())
        if known is not None:
            if trial is not None:
                trial.set_user_attr(CONFIG_ATTR, key)
                trial.set_user_attr(REPEAT_ATTR, True)
            return known
        record = SearchRecord.of(json.loads(key), self.backend.evaluate(json.loads(key)))
        self._remember(key, record)
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

    @property
    def done(self) -> bool:
        """Whether the budget of distinct configurations is spent."""
        return len(self.records) >= self.budget

    @property
    def remaining(self) -> int:
        return max(0, self.budget - len(self.records))

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

    # -- history -------------------------------------------------------------------------------------------------

    def _remember(self, key: str, record: SearchRecord) -> None:
        self._known[key] = record
        self.records.append(record)

    def _resume(self) -> None:
        """Load the study's records as history; a trial a crash left RUNNING is marked FAIL (its evaluation, if it
        finished, is in the evaluator's cache and costs nothing to ask again)."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                self.study.tell(trial.number, state=TrialState.FAIL)
                continue
            key = trial.user_attrs.get(CONFIG_ATTR)
            repeat = trial.user_attrs.get(REPEAT_ATTR, False)
            if trial.state != TrialState.COMPLETE or key is None or repeat or key in self._known:
                continue
            attrs = trial.user_attrs
            record = SearchRecord(
                config=json.loads(key),
                val_accuracy=float(trial.value),
                test_accuracy=float(attrs["test_accuracy"]),
                parameters=int(attrs["parameters"]),
                flops=int(attrs["flops"]),
                seconds=float(attrs["seconds"]),
            )
            self._remember(key, record)

    def stop_reason(self) -> str:
        """Why a search that has ended ended, in words for a report."""
        if self.done:
            return "budget spent"
        if self.proposals > self.max_proposals:
            return f"stalled: {self.max_proposals} proposals gave {len(self.records)} distinct configurations"
        return f"the method ended after {len(self.records)} of {self.budget} configurations"

    def _exhausted_reason(self) -> str:
        if self.done:
            return f"the budget of {self.budget} configurations is spent"
        return (
            f"{self.proposals - 1} proposals gave only {len(self.records)} distinct configurations; the method stalled"
        )
