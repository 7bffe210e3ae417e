"""Is a committee of skiers more robust than any one of them? Five green-slope PPO skiers trained with different
seeds (:func:`agents.compression.teachers.ski_teacher`, seeds 0-4) each alone and as one
:class:`agents.ensemble.policies.PolicyEnsemble`, on unseen courses of the slope they trained on (green) and of the
next harder one (blue).

Every policy skis the same courses, so the ensemble is compared with its members course by course: the table gives
each member's return and clean-run rate, the members' mean ± standard deviation (the spread a single training run
has) and the best member, then the ensemble by majority vote and by soft vote (mean action probabilities). A second
table gives the ensemble's return minus the members' mean, paired by course, and how often the five members chose
the same action on the states the voting ensemble visited: an ensemble can only correct its members where they
disagree.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.compression.teachers import DEFAULT_ROOT, ENV_ID, ski_teacher
from agents.ensemble.policies import DISCRETE_RULES, PolicyEnsemble
from agents.evaluation import EvaluationResult, env_of_run, evaluate
from agents.runs import LoadedAgent, load_agent
from agents.seeds import TEST_SEED, test_seeds
from envs.ski.course import SLOPES

BENCH_NAME = "ensemble_agents"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EnsembleAgentsConfig:
    """What the benchmark runs; ``scripts/bench.py`` should use the same names."""

    teacher_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # the members, one green teacher per seed (trained if missing)
    slopes: tuple[str, ...] = ("green", "blue")  # the slope they trained on, then the next harder one
    rules: tuple[str, ...] = DISCRETE_RULES  # how the members combine: "vote" (majority) and/or "soft"
    episodes: int = 50  # unseen courses per slope, seeds ``seed``, ``seed + 1``...
    seed: int = TEST_SEED  # the first course seed (agents.seeds: never a training or validation course)
    teacher_root: Path = DEFAULT_ROOT  # where the teachers are found (and trained when missing)

    def __post_init__(self) -> None:
        checks = [
            (len(self.teacher_seeds) >= 2, "teacher_seeds must name at least two members"),
            (bool(self.slopes) and set(self.slopes) <= set(SLOPES), f"slopes must be among {tuple(SLOPES)}"),
            (bool(self.rules) and set(self.rules) <= set(DISCRETE_RULES), f"rules must be among {DISCRETE_RULES}"),
            (self.episodes >= 1, "episodes must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class PolicyRun:
    """One policy (a member or an ensemble) on one slope's courses."""

    name: str  # "seed 3" for a member, "vote" or "soft" for the ensemble
    is_ensemble: bool
    slope: str
    return_mean: float
    return_std: float  # population standard deviation over the courses
    clean_rate: float  # share of courses skied with every gate passed, no fall, no tree
    metrics: dict[str, float]  # every episode metric's mean (gates passed, falls, tree hits, time...)
    returns: list[float]  # per course, in course order: the pairing between policies
    unanimous: float | None = None  # vote only: share of visited states where every member chose the same action


@dataclass
class EnsembleAgentsResult:
    config: EnsembleAgentsConfig
    teachers: dict[int, str] = field(default_factory=dict)  # teacher seed -> run folder
    runs: list[PolicyRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=lambda: {**machine_info(), "torch": torch.__version__})

    def members(self, slope: str) -> list[PolicyRun]:
        return [r for r in self.runs if r.slope == slope and not r.is_ensemble]

    def ensemble(self, slope: str, rule: str) -> PolicyRun:
        return next(r for r in self.runs if r.slope == slope and r.is_ensemble and r.name == rule)

    def best_member(self, slope: str) -> PolicyRun:
        """The member with the highest mean return on this slope (chosen after the fact: an optimistic bar)."""
        return max(self.members(slope), key=lambda r: r.return_mean)

    def gain(self, slope: str, rule: str, against: str = "mean") -> dict[str, float]:
        """The ensemble's return minus the members' mean (or the best member's), course by course: mean and
        standard error over the courses."""
        members = self.members(slope)
        if against == "best":
            baseline = np.asarray(self.best_member(slope).returns)
        else:
            baseline = np.mean([r.returns for r in members], axis=0)
        diff = np.asarray(self.ensemble(slope, rule).returns) - baseline
        sem = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
        return {"mean": float(diff.mean()), "sem": sem}

    def summary(self, slope: str) -> dict[str, Any]:
        members = self.members(slope)
        best = self.best_member(slope)
        return {
            "slope": slope,
            "members": {key: _spread([getattr(r, key) for r in members]) for key in ("return_mean", "clean_rate")},
            "best_member": {"name": best.name, "return_mean": best.return_mean, "clean_rate": best.clean_rate},
            "ensembles": {
                rule: {
                    "return_mean": self.ensemble(slope, rule).return_mean,
                    "clean_rate": self.ensemble(slope, rule).clean_rate,
                    "gain_over_members_mean": self.gain(slope, rule),
                    "gain_over_best_member": self.gain(slope, rule, "best"),
                    "unanimous": self.ensemble(slope, rule).unanimous,
                }
                for rule in self.config.rules
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": ENV_ID,
            "config": {**asdict(self.config), "teacher_root": str(self.config.teacher_root)},
            "course_seeds": [self.config.seed, self.config.seed + self.config.episodes - 1],
            "teachers": {str(seed): path for seed, path in self.teachers.items()},
            "machine": self.machine,
            "summary": [self.summary(slope) for slope in self.config.slopes],
            "runs": [asdict(r) for r in self.runs],
        }

    def to_markdown(self) -> str:
        parts = [_results_table(self), _gain_table(self), _how_to_read(self), _setup(self)]
        return "\n\n".join(parts) + "\n"


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (None for one value) over the members."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def _cells(run: PolicyRun) -> list[str]:
    gates = f"{run.metrics.get('gates_passed', math.nan):.1f}/{SLOPES[run.slope].n_gates}"
    return [f"{run.return_mean:.1f}", f"{run.clean_rate:.0%}", gates]


def _results_table(result: EnsembleAgentsResult) -> str:
    """Return, clean-run rate and gates passed per slope: every member, the members' mean ± std and best, then the
    ensembles."""
    slopes = result.config.slopes
    header = ["policy", *(f"{slope} {what}" for slope in slopes for what in ("return", "clean runs", "gates"))]
    rows = []
    for i, seed in enumerate(result.teachers):
        rows.append([f"member: seed {seed}", *(c for slope in slopes for c in _cells(result.members(slope)[i]))])
    spread_cells = []
    for slope in slopes:
        members = result.members(slope)
        ret, clean = (_spread([getattr(r, key) for r in members]) for key in ("return_mean", "clean_rate"))
        gates = _spread([r.metrics.get("gates_passed", math.nan) for r in members])
        spread_cells += [
            f"{ret['mean']:.1f} ± {ret['std']:.1f}",
            f"{clean['mean']:.0%} ± {100 * clean['std']:.0f}%",
            f"{gates['mean']:.1f} ± {gates['std']:.1f}",
        ]
    rows.append(["members: mean ± std", *spread_cells])
    rows.append(["best member (in hindsight)", *(c for slope in slopes for c in _cells(result.best_member(slope)))])
    for rule in result.config.rules:
        label = f"**ensemble of {len(result.teachers)}, {_RULE_LABELS[rule]}**"
        rows.append([label, *(f"**{c}**" for slope in slopes for c in _cells(result.ensemble(slope, rule)))])
    return markdown_table(header, rows)


_RULE_LABELS = {"vote": "majority vote", "soft": "soft vote"}


def _gain_table(result: EnsembleAgentsResult) -> str:
    """The ensemble against its members on the same courses, and how often the members agreed."""
    header = ["slope", "ensemble", "return − members' mean", "return − best member", "members unanimous"]
    rows = []
    for slope in result.config.slopes:
        for rule in result.config.rules:
            mean, best = result.gain(slope, rule), result.gain(slope, rule, "best")
            unanimous = result.ensemble(slope, rule).unanimous
            rows.append(
                [
                    slope,
                    _RULE_LABELS[rule],
                    f"{mean['mean']:+.1f} ± {mean['sem']:.1f}",
                    f"{best['mean']:+.1f} ± {best['sem']:.1f}",
                    f"{unanimous:.1%}" if unanimous is not None else "-",
                ]
            )
    return markdown_table(header, rows)


def _how_to_read(result: EnsembleAgentsResult) -> str:
    c = result.config
    n = len(result.teachers)
    return (
        f"**How to read it.** {n} PPO skiers, identical but for their training seed, ski the same {c.episodes} "
        "unseen courses of each slope, alone and as one agent. Return is the mean over the courses; clean runs the "
        "share of courses with every gate passed and no fall or tree; gates the mean number of gates passed. "
        "'members: mean ± std' is what one training run gives on average and how much that varies with the seed; "
        "'best member' is picked after seeing the results, so it is a bar no one could have chosen in advance. A "
        "majority vote takes, at each step, the action most members chose (a tie goes to the tied action of the "
        "first member listed, seed order); a soft vote averages the members' action probabilities and takes the "
        "most likely action. The second table pairs the courses: the ensemble's return minus the members' mean "
        "return on the same course (or the best member's), averaged, ± its standard error over the courses. "
        "'members unanimous' is the share of the states the voting ensemble visited on which all members chose the "
        "same action: there the ensemble does what any member would, so it can only correct (or spoil) its "
        "members where they disagree. Green is the slope they trained on; blue (18° against 12°, 12 narrower and "
        "more offset gates instead of 8, twice the trees per gate) is the robustness test: the members' mistakes "
        "there are no longer trained away, and a vote helps only if they make different ones. "
        f"{_verdict(result)}"
    )


def _verdict(result: EnsembleAgentsResult) -> str:
    """What this run measured, in words: the first rule's ensemble against the members' mean and the best member."""
    rule = result.config.rules[0]
    parts = []
    for slope in result.config.slopes:
        gain, ensemble = result.gain(slope, rule), result.ensemble(slope, rule)
        members_mean = statistics.fmean(r.return_mean for r in result.members(slope))
        text = (
            f"on {slope} the {_RULE_LABELS[rule]} scored {ensemble.return_mean:.1f}, {gain['mean']:+.1f} ± "
            f"{gain['sem']:.1f} against the members' mean ({members_mean:.1f}) and "
            f"{ensemble.return_mean - result.best_member(slope).return_mean:+.1f} against the best member"
        )
        if ensemble.unanimous is not None:
            text += f", its members agreeing on {ensemble.unanimous:.0%} of its states"
        parts.append(text)
    return "Here " + "; ".join(parts) + "."


def _setup(result: EnsembleAgentsResult) -> str:
    c = result.config
    return (
        f"`{ENV_ID}`, deterministic actions; members: PPO, `agents/hyperparams/ppo.yml` recipe (net_arch [64, 64], "
        f"VecNormalize, each member normalising with its own statistics), trained on green, seeds "
        f"{', '.join(map(str, result.teachers))}. Courses: seeds {c.seed}-{c.seed + c.episodes - 1} on every slope. "
        f"Machine: {format_machine(result.machine)}, torch {result.machine['torch']}. "
        "Regenerate with `.venv/bin/python scripts/bench.py ensemble-agents`."
    )


class _AgreementTally:
    """A voting ensemble that also counts the states on which all its members chose the same action."""

    def __init__(self, ensemble: PolicyEnsemble) -> None:
        self.ensemble = ensemble
        self.states = 0
        self.unanimous = 0

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        actions, batched = self.ensemble.member_actions(observation, deterministic)
        self.states += actions.shape[1]
        self.unanimous += int(np.all(actions == actions[:1], axis=0).sum())
        combined = self.ensemble.combine(actions)
        return (combined if batched else combined[0]), None

    @property
    def share(self) -> float:
        return self.unanimous / self.states if self.states else math.nan


def _policy_run(
    name: str, evaluation: EvaluationResult, slope: str, is_ensemble: bool, unanimous: float | None = None
) -> PolicyRun:
    means = evaluation.metric_means()
    return PolicyRun(
        name=name,
        is_ensemble=is_ensemble,
        slope=slope,
        return_mean=evaluation.mean_return,
        return_std=evaluation.std_return,
        clean_rate=means.get("clean", math.nan),
        metrics=means,
        returns=evaluation.returns,
        unanimous=unanimous,
    )


def run_slope(agents: dict[int, LoadedAgent], slope: str, config: EnsembleAgentsConfig) -> list[PolicyRun]:
    """Every member, then every ensemble rule, on the same courses of ``slope``."""
    first = next(iter(agents.values()))
    env_id, env_kwargs = env_of_run(first.config, slope=slope)
    seeds = test_seeds(config.episodes, start=config.seed)
    runs = [
        _policy_run(f"seed {seed}", evaluate(agent, env_id, env_kwargs, seeds), slope, False)
        for seed, agent in agents.items()
    ]
    for rule in config.rules:
        ensemble = PolicyEnsemble(list(agents.values()), rule=rule)
        if rule == "vote":
            tally = _AgreementTally(ensemble)
            runs.append(_policy_run(rule, evaluate(tally, env_id, env_kwargs, seeds), slope, True, tally.share))
        else:
            runs.append(_policy_run(rule, evaluate(ensemble, env_id, env_kwargs, seeds), slope, True))
    return runs


def run_ensemble_agents(
    config: EnsembleAgentsConfig | None = None, progress: Progress | None = None
) -> EnsembleAgentsResult:
    """The members and their ensembles on every slope of ``config``, on one torch thread (a teacher missing under
    ``config.teacher_root`` is trained first, once)."""
    config = config or EnsembleAgentsConfig()
    result = EnsembleAgentsResult(config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        agents = {}
        for seed in config.teacher_seeds:
            run_dir = ski_teacher(seed, root=config.teacher_root)
            result.teachers[seed] = str(run_dir)
            agents[seed] = load_agent(run_dir, device="cpu")
        for slope in config.slopes:
            runs = run_slope(agents, slope, config)
            result.runs += runs
            if progress:
                progress(f"{slope}: " + ", ".join(f"{r.name} {r.return_mean:.1f} ({r.clean_rate:.0%})" for r in runs))
    finally:
        torch.set_num_threads(previous_threads)
    return result


def write_ensemble_agents_report(
    result: EnsembleAgentsResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Ensembles of agents: five skiers voting, on the slope they trained on and the next harder one"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
