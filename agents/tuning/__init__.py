"""Tuning an agent's hyper-parameters, RL Baselines3 Zoo's ``train.py -optimize`` on a shared Optuna study.

``train.py --optimize`` (:func:`tune`) samples an algorithm's hyper-parameters on top of its YAML entry for the
env (:mod:`agents.tuning.spaces`), trains each sample for a short budget judged on fixed validation courses and
pruned early on its evaluation curve (:mod:`agents.tuning.objective`), in one Optuna study that any number of
worker processes and machines share through its storage (:mod:`agents.tuning.study`), and leaves the best
hyper-parameters as a YAML block, a CSV of the trials and plots beside the study (:mod:`agents.tuning.report`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from agents.cli import shown
from agents.tuning.report import BEST_FILE, write_report
from agents.tuning.report import best_yaml as _best_yaml
from agents.tuning.study import (
    PRUNERS,
    SAMPLERS,
    StudyPlan,
    TuneConfig,
    best_trial,
    count_trials,
    open_tuning_study,
    plan_study,
    run_workers,
)
from trends.automl.evaluator import redacted

__all__ = ["PRUNERS", "SAMPLERS", "TuneConfig", "TuneResult", "plan_study", "tune"]


@dataclass
class TuneResult:
    """Where a tuning stands when it returns (budget spent, or Ctrl-C)."""

    study_name: str
    storage: str  # the URL, password hidden
    out_dir: Path
    finished: int  # COMPLETE and PRUNED trials in the study
    ran: int  # trials this call finished
    best: FrozenTrial | None
    interrupted: bool
    states: dict[str, int] = field(default_factory=dict)  # trials by state name (COMPLETE, PRUNED, FAIL...)
    written: dict[str, Any] = field(default_factory=dict)

    @property
    def best_file(self) -> Path | None:
        return self.written.get("best")


def how_to_train(plan: StudyPlan, path: Path) -> str:
    setup = plan.setup
    kwargs = " ".join(f"{k}:{v}" for k, v in setup.env_kwargs.items())
    env_kwargs = f" --env-kwargs {kwargs}" if kwargs else ""
    return shown(f"python scripts/train.py --algo {setup.algo} --env {setup.env}{env_kwargs} --hyperparams-file {path}")


def tune(config: TuneConfig) -> TuneResult:
    """Run (or resume, or join as one more worker) the study ``config`` describes until it holds ``n_trials``
    finished trials or Ctrl-C, then write the report for every trial done so far. ConfigError, HyperparamsError,
    AlgorithmError for the user's mistakes; ValueError for a storage that cannot be opened."""
    plan = plan_study(config)
    study = open_tuning_study(plan, config, heartbeats=False)  # checks the storage and the task before any worker
    before = count_trials(study)
    outcome = run_workers(plan, config)
    best = best_trial(study)
    finished = count_trials(study)
    storage = redacted(plan.storage)
    best_text = None
    if best is not None:
        best_path = plan.out_dir / BEST_FILE
        best_text = _best_yaml(best, plan.setup.env, plan.study_name, storage, finished, how_to_train(plan, best_path))
    written = write_report(study, plan.out_dir, best_text)
    return TuneResult(
        study_name=plan.study_name,
        storage=storage,
        out_dir=plan.out_dir,
        finished=finished,
        ran=max(finished - before, 0),
        best=best,
        interrupted=outcome.interrupted,
        states=dict(Counter(t.state.name for t in study.get_trials(deepcopy=False))),
        written=written,
    )
