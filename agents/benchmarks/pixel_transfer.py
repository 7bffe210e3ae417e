"""Pre-trained vision for a pixel skier: PPO on frames of the green slope with a CNN (SB3's ``CnnPolicy``, the
Nature DQN encoder) learnt from scratch, against the same CNN pre-trained on ski frames, supervised (regress the
state vector from the frames) or self-supervised (SimCLR on augmented frames), then frozen (only the policy and
value heads learn) or fine-tuned with the rest (:mod:`trends.transfer.vision`, :mod:`agents.pixel_transfer`).

The pixel skier sees :data:`PIXEL_ENV`: two 84x84 frames 0.4 s apart (frame skip 4, frame stack 2). With one
frame every pixel agent we tried settled on braking for the whole 100 s (return -47.6: no fault, little progress),
the vector agent with the same recipe did not: one frame shows where the gates are but not how fast the skier is
going, two show both.

Protocol, per seed: collect ``frames`` (observation, state) pairs from the heuristic skier with random actions
mixed in (courses of seeds ``FRAME_SEED + seed``, none of them a validation or test course), pre-train the
encoders on them, then train every condition with the same PPO recipe for the same budget of decisions
(:func:`agents.benchmarks.learning.train_to_target` with an unreachable target, so every run has the whole
curve), validating every ``eval_every`` decisions on the same held-out courses; the last model skis the test
courses. The report reads off the curves how many decisions (and seconds of training) each condition needs to
ski down, ``target`` mean validation return, where braking all the way gets -47.6 and a clean run about 165.
Jobs (a seed's scratch run, or a seed's pre-training and its frozen and fine-tuned runs) run in ``workers``
processes.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from agents.benchmarks.learning import LearningTask, train_to_target
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.hyperparams import load_hyperparams
from agents.pixel_transfer import collect_frames, encoder_init
from agents.processes import print_progress, run_jobs
from envs import SKI_PIXELS_KWARGS
from trends.transfer.vision import NatureEncoder, VisionRecipe, pretrain_contrastive, pretrain_supervised

BENCH_NAME = "pixel_transfer"
FRAME_SEED = 400_000  # frames of seed s come from courses FRAME_SEED + s..: below the validation and test seeds
CONDITIONS = ("scratch", "supervised-frozen", "supervised-finetuned", "contrastive-frozen", "contrastive-finetuned")
LABELS = {
    "scratch": "CNN from scratch",
    "supervised-frozen": "supervised encoder, frozen",
    "supervised-finetuned": "supervised encoder, fine-tuned",
    "contrastive-frozen": "contrastive encoder, frozen",
    "contrastive-finetuned": "contrastive encoder, fine-tuned",
}
PIXEL_ID = "trendgym/SkiPixels-v0"
PIXEL_ENV: dict[str, Any] = SKI_PIXELS_KWARGS  # what that id sets: pixels, frame skip 4, frame stack 2
BRAKING_RETURN = -47.6  # the green slope's return of braking for all 100 s (no fault, a few metres of progress)
# The pixel skier's entry in agents/hyperparams/ppo.yml (RL Zoo's Atari recipe), its budget set per run.
PIXEL_PPO: dict[str, Any] = {k: v for k, v in load_hyperparams("ppo", PIXEL_ID).items() if k != "n_timesteps"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PixelTransferConfig:
    """What the benchmark runs; the defaults take about 1.5 hours on two free cores (see the report's note)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    conditions: tuple[str, ...] = CONDITIONS
    slope: str = "green"
    budget: int = 61_440  # decisions per run, the same for every condition (60 PPO rollouts of 8 x 128)
    eval_every: int = 10_240  # decisions between validations
    eval_episodes: int = 10  # validation courses
    test_episodes: int = 20  # test courses for the last model
    target: float = 0.0  # mean validation return that counts as skiing down (braking all the way: -47.6)
    frames: int = 8_000  # (observation, state) pairs to pre-train on, per seed
    pretrain_epochs: int = 8  # passes over the frames, each pretext
    n_envs: int = PIXEL_PPO["n_envs"]  # training envs (a rollout is n_envs x 128 decisions)
    workers: int = 2  # processes running jobs side by side

    def __post_init__(self) -> None:
        unknown = set(self.conditions) - set(CONDITIONS)
        if unknown:
            raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {', '.join(CONDITIONS)}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def jobs(self) -> list[tuple[int, str]]:
        """``(seed, group)`` for every seed and group (``scratch``, ``supervised``, ``contrastive``) with a
        condition to run, the longest first so that the workers finish together."""
        groups = sorted({c.split("-")[0] for c in self.conditions}, key=lambda g: g == "scratch")
        return [(seed, group) for group in groups for seed in self.seeds]


def pixel_task(
    slope: str = "green",
    budget: int = 61_440,
    eval_every: int = 10_240,
    eval_episodes: int = 10,
    test_episodes: int = 20,
    n_envs: int = PIXEL_PPO["n_envs"],
) -> LearningTask:
    """The ski on ``slope`` seen as pixels (:data:`PIXEL_ID`), PPO with :data:`PIXEL_PPO`, trained in a DummyVecEnv (the
    native vector env serves vector observations only) for exactly ``budget`` decisions: the target is out of
    reach, so the whole curve is recorded and the report reads the target off it."""
    return LearningTask(
        name=f"{slope} pixels",
        env_id=PIXEL_ID,
        env_kwargs={"slope": slope},
        hyperparams={**PIXEL_PPO, "n_envs": n_envs},
        budget=budget,
        metric="return",
        target=math.inf,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        test_episodes=test_episodes,
        vec_env="dummy",
        eval_mode="sync",
    )


@dataclass
class PixelTransferResult:
    config: PixelTransferConfig
    pretraining: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # pretext -> per seed
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # condition -> SeedRun.to_dict() per seed
    wall_time: float = math.nan  # seconds the whole benchmark took
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "env": PIXEL_ENV,
            "hyperparams": PIXEL_PPO,
            "pretraining": self.pretraining,
            "runs": self.runs,
            "wall_time": self.wall_time,
            "machine": {**self.machine, "torch": torch.__version__, "torch_threads": 1},
        }

    def to_markdown(self) -> str:
        return "\n\n".join([_table(self), _pretraining_table(self), _how_to_read(self)]) + "\n"


@dataclass
class JobOutcome:
    """What one job (a seed's group of conditions) produced."""

    seed: int
    pretraining: dict[str, dict[str, Any]]  # pretext -> {"seed", "losses", "seconds"}
    runs: dict[str, dict[str, Any]]  # condition -> SeedRun.to_dict()


def run_pixel_transfer(
    config: PixelTransferConfig | None = None, progress: Progress | None = None
) -> PixelTransferResult:
    """Every condition for every seed, jobs in ``config.workers`` processes (see the module docstring)."""
    config = config or PixelTransferConfig()
    result = PixelTransferResult(config)
    begin = time.perf_counter()
    jobs = [(config, seed, group, progress is not None) for seed, group in config.jobs()]
    for outcome in run_jobs(_run_job, jobs, config.workers):
        for pretext, record in outcome.pretraining.items():
            result.pretraining.setdefault(pretext, []).append(record)
        for condition, run in outcome.runs.items():
            result.runs.setdefault(condition, []).append(run)
            if progress is not None:
                progress(f"seed {outcome.seed}: {LABELS[condition]}: {_run_summary(run, config.target)}")
    for records in (result.pretraining, result.runs):
        for key in records:
            records[key].sort(key=lambda r: r["seed"])
    ordered = {c: result.runs[c] for c in CONDITIONS if c in result.runs}
    result.runs = ordered
    result.wall_time = time.perf_counter() - begin
    return result


def write_pixel_transfer_report(
    result: PixelTransferResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Pre-trained vision: PPO on ski pixels with a pre-trained encoder, against from scratch"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _run_job(config: PixelTransferConfig, seed: int, group: str, report: bool) -> JobOutcome:
    """One seed's scratch run, or one seed's pre-training with ``group``'s pretext and its conditions' runs; with
    ``report``, every validation is printed to stderr as it happens (from a worker process too)."""
    progress = print_progress if report else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task = pixel_task(
            config.slope, config.budget, config.eval_every, config.eval_episodes, config.test_episodes, config.n_envs
        )
        conditions = [c for c in config.conditions if c.split("-")[0] == group]
        if group == "scratch":
            run = train_to_target(replace(task, name="scratch"), seed, progress)
            return JobOutcome(seed, {}, {"scratch": run.to_dict()})
        encoder, record = _pretrain(config, seed, group)
        if progress is not None:
            losses = record["losses"]
            progress(f"seed {seed}: {group} pre-training, loss {losses[0]:.3f} -> {losses[-1]:.3f}")
        runs = {}
        for condition in conditions:
            init = encoder_init(encoder.state_dict(), freeze=condition.endswith("-frozen"))
            runs[condition] = train_to_target(replace(task, name=condition), seed, progress, init).to_dict()
        return JobOutcome(seed, {group: record}, runs)
    finally:
        torch.set_num_threads(threads)


def _pretrain(config: PixelTransferConfig, seed: int, pretext: str) -> tuple[NatureEncoder, dict[str, Any]]:
    """``pretext``'s encoder for ``seed`` on that seed's frames (the same frames for both pretexts)."""
    options = {k: v for k, v in PIXEL_ENV.items() if k != "obs_type"}
    frames, states = collect_frames(config.frames, FRAME_SEED + seed, config.slope, **options)
    recipe = VisionRecipe(epochs=config.pretrain_epochs, seed=seed)
    begin = time.perf_counter()
    if pretext == "supervised":
        encoder, losses = pretrain_supervised(frames, states, recipe)
    else:
        encoder, losses = pretrain_contrastive(frames, recipe)
    return encoder, {"seed": seed, "losses": losses, "seconds": time.perf_counter() - begin}


# ---- report ----------------------------------------------------------------------------------------------------


def first_reaching(run: dict[str, Any], target: float) -> dict[str, Any] | None:
    """The first validation of ``run`` (a ``SeedRun.to_dict()``) whose mean return reaches ``target``."""
    return next((c for c in run["curve"] if c["mean_return"] >= target), None)


def _run_summary(run: dict[str, Any], target: float) -> str:
    reached = first_reaching(run, target)
    when = f"return >= {target:g} at {format_rate(reached['steps'])}" if reached else f"never return >= {target:g}"
    last = run["curve"][-1]["mean_return"] if run["curve"] else math.nan
    return f"{when}, last validation {last:.1f}, {run['total_wall_time']:.0f} s"


def _mean_sd(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    sd = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.fmean(values), fmt)} ± {format(sd, fmt)}"


def _curve_values(runs: list[dict[str, Any]], steps: int, key: str) -> list[float]:
    return [c[key] for r in runs for c in r["curve"] if c["steps"] == steps]


def _table(result: PixelTransferResult) -> str:
    target = result.config.target
    grid = sorted({c["steps"] for runs in result.runs.values() for r in runs for c in r["curve"]})
    shown = grid[1::2] if len(grid) > 3 else grid  # every other validation keeps the table readable
    header = [
        "encoder",
        *[f"return at {format_rate(s)}" for s in shown],
        f"decisions to return ≥ {target:g}",
        "training time to it",
        "last model on test: return / clean",
        "training time, all",
    ]
    rows = []
    for condition, runs in result.runs.items():
        reached = [hit for hit in (first_reaching(r, target) for r in runs) if hit is not None]
        tests = [r["final_model_on_test"] for r in runs if r["final_model_on_test"]]
        rows.append(
            [
                LABELS[condition],
                *[_mean_sd(_curve_values(runs, s, "mean_return"), ".1f") for s in shown],
                f"{_mean_sd([h['steps'] for h in reached], '.0f')} ({len(reached)}/{len(runs)} seeds)",
                _mean_sd([h["wall_time"] for h in reached], ".0f") + " s" if reached else "-",
                f"{_mean_sd([t['mean_return'] for t in tests], '.1f')} / "
                f"{_mean_sd([t['clean_rate'] for t in tests], '.0%')}",
                _mean_sd([r["total_wall_time"] for r in runs], ".0f") + " s",
            ]
        )
    return markdown_table(header, rows)


def _pretraining_table(result: PixelTransferResult) -> str:
    rows = []
    for pretext, seeds in result.pretraining.items():
        first = [s["losses"][0] for s in seeds]
        last = [s["losses"][-1] for s in seeds]
        seconds = [s["seconds"] for s in seeds]
        rows.append([pretext, _mean_sd(first, ".3f"), _mean_sd(last, ".3f"), _mean_sd(seconds, ".0f") + " s"])
    return markdown_table(["pre-training", "loss, first epoch", "loss, last epoch", "time"], rows)


def _how_to_read(result: PixelTransferResult) -> str:
    c = result.config
    return (
        f"**How to read it.** Each row is PPO on {c.slope}-slope pixels (two 84x84 frames 0.4 s apart: frame skip "
        f"{PIXEL_ENV['frame_skip']}, frame stack {PIXEL_ENV['frame_stack']}; `CnnPolicy`, {c.n_envs} envs, "
        f"entropy bonus {PIXEL_PPO['ent_coef']}) for the same {format_rate(c.budget)} decisions, validated every "
        f"{format_rate(c.eval_every)} on {c.eval_episodes} held-out courses (deterministic policy); cells are mean ± "
        f"sd over seeds {', '.join(map(str, c.seeds))}. Braking all the way down scores {BRAKING_RETURN}, the "
        "random policy about -300 and a clean run about 165, so the target, a mean validation return of "
        f"{c.target:g}, means the agent skis down rather than brakes; decisions and training time to it are over "
        "the seeds that got there (evaluations not counted). Frozen rows show what the pre-trained features alone "
        "carry (only the policy and value heads learn), fine-tuned rows whether starting from them helps the "
        f"whole CNN. Encoders are pre-trained per seed on {c.frames} observations of the heuristic skier with "
        f"random actions mixed in, {c.pretrain_epochs} epochs each: supervised = regress the standardised "
        "19-number state vector (MSE, in variances), contrastive = SimCLR NT-Xent (chance is log(2 x 128 - 1) = "
        "5.54); pre-training time is not in the time columns. "
        f"The whole run took {result.wall_time / 60:.0f} min in {c.workers} processes. "
        f"Machine: {format_machine(result.machine)}, torch {torch.__version__}, one thread per process. "
        "Regenerate with `.venv/bin/python scripts/bench.py pixel-transfer`; curves per seed in `pixel_transfer.json`."
    )
