"""Pre-trained vision for a pixel skier: PPO on 84x84 frames of the green slope with a CNN (SB3's ``CnnPolicy``,
the Nature DQN encoder) learnt from scratch, against the same CNN pre-trained on ski frames, supervised (regress
the state vector from the frame) or self-supervised (SimCLR on augmented frames), then frozen (only the policy
and value heads learn) or fine-tuned with the rest (:mod:`trends.transfer.vision`, :mod:`agents.pixel_transfer`).

Protocol, per seed: collect ``frames`` (frame, state) pairs from the heuristic skier with random actions mixed in
(courses of seeds ``FRAME_SEED + seed``, none of them a validation or test course), pre-train both encoders on
them, then train every condition with the same PPO recipe for the same FIXED budget of env steps
(:func:`agents.benchmarks.learning.train_to_target` with an unreachable target, so no run stops early), validating
every ``eval_every`` steps on the same held-out courses; the last model skis the test courses. Pixel PPO is slow
(rendering plus a CNN on one core), so the budget is far below what the vector skier needs to reach 80% clean
runs: the question is which start learns faster, read on the curves, not which one finishes.
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

from agents.benchmarks.learning import SKI_ID, LearningTask, build_model, train_to_target
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.pixel_transfer import collect_frames, encoder_init
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

# PPO on pixels: fewer envs than the vector skier's 32 (each one renders), Atari-style learning rate for a CNN,
# rewards normalised as the vector skier's are, observations not (CnnPolicy divides the frames by 255).
PIXEL_PPO: dict[str, Any] = {
    "n_envs": 8,
    "policy": "CnnPolicy",
    "normalize": "dict(norm_obs=False, norm_reward=True)",
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "learning_rate": "lin_2.5e-4",
}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PixelTransferConfig:
    """What the benchmark runs; the defaults fit in about 20 minutes of one core (see the report's note)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    conditions: tuple[str, ...] = CONDITIONS
    slope: str = "green"
    budget: int = 20_480  # env steps per run, the same for every condition (20 PPO rollouts of 8 x 128)
    eval_every: int = 10_240  # env steps between validations (a validation costs about half a second a course)
    eval_episodes: int = 10  # validation courses
    test_episodes: int = 20  # test courses for the last model
    frames: int = 4_000  # (frame, state) pairs to pre-train on, per seed
    pretrain_epochs: int = 5  # passes over the frames, each pretext
    n_envs: int = PIXEL_PPO["n_envs"]  # training envs (a rollout is n_envs x 128 steps)
    speed_steps: int = 2_048  # env steps of the speed measurement made before the runs


def pixel_task(
    slope: str = "green",
    budget: int = 20_480,
    eval_every: int = 10_240,
    eval_episodes: int = 10,
    test_episodes: int = 20,
    n_envs: int = PIXEL_PPO["n_envs"],
) -> LearningTask:
    """The ski on ``slope`` seen as pixels, PPO with :data:`PIXEL_PPO`, trained in a DummyVecEnv (the native
    vector env serves vector observations only) for exactly ``budget`` steps: the target is out of reach."""
    return LearningTask(
        name=f"{slope} pixels",
        env_id=SKI_ID,
        env_kwargs={"slope": slope, "obs_type": "pixels"},
        hyperparams={**PIXEL_PPO, "n_envs": n_envs},
        budget=budget,
        metric="clean",
        target=math.inf,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        test_episodes=test_episodes,
        vec_env="dummy",
        eval_mode="sync",
    )


def measure_steps_per_second(task: LearningTask, steps: int = 2_048, seed: int = 0) -> float:
    """PPO's training speed on ``task`` (env steps per second, rollouts and updates, one torch thread)."""
    model, venv = build_model(replace(task, budget=steps), seed)
    try:
        begin = time.perf_counter()
        model.learn(steps)
        return model.num_timesteps / (time.perf_counter() - begin)
    finally:
        venv.close()


@dataclass
class PixelTransferResult:
    config: PixelTransferConfig
    steps_per_second: float = math.nan  # PPO on pixels from scratch, measured before the runs
    pretraining: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # pretext -> per seed
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # condition -> SeedRun.to_dict() per seed
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "hyperparams": PIXEL_PPO,
            "steps_per_second": self.steps_per_second,
            "pretraining": self.pretraining,
            "runs": self.runs,
            "machine": {**self.machine, "torch": torch.__version__, "torch_threads": 1},
        }

    def to_markdown(self) -> str:
        return "\n\n".join([_table(self), _pretraining_table(self), _how_to_read(self)]) + "\n"


def run_pixel_transfer(
    config: PixelTransferConfig | None = None, progress: Progress | None = None
) -> PixelTransferResult:
    """Every condition for every seed, one after another, one torch thread (see the module docstring)."""
    config = config or PixelTransferConfig()
    unknown = set(config.conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {', '.join(CONDITIONS)}")
    task = pixel_task(
        config.slope, config.budget, config.eval_every, config.eval_episodes, config.test_episodes, config.n_envs
    )
    result = PixelTransferResult(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result.steps_per_second = measure_steps_per_second(task, config.speed_steps)
        for seed in config.seeds:
            encoders = _pretrain(config, seed, result, progress)
            for condition in config.conditions:
                init = None if condition == "scratch" else _init(encoders, condition)
                run = train_to_target(replace(task, name=condition), seed, progress, init)
                result.runs.setdefault(condition, []).append(run.to_dict())
    finally:
        torch.set_num_threads(threads)
    return result


def write_pixel_transfer_report(
    result: PixelTransferResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Pre-trained vision: PPO on ski pixels with a pre-trained encoder, against from scratch"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _pretrain(
    config: PixelTransferConfig, seed: int, result: PixelTransferResult, progress: Progress | None
) -> dict[str, NatureEncoder]:
    """Both encoders of ``seed``, on the same frames; their loss curves and times go into ``result``."""
    pretexts = {c.split("-")[0] for c in config.conditions if c != "scratch"}
    if not pretexts:
        return {}
    frames, states = collect_frames(config.frames, FRAME_SEED + seed, config.slope)
    recipe = VisionRecipe(epochs=config.pretrain_epochs, seed=seed)
    encoders = {}
    for pretext in sorted(pretexts):
        begin = time.perf_counter()
        if pretext == "supervised":
            encoder, losses = pretrain_supervised(frames, states, recipe)
        else:
            encoder, losses = pretrain_contrastive(frames, recipe)
        seconds = time.perf_counter() - begin
        result.pretraining.setdefault(pretext, []).append({"seed": seed, "losses": losses, "seconds": seconds})
        encoders[pretext] = encoder
        if progress is not None:
            progress(f"seed {seed}: {pretext} pre-training loss {losses[0]:.3f} -> {losses[-1]:.3f} ({seconds:.0f} s)")
    return encoders


def _init(encoders: dict[str, NatureEncoder], condition: str) -> Callable[[Any, Any], None]:
    pretext, mode = condition.split("-")
    return encoder_init(encoders[pretext].state_dict(), freeze=mode == "frozen")


# ---- report ----------------------------------------------------------------------------------------------------


def _mean_sd(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    sd = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.fmean(values), fmt)} ± {format(sd, fmt)}"


def _clean_and_return(clean: list[float], returns: list[float]) -> str:
    return f"{_mean_sd(clean, '.0%')} / {_mean_sd(returns, '.1f')}"


def _curve_values(runs: list[dict[str, Any]], steps: int, key: str) -> list[float]:
    return [c[key] for r in runs for c in r["curve"] if c["steps"] == steps]


def _table(result: PixelTransferResult) -> str:
    grid = sorted({c["steps"] for runs in result.runs.values() for r in runs for c in r["curve"]})
    header = ["encoder", *[f"clean / return at {format_rate(s)}" for s in grid], "last model on test", "wall time"]
    rows = []
    for condition, runs in result.runs.items():
        cells = [
            _clean_and_return(_curve_values(runs, s, "score"), _curve_values(runs, s, "mean_return")) for s in grid
        ]
        tests = [r["final_model_on_test"] for r in runs if r["final_model_on_test"]]
        test = _clean_and_return([t["clean_rate"] for t in tests], [t["mean_return"] for t in tests])
        wall = _mean_sd([r["total_wall_time"] for r in runs], ".0f") + " s"
        rows.append([LABELS[condition], *cells, test, wall])
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
        f"**How to read it.** Each row is PPO on {c.slope}-slope pixels (84x84, `CnnPolicy`, {PIXEL_PPO['n_envs']} "
        f"envs) for the same {format_rate(c.budget)} env steps; the cells are the validation clean-run rate and mean "
        f"return on {c.eval_episodes} held-out courses (deterministic policy), mean ± sd over seeds "
        f"{', '.join(map(str, c.seeds))}, then the last model on {c.test_episodes} test courses. A pre-trained "
        "row above the scratch row at the same steps means the pre-trained features made the policy learn faster; "
        "frozen rows show what the features alone carry (only the policy and value heads learn), fine-tuned rows "
        f"whether starting from them helps the whole CNN. Encoders are pre-trained per seed on {c.frames} frames "
        f"of the heuristic skier with random actions mixed in, {c.pretrain_epochs} epochs each: supervised = "
        "regress the standardised 19-number state vector (MSE, in variances), contrastive = SimCLR NT-Xent "
        "(chance is log(2 x 128 - 1) = 5.54). The budget is small because pixel PPO trains at "
        f"{result.steps_per_second:.0f} env steps/s on one core here (the vector skier needs millions of steps "
        "to ski 80% of courses cleanly), so read it as the early part of the learning curve. Pre-training time "
        "is not counted in the wall time column. "
        f"Machine: {format_machine(result.machine)}, torch {torch.__version__}, one thread. Regenerate with "
        "`python scripts/bench.py pixel-transfer`; curves per seed in `pixel_transfer.json`."
    )
