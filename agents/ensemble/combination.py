"""What ``scripts/ensemble.py combine`` runs: one combination method on a dataset's member pool, reported against
the best single member, the bar an ensemble has to clear to be worth running several models.

The methods are the rules of :mod:`trends.ensemble.combine` under their command-line names, plus ``rl``: an agent
trained on ``trendgym/EnsembleWeighting-v0`` (:func:`agents.ensemble.selection.rl_selection`). Every method fits
on the validation split; the test split is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from agents.ensemble.selection import rl_selection
from agents.tables import write_table
from trends.ensemble import MemberPool
from trends.ensemble.combine import (
    average,
    best_single,
    caruana_selection,
    majority_vote,
    soft_vote,
    stacking,
    weighted_average,
)
from trends.ensemble.metrics import member_accuracies

METHODS = ("average", "weighted-average", "vote", "soft-vote", "caruana", "stacking", "rl")
# Caruana et al.'s recommended set-up: sorted initialisation with a few of the best members, then bagged greedy
# selection (20 bags of half the members) so that no member that happens to fit the validation split takes over.
CARUANA = {"metric": "accuracy", "max_steps": 50, "sorted_init_n": 3, "bags": 20, "bag_fraction": 0.5}


@dataclass(frozen=True)
class Combined:
    """One ensemble (or single member) of a pool, scored."""

    name: str
    val_accuracy: float
    test_accuracy: float
    test_log_loss: float
    members_used: int  # members with a positive weight (all of them for stacking)
    weights: tuple[float, ...] | None  # per member, summing to 1; None for stacking
    note: str = ""


def combine(
    pool: MemberPool,
    method: str,
    seed: int = 0,
    rl_algo: str = "maskableppo",
    rl_timesteps: int | None = None,
    tensorboard_log: Path | None = None,
) -> Combined:
    """Combine ``pool``'s members by ``method`` (one of :data:`METHODS`). ``seed`` drives what is random: Caruana's
    bags, stacking's cross-validation folds, the RL agent."""
    if method == "rl":
        selection = rl_selection(pool, rl_algo, rl_timesteps, seed, tensorboard_log=tensorboard_log)
        note = f"{rl_algo}, {selection.timesteps:,} steps, from {selection.source}"
        return _combined("rl", selection.weights, selection.val_accuracy, selection.test_accuracy,
                         selection.test_log_loss, pool, note)  # fmt: skip
    rules = {
        "average": lambda: average(pool),
        "weighted-average": lambda: weighted_average(pool),
        "vote": lambda: majority_vote(pool),
        "soft-vote": lambda: soft_vote(pool),
        "caruana": lambda: caruana_selection(pool, seed=seed, **CARUANA),
        "stacking": lambda: stacking(pool, seed=seed),
    }
    if method not in rules:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    result = rules[method]()
    s, val, note = result.scores, result.scores.val_accuracy, ""
    if method == "stacking":  # fit on the validation split: its accuracy there is a training accuracy
        val, note = result.details["cv_val_accuracy"], f"val cross-validated; {s.val_accuracy:.3f} on what it fit"
    return _combined(method, result.weights, val, s.test_accuracy, s.test_log_loss, pool, note)


def single_best(pool: MemberPool) -> Combined:
    """The member of best validation accuracy, named."""
    result = best_single(pool)
    s = result.scores
    name = f"best single member ({result.details['member']})"
    return _combined(name, result.weights, s.val_accuracy, s.test_accuracy, s.test_log_loss, pool)


def _combined(
    name: str,
    weights: np.ndarray | None,
    val: float,
    test: float,
    test_log_loss: float,
    pool: MemberPool,
    note: str = "",
) -> Combined:
    used = pool.n_members if weights is None else int(np.count_nonzero(weights > 0))
    rounded = None if weights is None else tuple(float(w) for w in weights)
    return Combined(name, float(val), float(test), float(test_log_loss), used, rounded, note)


def markdown(rows: list[Combined]) -> str:
    """The rows against the first (the best single member): test accuracy and its difference."""
    base = rows[0].test_accuracy
    lines = [
        "| ensemble | val accuracy | test accuracy | vs best single | test log-loss | members used |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = row.name + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {name} | {row.val_accuracy:.3f} | {row.test_accuracy:.3f} | {row.test_accuracy - base:+.3f} | "
            f"{row.test_log_loss:.3f} | {row.members_used} |"
        )
    return "\n".join(lines)


def write_rows(rows: list[Combined], title: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.csv`` (every field; weights ``;``-joined) in ``out_dir``."""
    header = [f.name for f in fields(Combined)]
    records = [[_csv_value(getattr(row, name)) for name in header] for row in rows]
    return write_table(out_dir, stem, title, markdown(rows), header, records)


def _csv_value(value: object) -> object:
    return ";".join(f"{w:.6g}" for w in value) if isinstance(value, tuple) else ("" if value is None else value)


def pool_table(pool: MemberPool, descriptions: dict[str, str]) -> tuple[str, list[str], list[list[object]]]:
    """The pool's members, best validation accuracy first: markdown, and CSV header and rows."""
    val, test = member_accuracies(pool, "val"), member_accuracies(pool, "test")
    order = np.argsort(-val, kind="stable")
    header = ["member", "description", "val_accuracy", "test_accuracy"]
    rows = [[pool.names[i], descriptions.get(pool.names[i], ""), float(val[i]), float(test[i])] for i in order]
    lines = ["| member | what it is | val accuracy | test accuracy |", "|---|---|---:|---:|"]
    lines += [f"| {name} | {what} | {v:.3f} | {t:.3f} |" for name, what, v, t in rows]
    return "\n".join(lines), header, rows
