"""How long PPO takes to learn to ski: environment steps and wall time until the agent skis 80% of unseen
courses cleanly, on the green and on the blue slope, over several seeds, beside SB3's PPO learning CartPole-v1
with RL Baselines3 Zoo's tuned hyper-parameters in the same run (the yardstick every RL reader knows).

Protocol, per task and seed:

* train PPO with the task's hyper-parameters (``agents/hyperparams/ppo.yml``'s ``trendgym/Ski-v0`` entry for
  the ski; RL Zoo's ``CartPole-v1`` entry for CartPole) for at most the task's budget, which is also the
  horizon of the linear learning-rate and clip schedules, as it is for ``train.py --timesteps``;
* every ``eval_every`` steps, at the start of a rollout (right after a policy update), evaluate the current
  policy deterministically on held-out validation episodes (seeds ``VALIDATION_SEED + i``), all at once in a
  vector env, and record the env steps, the training wall time so far (evaluations excluded) and the score;
* the first checkpoint whose score reaches the target gives "steps to target" and "wall time to target";
  that model is then judged once on test seeds no training or validation uses (its score there is the
  honest number), and training stops. A seed that never reaches the target within its budget is reported
  as such, with the best score it reached.

Runs are sequential, one torch thread each, so the wall times of the ski and of CartPole are taken under the
same conditions. Nothing is written during training (no run folder, no TensorBoard): only the report.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agents.algorithms import make_agent
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.hyperparams import load_hyperparams, resolve, serialisable
from agents.seeds import MAX_TRAIN_SEED, TEST_SEED, VALIDATION_SEED, test_seeds
from agents.vec_env import make_vec_env

BENCH_NAME = "learning_speed"
SKI_ID = "trendgym/Ski-v0"
CARTPOLE_ID = "CartPole-v1"
CLEAN_TARGET = 0.8  # the "clean-run rate of 80% on unseen courses"
CARTPOLE_TARGET = 475.0  # CartPole-v1's reward_threshold in Gymnasium's registry
TASK_NAMES = ("green", "blue", "cartpole")
DEFAULT_SEEDS = (1, 2, 3)

# RL Baselines3 Zoo, hyperparams/ppo.yml, the "Tuned" CartPole-v1 entry, copied so the reference does not
# depend on trendgym's own YAML (whose `default` entry is not tuned for CartPole).
RL_ZOO_CARTPOLE_PPO: dict[str, Any] = {
    "n_envs": 8,
    "n_timesteps": 100_000,
    "policy": "MlpPolicy",
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}

# Budgets in env steps (also the schedules' horizon). Green: the ppo.yml entry's own budget would do, 4M
# leaves room for an unlucky seed; blue is harder (steeper, tighter gates, more trees), so twice that. With
# the ski trained at about 10-12k steps/s here, a seed that never reaches the target costs 6-12 minutes.
SKI_BUDGETS = {"green": 4_000_000, "blue": 8_000_000}
SKI_EVAL_EVERY = 100_000
SKI_EVAL_EPISODES = 30
CARTPOLE_EVAL_EVERY = 10_000
CARTPOLE_EVAL_EPISODES = 20
TEST_EPISODES = 100

Progress = Callable[[str], None]


# ---- tasks -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LearningTask:
    """One thing to learn and when it counts as learnt."""

    name: str  # "green", "blue", "cartpole"
    env_id: str
    env_kwargs: dict[str, Any]
    hyperparams: dict[str, Any]  # raw, RL Zoo format (n_envs, normalize, lin_ schedules...)
    budget: int  # env steps at most, and the horizon of the linear schedules
    metric: str  # "clean" (clean-run rate) or "return" (mean episode return)
    target: float  # the score that counts as learnt
    eval_every: int  # env steps between validations
    eval_episodes: int  # validation episodes per validation
    test_episodes: int = TEST_EPISODES  # test episodes for the model at target
    vec_env: str = "dummy"  # training vec env kind (agents.vec_env)
    eval_mode: str = "sync"  # gymnasium vectorization_mode of the evaluation env

    @property
    def label(self) -> str:
        return f"ski {self.name}" if self.metric == "clean" else f"{self.env_id} (reference)"

    def describe_target(self) -> str:
        if self.metric == "clean":
            return f"clean runs ≥ {self.target:.0%} on {self.eval_episodes} validation courses"
        return f"mean return ≥ {self.target:g} over {self.eval_episodes} episodes"


def ski_task(
    slope: str,
    budget: int | None = None,
    eval_every: int = SKI_EVAL_EVERY,
    eval_episodes: int = SKI_EVAL_EPISODES,
    test_episodes: int = TEST_EPISODES,
) -> LearningTask:
    """The ski on ``slope`` with trendgym's tuned PPO entry, trained and validated in the native vector env."""
    return LearningTask(
        name=slope,
        env_id=SKI_ID,
        env_kwargs={"slope": slope},
        hyperparams=load_hyperparams("ppo", SKI_ID, env_kwargs={"slope": slope}),
        budget=budget if budget is not None else SKI_BUDGETS[slope],
        metric="clean",
        target=CLEAN_TARGET,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        test_episodes=test_episodes,
        vec_env="native",
        eval_mode="vector_entry_point",
    )


def cartpole_task(
    budget: int | None = None,
    eval_every: int = CARTPOLE_EVAL_EVERY,
    eval_episodes: int = CARTPOLE_EVAL_EPISODES,
    test_episodes: int = TEST_EPISODES,
) -> LearningTask:
    """SB3 PPO on CartPole-v1 as RL Zoo trains it: DummyVecEnv of Monitor-ed envs, no normalisation.

    Evaluation uses Gymnasium's SyncVectorEnv of ``gym.make`` envs (with the registered 500-step TimeLimit),
    the env SB3's ``evaluate_policy`` would see.
    """
    return LearningTask(
        name="cartpole",
        env_id=CARTPOLE_ID,
        env_kwargs={},
        hyperparams=dict(RL_ZOO_CARTPOLE_PPO),
        budget=budget if budget is not None else RL_ZOO_CARTPOLE_PPO["n_timesteps"],
        metric="return",
        target=CARTPOLE_TARGET,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        test_episodes=test_episodes,
    )


def default_tasks(
    names: Sequence[str] = TASK_NAMES,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    max_steps: int | None = None,
) -> list[LearningTask]:
    """The published tasks by name; ``eval_every``/``eval_episodes`` change the ski tasks' validation (CartPole
    keeps RL Zoo's usual 10k/20), ``max_steps`` caps every budget (and so shortens the schedules) for a quick look."""
    tasks = []
    for name in dict.fromkeys(names):
        if name == "cartpole":
            task = cartpole_task()
        elif name in SKI_BUDGETS:
            task = ski_task(name)
            task = replace(
                task,
                eval_every=eval_every or task.eval_every,
                eval_episodes=eval_episodes or task.eval_episodes,
            )
        else:
            raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
        if max_steps is not None:
            task = replace(task, budget=min(task.budget, max_steps))
        tasks.append(task)
    return tasks


# ---- batched deterministic evaluation --------------------------------------------------------------------------


@dataclass
class Score:
    """A policy's deterministic result on a fixed list of episode seeds."""

    episodes: int
    mean_return: float
    clean_rate: float | None  # None for envs without a clean-run notion

    def value(self, metric: str) -> float:
        return self.clean_rate if metric == "clean" else self.mean_return  # type: ignore[return-value]


def evaluate_on_seeds(model: BaseAlgorithm, task: LearningTask, seeds: Sequence[int]) -> Score:
    """Play one deterministic episode per seed, all at once: sub-env ``i`` of one vector env reset with
    ``seeds[i]`` (so episode ``i`` runs on the course of ``seeds[i]``, exactly as
    :func:`agents.evaluation.evaluate` would play it), stepping until every sub-env has ended its first episode.

    Batched because it runs every ``eval_every`` steps: 30 skiers in one native step cost about what one costs.
    Observations go through the model's VecNormalize statistics, when it trains with them.
    """
    env = gym.make_vec(task.env_id, num_envs=len(seeds), vectorization_mode=task.eval_mode, **task.env_kwargs)
    normalizer = model.get_vec_normalize_env()
    n = len(seeds)
    returns, clean = np.zeros(n), np.zeros(n, dtype=bool)
    active, has_clean = np.ones(n, dtype=bool), False
    try:
        obs, _ = env.reset(seed=[int(s) for s in seeds])
        while active.any():
            model_obs = normalizer.normalize_obs(obs) if normalizer is not None else obs
            actions, _ = model.predict(model_obs, deterministic=True)
            obs, rewards, terminated, truncated, info = env.step(actions)
            returns[active] += np.asarray(rewards, dtype=np.float64)[active]
            ended = active & np.logical_or(terminated, truncated)
            if "clean" in info:
                has_clean = True
                clean[ended] = np.asarray(info["clean"], dtype=bool)[ended]
            active &= ~ended
    finally:
        env.close()
    return Score(n, float(returns.mean()), float(clean.mean()) if has_clean else None)


def validation_seeds(n: int) -> list[int]:
    """The held-out courses judged during training (never trained on, never the test courses)."""
    return list(range(VALIDATION_SEED, VALIDATION_SEED + n))


# ---- training to a target --------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """One validation: where training stood and how well the policy did."""

    steps: int
    wall_time: float  # seconds of training so far, evaluations excluded
    score: float  # clean-run rate or mean return, per the task's metric
    mean_return: float


@dataclass
class SeedRun:
    """One seed of one task: its learning curve and, if it got there, the model at target on test seeds."""

    task: str
    seed: int
    budget: int
    curve: list[Checkpoint] = field(default_factory=list)
    at_target: Checkpoint | None = None
    test: Score | None = None  # the model at target on the test seeds
    final_test: Score | None = None  # the last model on the test seeds, for a seed that never reached the target
    total_steps: int = 0  # env steps trained in all
    total_wall_time: float = 0.0  # training wall time in all, evaluations excluded
    eval_time: float = 0.0  # wall time spent evaluating (reported apart)

    @property
    def reached(self) -> bool:
        return self.at_target is not None

    def best(self) -> Checkpoint | None:
        return max(self.curve, key=lambda c: c.score, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "seed": self.seed,
            "budget": self.budget,
            "reached": self.reached,
            "steps_to_target": self.at_target.steps if self.at_target else None,
            "wall_time_to_target": self.at_target.wall_time if self.at_target else None,
            "validation_score_at_target": self.at_target.score if self.at_target else None,
            "test_at_target": asdict(self.test) if self.test else None,
            "final_model_on_test": asdict(self.final_test) if self.final_test else None,
            "best": asdict(self.best()) if self.curve else None,
            "total_steps": self.total_steps,
            "total_wall_time": self.total_wall_time,
            "eval_time": self.eval_time,
            "curve": [asdict(c) for c in self.curve],
        }


class TargetCallback(BaseCallback):
    """Validate every ``task.eval_every`` steps and stop training once the target is reached.

    Validation happens at the start of a rollout, i.e. right after a policy update, so a checkpoint's step
    count is exactly what the evaluated policy was trained on. SB3 stops only when ``_on_step`` returns
    False, so reaching the target sets a flag that the next step reads. The wall clock runs from
    ``started`` (before the envs and the model are built) and leaves out the time spent evaluating.
    """

    def __init__(self, task: LearningTask, run: SeedRun, started: float, progress: Progress | None = None) -> None:
        super().__init__()
        self.task = task
        self.run = run
        self.started = started
        self.progress = progress
        self.next_eval = task.eval_every
        self.reached = False
        self.validation = validation_seeds(task.eval_episodes)

    def training_time(self) -> float:
        return time.perf_counter() - self.started - self.run.eval_time

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_eval and not self.reached:
            while self.next_eval <= self.num_timesteps:
                self.next_eval += self.task.eval_every
            self.validate()

    def _on_step(self) -> bool:
        return not self.reached

    def _on_training_end(self) -> None:
        """Validate the final policy too, unless it was just validated (the budget rarely falls on the grid);
        if it never reached the target, judge it on the test seeds as well, so the report still says how
        well the whole budget's training skis unseen courses."""
        last = self.run.curve[-1].steps if self.run.curve else 0
        if not self.reached and self.num_timesteps > last:
            self.validate()
        if not self.reached:
            begin = time.perf_counter()
            self.run.final_test = evaluate_on_seeds(self.model, self.task, test_seeds(self.task.test_episodes))
            self.run.eval_time += time.perf_counter() - begin

    def validate(self) -> None:
        wall = self.training_time()
        begin = time.perf_counter()
        score = evaluate_on_seeds(self.model, self.task, self.validation)
        checkpoint = Checkpoint(self.num_timesteps, wall, score.value(self.task.metric), score.mean_return)
        self.run.curve.append(checkpoint)
        if checkpoint.score >= self.task.target:
            self.reached = True
            self.run.at_target = checkpoint
            self.run.test = evaluate_on_seeds(self.model, self.task, test_seeds(self.task.test_episodes))
        self.run.eval_time += time.perf_counter() - begin
        if self.progress is not None:
            self.progress(self._describe(checkpoint))

    def _describe(self, c: Checkpoint) -> str:
        score = (
            f"{c.score:.0%} clean, return {c.mean_return:.1f}"
            if self.task.metric == "clean"
            else f"return {c.score:.1f}"
        )
        line = f"{self.task.name} seed {self.run.seed}: {format_rate(c.steps)} steps, {c.wall_time:.1f} s, {score}"
        if self.reached and self.run.test is not None:
            test = self.run.test
            line += f" -> target reached; on {test.episodes} test episodes: {_format_score(self.task, test)}"
        return line


Initialise = Callable[[BaseAlgorithm, VecEnv], object]  # e.g. transfer a trained agent's weights into the new one


def build_model(task: LearningTask, seed: int, init: Initialise | None = None) -> tuple[BaseAlgorithm, VecEnv]:
    """The training env and PPO exactly as ``train.py`` builds them (same vec env, seeds, normalisation,
    hyper-parameters), with the task's budget as the schedules' horizon and nothing logged; ``init`` then
    prepares the new model (a transfer of weights) before any step."""
    kwargs, settings = resolve({**task.hyperparams, "n_timesteps": task.budget}, "ppo")
    set_random_seed(seed)
    train_kwargs = {**task.env_kwargs, **settings.train_env_kwargs}  # validated and judged on task.env_kwargs
    venv: VecEnv = make_vec_env(task.env_id, settings.n_envs, seed, train_kwargs, kind=task.vec_env)  # type: ignore[arg-type]
    if settings.normalize is not None:
        venv = VecNormalize(venv, **{"gamma": kwargs.get("gamma", 0.99), **settings.normalize})
    model = make_agent("ppo", venv, {**kwargs, "device": "cpu", "verbose": 0})
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger makes a folder per run
    if init is not None:
        init(model, venv)
    return model, venv


def train_to_target(
    task: LearningTask, seed: int, progress: Progress | None = None, init: Initialise | None = None
) -> SeedRun:
    """Train one seed of ``task`` until its target or its budget; see the module docstring. ``init`` prepares the
    new model before training (see :func:`build_model`)."""
    if not 0 <= seed < MAX_TRAIN_SEED:
        raise ValueError(f"seed must be in 0..{MAX_TRAIN_SEED - 1} (higher seeds are validation courses)")
    run = SeedRun(task.name, seed, task.budget)
    started = time.perf_counter()
    model, venv = build_model(task, seed, init)
    callback = TargetCallback(task, run, started, progress)
    try:
        model.learn(task.budget, callback=callback)
    finally:
        venv.close()
    run.total_steps = int(model.num_timesteps)
    run.total_wall_time = callback.training_time()
    return run


# ---- the benchmark ---------------------------------------------------------------------------------------------


@dataclass
class LearningConfig:
    """Which tasks to learn and with which training seeds (each task runs every seed)."""

    seeds: tuple[int, ...] = DEFAULT_SEEDS
    tasks: tuple[LearningTask, ...] = field(default_factory=lambda: tuple(default_tasks()))


@dataclass
class TaskSummary:
    """A task's seeds in a few numbers: medians treat an unreached seed as slower than any reached one."""

    task: LearningTask
    runs: list[SeedRun]

    @property
    def reached(self) -> list[SeedRun]:
        return [r for r in self.runs if r.reached]

    def steps(self) -> list[float]:
        return [r.at_target.steps if r.at_target else math.inf for r in self.runs]

    def wall_times(self) -> list[float]:
        return [r.at_target.wall_time if r.at_target else math.inf for r in self.runs]

    def test_scores(self) -> list[float]:
        return [r.test.value(self.task.metric) for r in self.reached if r.test is not None]

    def to_dict(self) -> dict[str, Any]:
        def finite(values: list[float]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values]

        steps, walls = self.steps(), self.wall_times()
        return {
            "task": self.task.name,
            "env": self.task.env_id,
            "env_kwargs": self.task.env_kwargs,
            "metric": self.task.metric,
            "target": self.task.target,
            "budget": self.task.budget,
            "eval_every": self.task.eval_every,
            "eval_episodes": self.task.eval_episodes,
            "test_episodes": self.task.test_episodes,
            "hyperparams": serialisable(self.task.hyperparams),
            "seeds_reached": len(self.reached),
            "seeds": len(self.runs),
            "steps_to_target_median": _finite_or_none(_median(steps)),
            "wall_time_to_target_median": _finite_or_none(_median(walls)),
            "steps_to_target": finite(steps),
            "wall_time_to_target": finite(walls),
            "test_at_target": self.test_scores(),
            "runs": [r.to_dict() for r in self.runs],
        }


@dataclass
class LearningResult:
    seeds: tuple[int, ...]
    summaries: list[TaskSummary] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def summary(self, name: str) -> TaskSummary | None:
        return next((s for s in self.summaries if s.task.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "validation_seeds": f"{VALIDATION_SEED}..",
            "test_seeds": f"{TEST_SEED}..",
            "wall_time": "seconds of training from building the envs, validation and test evaluations excluded",
            "machine": {**self.machine, "torch": torch.__version__, "torch_threads": 1},
            "tasks": [s.to_dict() for s in self.summaries],
        }

    def to_markdown(self) -> str:
        return "\n\n".join([self._summary_table(), self._seed_table(), self._note()]) + "\n"

    def _summary_table(self) -> str:
        header = [
            "task",
            "target",
            "reached",
            "env steps to target",
            "wall time to target",
            "wall time ÷ CartPole's",
            "model at target on test episodes",
        ]
        reference = self.summary("cartpole")
        rows = []
        for s in self.summaries:
            tests = s.test_scores()
            rows.append(
                [
                    s.task.label,
                    s.task.describe_target(),
                    f"{len(s.reached)}/{len(s.runs)}",
                    _spread(s.steps(), format_rate, s.task.budget),
                    _spread(s.wall_times(), _format_seconds, None),
                    _ratio(s, reference),
                    _spread(tests, partial(_format_value, s.task), None) if tests else "-",
                ]
            )
        return markdown_table(header, rows)

    def _seed_table(self) -> str:
        header = ["task", "seed", "env steps to target", "wall time to target", "validation at target", "test"]
        rows = []
        for s in self.summaries:
            for r in s.runs:
                rows.append([s.task.label, str(r.seed), *_seed_cells(s.task, r)])
        return markdown_table(header, rows)

    def _note(self) -> str:
        ski = next((s.task for s in self.summaries if s.task.metric == "clean"), None)
        parts = [
            f"Seeds {', '.join(map(str, self.seeds))}; median [min–max] over seeds, an unreached seed counting as "
            "slower than any reached one (so a median can be “> budget”); the test column covers the seeds that "
            "reached the target.",
        ]
        if ski is not None:
            budgets = ", ".join(
                f"{s.task.name} {format_rate(s.task.budget)}" for s in self.summaries if s.task.metric == "clean"
            )
            parts.append(
                f"Ski: PPO with `agents/hyperparams/ppo.yml`'s `{SKI_ID}` entry (native vector env, VecNormalize), "
                f"budgets {budgets} "
                f"steps (also the horizon of the linear schedules); every {format_rate(ski.eval_every)} steps the "
                f"policy skis {ski.eval_episodes} validation courses (seeds {VALIDATION_SEED}+) deterministically; "
                f"the first model at ≥ {CLEAN_TARGET:.0%} clean runs is judged on {ski.test_episodes} test courses "
                f"(seeds {TEST_SEED}+) and training stops."
            )
        cartpole = self.summary("cartpole")
        if cartpole is not None:
            c = cartpole.task
            parts.append(
                "CartPole-v1: SB3 PPO with RL Baselines3 Zoo's tuned hyper-parameters (8 envs, n_steps 32, batch 256, "
                f"20 epochs, γ 0.98, λ 0.8, lin_1e-3, clip lin_0.2), budget {format_rate(c.budget)} steps, "
                f"validated every {format_rate(c.eval_every)} steps on {c.eval_episodes} deterministic episodes, "
                f"target mean return ≥ {c.target:g}."
            )
        parts.append(
            "Steps are read on the validation grid (an upper bound within one interval); wall time is training "
            "only, from building the envs, evaluations excluded; runs one after another, one torch thread. "
            f"Machine: {format_machine(self.machine)}, torch {torch.__version__}. "
            "Regenerate with `.venv/bin/python scripts/bench.py learning-speed`; learning curves per seed in "
            "`docs/bench/learning_speed.json`."
        )
        return " ".join(parts)


def run_learning(config: LearningConfig, progress: Progress | None = None) -> LearningResult:
    """Every task for every seed, one after another (one torch thread, so timings are comparable)."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = LearningResult(tuple(config.seeds))
    try:
        for task in config.tasks:
            runs = [train_to_target(task, seed, progress) for seed in config.seeds]
            result.summaries.append(TaskSummary(task, runs))
    finally:
        torch.set_num_threads(previous_threads)
    return result


def write_learning_report(result: LearningResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Learning: steps and wall time to a clean skier, against CartPole-v1"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


# ---- formatting ------------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _format_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 600 else f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _format_value(task: LearningTask, value: float) -> str:
    return f"{value:.0%} clean" if task.metric == "clean" else f"return {value:.1f}"


def _format_score(task: LearningTask, score: Score) -> str:
    return _format_value(task, score.value(task.metric))


def _spread(values: list[float], fmt: Callable[[float], str], budget: int | None) -> str:
    """``median [min–max]``; infinite values (unreached seeds) show as ``> budget`` or ``not reached``."""
    if not values:
        return "-"

    def cell(v: float) -> str:
        if math.isfinite(v):
            return fmt(v)
        return f"> {format_rate(budget)}" if budget is not None else "not reached"

    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return cell(math.inf)
    median = cell(_median(values))
    if len(values) == 1:
        return median
    return f"{median} [{cell(min(values))}–{cell(max(values))}]"


def _ratio(summary: TaskSummary, reference: TaskSummary | None) -> str:
    """Median wall time to target over CartPole's median, when both are finite."""
    if reference is None:
        return "-"
    if summary is reference:
        return "1×"
    mine, theirs = _median(summary.wall_times()), _median(reference.wall_times())
    if not (math.isfinite(mine) and math.isfinite(theirs)) or theirs <= 0:
        return "-"
    return f"{mine / theirs:.3g}×"


def _seed_cells(task: LearningTask, run: SeedRun) -> list[str]:
    if run.at_target is not None:
        test = _format_score(task, run.test) if run.test is not None else "-"
        return [
            format_rate(run.at_target.steps),
            _format_seconds(run.at_target.wall_time),
            _format_value(task, run.at_target.score),
            f"{test} ({run.test.episodes if run.test else 0} episodes)",
        ]
    best = run.best()
    best_text = f", best {_format_value(task, best.score)} at {format_rate(best.steps)}" if best else ""
    final = run.final_test
    return [
        f"not reached within {format_rate(run.total_steps)} steps{best_text}",
        f"({_format_seconds(run.total_wall_time)} in all)",
        "-",
        f"final model: {_format_score(task, final)} ({final.episodes} episodes)" if final else "-",
    ]
