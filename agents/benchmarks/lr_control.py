"""How well the non-learning learning-rate controllers train the instances of ``LearningRateControl-v0``: the
hand-made schedules of :mod:`envs.automl.lr_schedules` (constant, step decay, cosine), the constant rate at the
middle of the action range (what an untrained Gaussian policy plays) and a uniformly random controller (the
floor). A learned controller is judged against these numbers, on the same train and test instances.

Every instance of a set is trained once per policy (``reset(options={"instance": i})``; an instance's seed fixes
its weights and batch order, so the only randomness left is the random controller's, seeded by ``seed``). Box
actions. The wall time of an episode covers the reset (building and measuring the network), every epoch and the
final test measurement; the datasets are loaded before any clock starts.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  registers the trendgym/ ids
from agents.baselines import RandomPolicy
from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.evaluation import Policy
from envs.automl.lr_control_env import DEFAULT_EPOCHS, INSTANCE_SETS, Instance, action_to_learning_rate
from envs.automl.lr_schedules import ConstantSchedule, CosineSchedule, StepDecaySchedule
from trends.data import load_dataset

BENCH_NAME = "lr_control"
ENV_ID = "trendgym/LearningRateControl-v0"
SET_NAMES = tuple(INSTANCE_SETS)  # "train", "test"
MIDDLE_RATE = action_to_learning_rate(0.0)  # 10**-1.5, about 0.03: Box action 0
POLICY_NAMES = ("constant", "step", "cosine", "middle", "random")

Progress = Callable[[str], None]


def make_policy(name: str, action_space: gym.spaces.Space, seed: int = 0) -> Policy:
    """The baseline ``name`` (one of :data:`POLICY_NAMES`) answering in ``action_space``; the schedules keep
    their defaults (they start from the best constant rate over the default instances, 0.3)."""
    if name == "constant":
        return ConstantSchedule(action_space)
    if name == "step":
        return StepDecaySchedule(action_space)
    if name == "cosine":
        return CosineSchedule(action_space)
    if name == "middle":
        return ConstantSchedule(action_space, MIDDLE_RATE)
    if name == "random":
        return RandomPolicy(action_space, seed=seed)
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")


def describe_policy(name: str) -> str:
    """The policy with its learning rates, as the table shows it, read from the policy itself."""
    policy = make_policy(name, gym.spaces.Box(-1.0, 1.0, (1,)))
    if isinstance(policy, StepDecaySchedule):
        milestones = " and ".join(f"{m:.0%}" for m in policy.milestones)
        return f"step ({policy.initial:g}, ×{policy.factor:g} at {milestones})"
    if isinstance(policy, CosineSchedule):
        return f"cosine ({policy.initial:g} → {policy.final:g})"
    if isinstance(policy, ConstantSchedule):
        return f"{name} ({policy.rate:.2g})"
    return "random (1e-4 to 10, log-uniform)"


@dataclass(frozen=True)
class LrControlConfig:
    sets: tuple[str, ...] = SET_NAMES  # instance sets to train, each instance once per policy
    policies: tuple[str, ...] = POLICY_NAMES  # baselines to run, in the table's order
    seed: int = 0  # the random controller's generator, seeded afresh for each set
    max_instances: int | None = None  # only the first n instances of each set (a quick look); None for all

    def __post_init__(self) -> None:
        checks = [
            (bool(self.sets) and set(self.sets) <= set(SET_NAMES), f"sets must be among {SET_NAMES}, got {self.sets}"),
            (
                bool(self.policies) and set(self.policies) <= set(POLICY_NAMES),
                f"policies must be among {POLICY_NAMES}, got {self.policies}",
            ),
            (self.seed >= 0, f"seed must be non-negative, got {self.seed}"),
            (
                self.max_instances is None or self.max_instances >= 1,
                f"max_instances must be at least 1, got {self.max_instances}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def instances(self, instance_set: str) -> tuple[Instance, ...]:
        return INSTANCE_SETS[instance_set][: self.max_instances]


@dataclass
class Episode:
    """One training of one instance under one policy, as the last ``info`` reports it."""

    instance: str
    problem: str
    episode_return: float
    epochs: int
    crashed: bool
    final_val_accuracy: float
    test_accuracy: float
    seconds: float  # wall time of reset and every step


@dataclass
class PolicyRun:
    """One policy on every instance of one set."""

    policy: str
    instance_set: str
    episodes: list[Episode] = field(default_factory=list)

    @property
    def returns(self) -> list[float]:
        return [e.episode_return for e in self.episodes]

    @property
    def mean_return(self) -> float:
        return statistics.fmean(self.returns)

    @property
    def standard_error(self) -> float:
        """Standard error of the mean return over instances (sample standard deviation / sqrt n); NaN for one."""
        n = len(self.returns)
        return statistics.stdev(self.returns) / math.sqrt(n) if n > 1 else math.nan

    @property
    def crash_rate(self) -> float:
        return statistics.fmean(e.crashed for e in self.episodes)

    def mean(self, key: str) -> float:
        return statistics.fmean(getattr(e, key) for e in self.episodes)

    def median_seconds(self, problem: str | None = None) -> float:
        """Median wall time of an episode, of every instance or only of ``problem``'s."""
        return statistics.median(e.seconds for e in self.episodes if problem in (None, e.problem))

    def summary(self) -> dict[str, Any]:
        se = self.standard_error
        return {
            "policy": self.policy,
            "instance_set": self.instance_set,
            "episodes": len(self.episodes),
            "return_mean": self.mean_return,
            "return_standard_error": None if math.isnan(se) else se,
            "crash_rate": self.crash_rate,
            "final_val_accuracy_mean": self.mean("final_val_accuracy"),
            "test_accuracy_mean": self.mean("test_accuracy"),
            "seconds_median": self.median_seconds(),
            "episode_results": [asdict(e) for e in self.episodes],
        }


@dataclass
class LrControlResult:
    config: LrControlConfig
    runs: list[PolicyRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=lambda: {**machine_info(), "torch": torch.__version__})

    def problems(self) -> list[str]:
        """Every problem trained, in the order of first appearance."""
        return list(dict.fromkeys(e.problem for run in self.runs for e in run.episodes))

    def median_seconds(self, policy: str, problem: str) -> float | None:
        """Median episode wall time of ``policy`` on ``problem``, over every set; None if never trained."""
        seconds = [e.seconds for r in self.runs if r.policy == policy for e in r.episodes if e.problem == problem]
        return statistics.median(seconds) if seconds else None

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "env": ENV_ID,
            "action_space": "Box",
            "config": asdict(c),
            "instances": {s: [i.name for i in c.instances(s)] for s in c.sets},
            "policies": {p: describe_policy(p) for p in c.policies},
            "machine": self.machine,
            "results": [r.summary() for r in self.runs],
            "seconds_median_per_problem": {
                problem: {p: self.median_seconds(p, problem) for p in c.policies} for problem in self.problems()
            },
        }

    def to_markdown(self) -> str:
        return _results_table(self) + "\n\n" + _times_table(self) + "\n\n" + _note(self) + "\n"


def _results_table(result: LrControlResult) -> str:
    header = ["set", "policy", "return (mean ± s.e.)", "crashes", "val accuracy", "test accuracy", "episode (s)"]
    rows = []
    for r in result.runs:
        se = r.standard_error
        rows.append(
            [
                r.instance_set,
                describe_policy(r.policy),
                f"{r.mean_return:.2f}" + ("" if math.isnan(se) else f" ± {se:.2f}"),
                f"{r.crash_rate:.0%}",
                f"{r.mean('final_val_accuracy'):.1%}",
                f"{r.mean('test_accuracy'):.1%}",
                f"{r.median_seconds():.2f}",
            ]
        )
    return markdown_table(header, rows)


def _times_table(result: LrControlResult) -> str:
    """Median episode wall time per problem (both sets pooled), one column per policy."""
    policies = result.config.policies
    rows = []
    for problem in result.problems():
        cells = [result.median_seconds(p, problem) for p in policies]
        rows.append([problem, *("" if s is None else f"{s:.2f}" for s in cells)])
    return markdown_table(["problem", *(f"{p} (s)" for p in policies)], rows)


def _describe_set(config: LrControlConfig, instance_set: str) -> str:
    instances = config.instances(instance_set)
    problems = len({i.problem for i in instances})
    seeds = sorted({i.seed for i in instances})
    seed_text = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
    plural = "s" if problems > 1 else ""
    return f"{instance_set}: {len(instances)} instances ({problems} problem{plural}, seeds {seed_text})"


def _note(result: LrControlResult) -> str:
    c = result.config
    subset = f"the first {c.max_instances} instances of each set, " if c.max_instances else ""
    sets = "; ".join(_describe_set(c, s) for s in c.sets)
    return (
        f"`{ENV_ID}`, Box actions, {DEFAULT_EPOCHS} epochs per episode. Every instance trained once per policy, "
        f"{subset}{sets}. Return: the fall of the validation loss in nats (a crash is rewarded -4 ln 10 = -9.21 "
        "and ends the episode); s.e. is the standard error of the mean over instances. Crashes: share of trainings "
        "that diverged. Accuracies: validation at the last epoch and test, crashed trainings included. The random "
        f"controller draws a uniform Box action every epoch, its generator seeded with {c.seed} at the start of "
        "each set. Episode: median wall time of one training (reset, epochs, test measurement; a crash ends it "
        "early), one torch thread, on a machine shared with other jobs. "
        f"Machine: {format_machine(result.machine)}, torch {result.machine['torch']}. "
        "Regenerate with `.venv/bin/python scripts/bench.py lr-control`."
    )


def run_episode(env: gym.Env, policy: Policy, instance: int) -> Episode:
    """Train ``instance`` of ``env``'s set once under ``policy`` and time it."""
    start = time.perf_counter()
    obs, info = env.reset(options={"instance": instance})
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated
    seconds = time.perf_counter() - start
    trained = env.unwrapped.training.instance
    return Episode(
        instance=trained.name,
        problem=trained.problem,
        episode_return=total,
        epochs=int(info["epoch"]),
        crashed=bool(info["diverged"]),
        final_val_accuracy=float(info["final_val_accuracy"]),
        test_accuracy=float(info["test_accuracy"]),
        seconds=seconds,
    )


def _warm_up(env: gym.Env) -> None:
    """One untimed epoch, so that torch's one-off start-up cost (about half a second) lands on no episode."""
    env.reset(options={"instance": 0})
    env.step(np.zeros(env.action_space.shape, dtype=np.float32))  # the middle of the range: never crashes


def run_lr_control(config: LrControlConfig | None = None, progress: Progress | None = None) -> LrControlResult:
    """Every policy on every instance of every set, one after another on one torch thread."""
    config = config or LrControlConfig()
    result = LrControlResult(config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for instance_set in config.sets:
            instances = config.instances(instance_set)
            for dataset in dict.fromkeys(i.dataset for i in instances):
                load_dataset(dataset)  # once per process, before any clock starts
            env = gym.make(ENV_ID, instance_set=instance_set)
            try:
                _warm_up(env)
                for name in config.policies:
                    policy = make_policy(name, env.action_space, config.seed)
                    run = PolicyRun(name, instance_set, [run_episode(env, policy, i) for i in range(len(instances))])
                    result.runs.append(run)
                    if progress:
                        progress(
                            f"{instance_set} {name}: return {run.mean_return:.2f}, crashes {run.crash_rate:.0%}, "
                            f"{sum(e.seconds for e in run.episodes):.1f} s"
                        )
            finally:
                env.close()
    finally:
        torch.set_num_threads(previous_threads)
    return result


def write_lr_control_report(result: LrControlResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Learning-rate control: baseline schedules"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
