"""``bench.py learning``: what ``train.py`` learns with its defaults on each slope, beside the heuristic skiers.

For every slope and training seed, :func:`agents.training.train` runs exactly what ``scripts/train.py
--env-kwargs slope:<slope> --seed <seed>`` runs: the slope's entry of ``agents/hyperparams/ppo.yml``, its
budget, and its validation on held-out courses, which keeps ``best_model.zip``. Both models of the run, the best
one (what ``watch.py`` and ``evaluate.py`` load) and the final one, are then judged deterministically on the same
test courses (seeds 1000000+, never trained or validated on) as the heuristic skier, and on the black slope the
heuristic of ``SkiContinuous-v0`` too, since the issue asks for a return above both.

Few seeds call for interval estimates rather than a bare mean (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice", the rliable library): per slope the table shows the median over seeds with a percentile
bootstrap 95% interval (10,000 resamples of the seeds), and the interquartile mean beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.baselines import HeuristicSkier
from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.evaluation import EvaluationResult, evaluate, make_env
from agents.processes import print_progress, run_jobs
from agents.runs import MODEL_FILE, load_agent
from agents.seeds import test_seeds
from agents.training import TrainConfig, train

BENCH_NAME = "learning"
SKI_ID = "trendgym/Ski-v0"
CONTINUOUS_ID = "trendgym/SkiContinuous-v0"
SLOPE_NAMES = ("green", "blue", "black")
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
TEST_EPISODES = 100
BOOTSTRAP_RESAMPLES = 10_000
RUNS_FOLDER = Path("runs") / "bench" / "learning"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RecipeConfig:
    """Which slopes, which seeds, and how many test courses; ``timesteps`` caps the budget for a quick look."""

    slopes: tuple[str, ...] = SLOPE_NAMES
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    test_episodes: int = TEST_EPISODES
    timesteps: int | None = None  # None: the recipe's own budget (n_timesteps of its yml entry)
    eval_freq: int | None = None  # None: train.py's default
    eval_episodes: int | None = None  # validation courses per validation; None: train.py's default
    workers: int = 1  # processes training seeds side by side (one torch thread each)
    root: Path = RUNS_FOLDER  # where the runs' folders go

    def __post_init__(self) -> None:
        unknown = [s for s in self.slopes if s not in SLOPE_NAMES]
        if unknown or not self.slopes:
            raise ValueError(f"slopes must be among {', '.join(SLOPE_NAMES)}, got {', '.join(unknown) or 'none'}")
        if not self.seeds or self.test_episodes < 1 or self.workers < 1:
            raise ValueError("give at least one seed, one test episode and one worker")


@dataclass
class Judged:
    """A policy on the test courses: its clean-run rate and mean return."""

    clean: float
    mean_return: float

    @classmethod
    def of(cls, result: EvaluationResult) -> Judged:
        return cls(float(result.metric_means()["clean"]), float(result.mean_return))


@dataclass
class SeedRecipe:
    """One training seed on one slope: where its run is, how long it trained, and both its models judged."""

    slope: str
    seed: int
    run_dir: str
    steps: int
    train_seconds: float  # wall time of train(), validations included: what a user of train.py waits
    best: Judged  # best_model.zip (what watch.py and evaluate.py load), or model.zip when validation kept none
    best_step: int
    final: Judged


@dataclass
class SlopeResult:
    slope: str
    runs: list[SeedRecipe]
    heuristic: Judged
    continuous_heuristic: Judged | None = None  # SkiContinuous-v0's heuristic, judged on black only


@dataclass
class RecipeResult:
    config: RecipeConfig
    slopes: list[SlopeResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        config = {**asdict(self.config), "root": str(self.config.root)}
        return {"config": config, "slopes": [asdict(s) for s in self.slopes], "machine": self.machine}

    def to_markdown(self) -> str:
        return "\n\n".join([self._summary_table(), self._seed_table(), self._note()]) + "\n"

    def _summary_table(self) -> str:
        header = ["slope", "policy", "clean runs: median [95% CI]", "IQM", "return: median [95% CI]", "IQM",
                  "training time"]  # fmt: skip
        rows = []
        for s in self.slopes:
            for label, pick in (("PPO, best model", lambda r: r.best), ("PPO, final model", lambda r: r.final)):
                clean = [pick(r).clean for r in s.runs]
                returns = [pick(r).mean_return for r in s.runs]
                seconds = median([r.train_seconds for r in s.runs])
                rows.append([s.slope, label, interval(clean, percent), percent(iqm(clean)), interval(returns, number),
                             number(iqm(returns)), f"{seconds:.0f} s"])  # fmt: skip
            rows.append([s.slope, "heuristic", percent(s.heuristic.clean), "", number(s.heuristic.mean_return), "", ""])
            if s.continuous_heuristic is not None:
                h = s.continuous_heuristic
                rows.append([s.slope, "heuristic (SkiContinuous)", percent(h.clean), "", number(h.mean_return), "", ""])
        return markdown_table(header, rows)

    def _seed_table(self) -> str:
        header = ["slope", "seed", "steps", "training time", "best model (step)", "final model", "run"]
        rows = [
            [s.slope, str(r.seed), f"{r.steps:,}", f"{r.train_seconds:.0f} s",
             f"{percent(r.best.clean)} / {number(r.best.mean_return)} ({r.best_step:,})",
             f"{percent(r.final.clean)} / {number(r.final.mean_return)}", f"`{r.run_dir}`"]
            for s in self.slopes
            for r in s.runs
        ]  # fmt: skip
        return markdown_table(header, rows)

    def _note(self) -> str:
        c = self.config
        budget = f"{c.timesteps:,} steps (capped)" if c.timesteps else "the recipe's own budget"
        return (
            f"`train.py`'s defaults for each slope (`agents/hyperparams/ppo.yml`), {budget}, training seeds "
            f"{', '.join(map(str, c.seeds))}; each model and each heuristic judged deterministically on the same "
            f"{c.test_episodes} test courses (seeds 1000000+). Cells: clean-run rate / mean return; median over seeds "
            f"with a percentile bootstrap 95% interval ({BOOTSTRAP_RESAMPLES:,} resamples of the seeds) and the "
            "interquartile mean (rliable's recommendation for few runs). Training time: wall time of a whole "
            f"`train.py` run, validations included, {c.workers} run(s) at a time. Machine: "
            f"{format_machine(self.machine)}. Regenerate with `.venv/bin/python scripts/bench.py learning`."
        )


# ---- statistics --------------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(np.median(values))


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the middle half of the sorted values (rliable's IQM), which with
    fewer than four values is their mean."""
    ordered = np.sort(np.asarray(values, dtype=float))
    cut = len(ordered) // 4
    return float(ordered[cut : len(ordered) - cut].mean())


def bootstrap_interval(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap 95% interval of the median: the seeds resampled with replacement."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(len(data), size=(resamples, len(data)))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def interval(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    low, high = bootstrap_interval(values)
    return f"{fmt(median(values))} [{fmt(low)}, {fmt(high)}]"


def percent(value: float) -> str:
    return f"{value:.0%}"


def number(value: float) -> str:
    return f"{value:.1f}"


# ---- running -----------------------------------------------------------------------------------------------------


def train_and_judge(slope: str, seed: int, config: RecipeConfig) -> SeedRecipe:
    """One seed: train as train.py does, then judge its best and final models on the test courses."""
    env_kwargs = {"slope": slope}
    started = time.perf_counter()
    chosen = {"eval_freq": config.eval_freq, "eval_episodes": config.eval_episodes}
    settings = {key: value for key, value in chosen.items() if value is not None}  # else train.py's defaults
    result = train(
        TrainConfig(env=SKI_ID, env_kwargs=env_kwargs, seed=seed, timesteps=config.timesteps,
                    tensorboard_log=Path(config.root) / slope, verbose=0, n_frames=0, **settings)
    )  # fmt: skip
    seconds = time.perf_counter() - started
    seeds = test_seeds(config.test_episodes)
    best = load_agent(result.run_dir, prefer_best=True, device="cpu")
    final = load_agent(result.run_dir / MODEL_FILE, device="cpu")
    judged = [Judged.of(evaluate(agent, SKI_ID, env_kwargs, seeds)) for agent in (best, final)]
    print_progress(
        f"{slope} seed {seed}: {result.num_timesteps:,} steps in {seconds:.0f} s; best model "
        f"({best.path.name}) {percent(judged[0].clean)} / {number(judged[0].mean_return)}, final "
        f"{percent(judged[1].clean)} / {number(judged[1].mean_return)} on {len(seeds)} test courses"
    )
    return SeedRecipe(
        slope=slope, seed=seed, run_dir=str(result.run_dir), steps=result.num_timesteps, train_seconds=seconds,
        best=judged[0], best_step=int(best.model.num_timesteps), final=judged[1],
    )  # fmt: skip


def judge_heuristic(env_id: str, slope: str, episodes: int) -> Judged:
    env = make_env(env_id, {"slope": slope})
    try:
        skier = HeuristicSkier(env.action_space)
    finally:
        env.close()
    return Judged.of(evaluate(skier, env_id, {"slope": slope}, test_seeds(episodes), name="heuristic"))


def run_recipes(config: RecipeConfig, progress: Progress | None = None) -> RecipeResult:
    """Train every (slope, seed), ``config.workers`` at a time, and judge them beside the heuristics."""
    jobs = [(slope, seed, config) for slope in config.slopes for seed in config.seeds]
    runs = list(run_jobs(train_and_judge, jobs, config.workers))
    result = RecipeResult(config)
    for slope in config.slopes:
        heuristic = judge_heuristic(SKI_ID, slope, config.test_episodes)
        continuous = judge_heuristic(CONTINUOUS_ID, slope, config.test_episodes) if slope == "black" else None
        if progress is not None:
            progress(f"{slope}: heuristic {percent(heuristic.clean)} / {number(heuristic.mean_return)}")
        result.slopes.append(SlopeResult(slope, [r for r in runs if r.slope == slope], heuristic, continuous))
    return result


def write_recipes_report(result: RecipeResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Learning: train.py's recipe on each slope against the heuristic skier"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
