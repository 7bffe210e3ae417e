"""What a tuning leaves beside its study: the best hyper-parameters as a YAML block, the trials as a CSV, and plots.

* ``best.yml``: the best complete trial's entry, keyed by the env id, in exactly the format of
  ``agents/hyperparams/<algo>.yml`` (``train.py --hyperparams-file best.yml`` trains from it, or paste it in);
* ``trials.csv``: one row per trial (number, state, value, duration, clean-run rate, params);
* ``history.png``: each trial's value and the best so far (Optuna's optimisation history);
* ``importance.png``: how much each hyper-parameter explains the values (Optuna's fANOVA importances), or
  a note saying why not yet (it needs two complete trials that differ);
* ``curves.png``: every trial's evaluations, where the pruned ones stop.

Every file is written atomically (:mod:`trends.files`), so an interrupted tuning never leaves half a report.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from agents.seeds import VALIDATION_SEED
from trends.automl.evaluator import quiet_optuna
from trends.files import atomic_file, atomic_write_text

BEST_FILE = "best.yml"
TRIALS_FILE = "trials.csv"
HISTORY_FILE = "history.png"
IMPORTANCE_FILE = "importance.png"
CURVES_FILE = "curves.png"


class _Dumper(yaml.SafeDumper):
    """Writes ``policy_kwargs`` strings in double quotes, as the hand-written files do."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "(" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def best_yaml(trial: FrozenTrial, env: str, study_name: str, storage: str, finished: int, how_to_train: str) -> str:
    """The best trial's entry as a block of ``<algo>.yml``, with where it comes from in comments."""
    entry = trial.user_attrs["hyperparams"]
    record = trial.user_attrs
    clean = record.get("clean_rate")
    clean_text = f", {clean:.0%} clean runs" if clean is not None else ""
    header = [
        f"# Tuned by train.py --optimize: study {study_name!r} in {storage}, best of {finished} finished trials.",
        f"# Trial {trial.number}: mean return {trial.value:.2f}{clean_text} on the validation courses "
        f"(seeds {VALIDATION_SEED}+) after {record.get('timesteps', entry.get('n_timesteps'))} steps.",
        f"# n_timesteps is the trial budget the values were tuned at. Train from this file: {how_to_train}",
    ]
    body = yaml.dump({env.split(":")[-1]: entry}, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def trials_csv(study: optuna.Study) -> str:
    """Every trial as a CSV row; params and the attributes the tuner records as columns."""
    trials = study.get_trials(deepcopy=False)
    params = sorted({name for t in trials for name in t.params})
    header = ["number", "state", "value", "duration_s", "clean_rate", "timesteps", "evaluations", "note"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header + params)
    for t in trials:
        duration = t.duration.total_seconds() if t.duration is not None else None
        note = t.user_attrs.get("diverged") or ("surplus" if t.user_attrs.get("surplus") else "")
        row = [
            t.number,
            t.state.name,
            t.value,
            None if duration is None else round(duration, 1),
            t.user_attrs.get("clean_rate"),
            t.user_attrs.get("timesteps"),
            len(t.intermediate_values),
            note,
        ]
        writer.writerow(["" if v is None else v for v in row] + [t.params.get(name, "") for name in params])
    return out.getvalue()


def _save_figure(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100, bbox_inches="tight")  # keeps a legend placed outside the axes
    plt.close(figure)


def _note_figure(title: str, text: str) -> Any:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return figure


def importance_figure(study: optuna.Study) -> tuple[Any, dict[str, float] | None]:
    """Optuna's importance plot, or a note when there is nothing to measure yet; also the importances."""
    from optuna.visualization.matplotlib import plot_param_importances

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.params]
    if len(complete) < 2:
        return _note_figure("Hyper-parameter importance", "needs at least 2 complete trials"), None
    try:
        importances = optuna.importance.get_param_importances(study)
        return plot_param_importances(study).figure, importances
    except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. every complete trial has the same params
        return _note_figure("Hyper-parameter importance", f"not measurable yet: {e}"), None


def write_report(study: optuna.Study, out_dir: Path, best_text: str | None) -> dict[str, Any]:
    """Write the report files into ``out_dir``; returns their paths and the importances (None if not measurable)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no window, also on a headless worker
    from optuna.visualization.matplotlib import plot_intermediate_values, plot_optimization_history

    out_dir = Path(out_dir)
    written: dict[str, Any] = {}
    if best_text is not None:
        atomic_write_text(out_dir / BEST_FILE, best_text)
        written["best"] = out_dir / BEST_FILE
    atomic_write_text(out_dir / TRIALS_FILE, trials_csv(study))
    written["trials"] = out_dir / TRIALS_FILE
    with quiet_optuna(optuna.logging.ERROR), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matplotlib's "no artists with labels" on an empty history
        _save_figure(plot_optimization_history(study).figure, out_dir / HISTORY_FILE)
        figure, importances = importance_figure(study)
        _save_figure(figure, out_dir / IMPORTANCE_FILE)
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
            _save_figure(plot_intermediate_values(study).figure, out_dir / CURVES_FILE)
            written["curves"] = out_dir / CURVES_FILE
    written.update(history=out_dir / HISTORY_FILE, importance=out_dir / IMPORTANCE_FILE, importances=importances)
    return written
