"""Does a short tuning run find PPO hyper-parameters for the green slope at least as good as the hand-tuned ones?

Protocol:

* tune PPO on ``trendgym/Ski-v0`` (green) with ``train.py --optimize``'s machinery (:func:`agents.tuning.tune`):
  ``n_trials`` trials of ``budget`` steps each, TPE and the median pruner, every trial trained from seed
  ``tuning_seed`` and judged on the same validation courses (seeds 500000+) by its last evaluation's mean return;
  the search samples on top of ``ppo.yml``'s ``trendgym/Ski-v0`` entry (32 native envs, VecNormalize);
* retrain the best trial's hyper-parameters and the hand-tuned entry at the same budget (which is also the
  horizon of their linear schedules) from training seeds the tuning never used, and judge every final model
  deterministically on ``test_episodes`` test courses (seeds 1000000+) that neither the tuning nor any training
  saw (:func:`agents.benchmarks.learning.train_to_target` with an unreachable target: it trains the whole budget);
* report mean return and clean-run rate, mean ± sd over seeds, the difference with its standard error, and a
  verdict that says what the numbers say, whichever way they go.

The hand-tuned entry was tuned for 3M steps; at a budget of a few hundred thousand it is not at its best, and the
question is the issue's: at the tuning's own budget, does tuning match or beat it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agents.benchmarks.learning import SKI_ID, SeedRun, ski_task, train_to_target
from agents.benchmarks.report import format_machine, format_rate, machine_info, markdown_table, publish
from agents.hyperparams import load_hyperparams
from agents.runs import RUNS_ROOT
from agents.seeds import TEST_SEED, VALIDATION_SEED
from agents.tuning import TuneConfig, tune

BENCH_NAME = "tuning"
CONFIGS = ("hand-tuned", "tuned")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TuningBenchConfig:
    slope: str = "green"
    budget: int = 200_000  # env steps per trial and per retraining (and the horizon of the lin_ schedules)
    n_trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    n_startup_trials: int = 5
    eval_freq: int = 50_000  # a trial's evaluations: 4 over 200k steps
    eval_episodes: int = 20  # validation courses per evaluation
    tuning_seed: int = 0  # training seed of every trial
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)  # training seeds of the retrainings (none is the tuning's)
    test_episodes: int = 100
    root: Path = RUNS_ROOT  # the study lives in <root>/tuning/ppo_Ski-v0.db, its report in <root>/tuning/<study>/
    study_name: str | None = None  # None: bench_ppo_Ski-v0_<slope>_<budget>_<n_trials>_<sampler>_<pruner>

    def name(self) -> str:
        parts = [self.slope, format_rate(self.budget), str(self.n_trials), self.sampler, self.pruner]
        return self.study_name or "bench_ppo_Ski-v0_" + "_".join(parts)


@dataclass
class TuningBenchResult:
    config: TuningBenchConfig
    study: dict[str, Any]  # what the tuning did: trials by state, best trial, wall time, report folder
    hyperparams: dict[str, dict[str, Any]]  # "hand-tuned" and "tuned" raw entries
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # config -> SeedRun.to_dict() per seed
    retrain_seconds: float = 0.0
    machine: dict[str, Any] = field(default_factory=machine_info)

    def scores(self, name: str, key: str) -> list[float]:
        """Per seed, the final model's ``key`` ("mean_return" or "clean_rate") on the test courses."""
        return [run["final_model_on_test"][key] for run in self.runs.get(name, []) if run["final_model_on_test"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {**asdict(self.config), "root": str(self.config.root)},
            "study": self.study,
            "hyperparams": self.hyperparams,
            "runs": self.runs,
            "verdict": verdict(self),
            "retrain_seconds": self.retrain_seconds,
            "machine": self.machine,
        }

    def to_markdown(self) -> str:
        return "\n\n".join([_comparison(self), _differences(self), _note(self), f"**{verdict(self)}**"]) + "\n"


def run_tuning_bench(config: TuningBenchConfig | None = None, progress: Progress | None = None) -> TuningBenchResult:
    config = config or TuningBenchConfig()
    say = progress or (lambda _: None)
    started = time.perf_counter()
    outcome = tune(
        TuneConfig(
            algo="ppo",
            env=SKI_ID,
            env_kwargs={"slope": config.slope},
            seed=config.tuning_seed,
            timesteps=config.budget,
            n_trials=config.n_trials,
            sampler=config.sampler,
            pruner=config.pruner,
            n_startup_trials=config.n_startup_trials,
            storage=None,
            study_name=config.name(),
            root=config.root,
            eval_freq=config.eval_freq,
            eval_episodes=config.eval_episodes,
            device="cpu",
            verbose=1,
        )
    )
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.best is None:
        raise RuntimeError(f"the tuning study {outcome.study_name} has no complete trial to retrain")
    tuning_seconds = time.perf_counter() - started
    best = outcome.best
    say(f"tuning: {outcome.finished} trials in {tuning_seconds:.0f} s; best trial {best.number}, {best.value:.1f}")
    hand = {**load_hyperparams("ppo", SKI_ID), "n_timesteps": config.budget}
    tuned = dict(best.user_attrs["hyperparams"])
    result = TuningBenchResult(
        config,
        study=_study_summary(outcome, tuning_seconds),
        hyperparams={"hand-tuned": hand, "tuned": tuned},
    )
    task = replace(
        ski_task(config.slope, config.budget, config.budget // 4, config.eval_episodes, config.test_episodes),
        target=math.inf,  # never reached: every run trains its whole budget, its final model judged on test courses
    )
    started = time.perf_counter()
    for seed in config.seeds:
        for name in CONFIGS:
            run: SeedRun = train_to_target(replace(task, hyperparams=result.hyperparams[name]), seed)
            result.runs.setdefault(name, []).append(run.to_dict())
            final = run.final_test
            if final is not None:
                say(f"{name} seed {seed}: return {final.mean_return:.1f}, {final.clean_rate:.0%} clean on test")
    result.retrain_seconds = time.perf_counter() - started
    return result


def _study_summary(outcome: Any, seconds: float) -> dict[str, Any]:
    best = outcome.best
    return {
        "study_name": outcome.study_name,
        "storage": outcome.storage,
        "report": str(outcome.out_dir),
        "finished": outcome.finished,
        "states": outcome.states,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_clean_rate": best.user_attrs.get("clean_rate"),
        "importances": outcome.written.get("importances"),
        "seconds": seconds,
    }


def _mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _difference(result: TuningBenchResult, key: str) -> tuple[float, float]:
    """Tuned minus hand-tuned, paired by seed when both have every seed, with its standard error."""
    tuned, hand = result.scores("tuned", key), result.scores("hand-tuned", key)
    if len(tuned) == len(hand) and len(tuned) > 1:
        diffs = [t - h for t, h in zip(tuned, hand, strict=True)]
        return statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))
    (mt, st), (mh, sh) = _mean_sd(tuned), _mean_sd(hand)
    return mt - mh, math.sqrt(st**2 / max(len(tuned), 1) + sh**2 / max(len(hand), 1))


def _judgement(diff: float, se: float) -> str:
    """A paired difference against its standard error: beyond two standard errors either way, or not."""
    if diff > 2 * se:
        return "better"
    if diff < -2 * se:
        return "worse"
    return "no clear difference"


def verdict(result: TuningBenchResult) -> str:
    """What the comparison says, in words, on both measures: better or worse beyond two standard errors, or not."""
    budget = format_rate(result.config.budget)
    ret, ret_se = _difference(result, "mean_return")
    clean, clean_se = _difference(result, "clean_rate")
    if math.isnan(ret):
        return "No comparison: a configuration has no test result."
    judged = {_judgement(ret, ret_se), _judgement(clean, clean_se)}
    details = (
        f"mean test return {ret:+.1f} (± {ret_se:.1f} s.e., {_judgement(ret, ret_se)}), clean runs "
        f"{clean * 100:+.0f} points (± {clean_se * 100:.0f} s.e., {_judgement(clean, clean_se)}), "
        f"{len(result.config.seeds)} seeds paired"
    )
    if "worse" in judged:
        return f"Tuning did not find hyper-parameters as good as the hand-tuned ones at {budget} steps: {details}."
    if "better" in judged:
        return f"Tuning found hyper-parameters better than the hand-tuned ones at {budget} steps: {details}."
    return f"Tuning matched the hand-tuned recipe at {budget} steps, no better: {details}."


def _comparison(result: TuningBenchResult) -> str:
    header = [
        "hyper-parameters",
        "test return",
        "test clean runs",
        "validation return (tuning's courses)",
        "training time",
        "seeds",
    ]
    rows = []
    for name in CONFIGS:
        runs = result.runs.get(name, [])
        ret, ret_sd = _mean_sd(result.scores(name, "mean_return"))
        clean, clean_sd = _mean_sd(result.scores(name, "clean_rate"))
        val, val_sd = _mean_sd([r["curve"][-1]["mean_return"] for r in runs if r["curve"]])
        seconds, _ = _mean_sd([r["total_wall_time"] for r in runs])
        label = "`ppo.yml` (hand-tuned)" if name == "hand-tuned" else f"tuned (trial {result.study['best_trial']})"
        rows.append(
            [
                label,
                f"{ret:.1f} ± {ret_sd:.1f}",
                f"{clean:.0%} ± {clean_sd:.0%}",
                f"{val:.1f} ± {val_sd:.1f}",
                f"{seconds:.0f} s",
                str(len(runs)),
            ]
        )
    diff, se = _difference(result, "mean_return")
    cdiff, cse = _difference(result, "clean_rate")
    rows.append(
        ["tuned − hand-tuned", f"{diff:+.1f} (± {se:.1f} s.e.)", f"{cdiff:+.0%} (± {cse:.0%} s.e.)", "", "", ""]
    )
    return markdown_table(header, rows)


def _differences(result: TuningBenchResult) -> str:
    """The keys where the tuned entry differs from the hand-tuned one."""
    hand, tuned = result.hyperparams["hand-tuned"], result.hyperparams["tuned"]
    keys = [k for k in dict.fromkeys([*hand, *tuned]) if hand.get(k) != tuned.get(k) and k != "n_timesteps"]
    rows = [[f"`{k}`", _cell(hand.get(k)), _cell(tuned.get(k))] for k in keys]
    return markdown_table(["hyper-parameter", "hand-tuned", "tuned"], rows) if rows else "Same hyper-parameters."


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return f"lin_{float(value[4:]):.3g}"
        except ValueError:
            return value
    return f"`{value}`" if isinstance(value, str) else str(value)


def _note(result: TuningBenchResult) -> str:
    c, s = result.config, result.study
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(s["states"].items()))
    return (
        f"PPO on `{SKI_ID}` ({c.slope}), {format_rate(c.budget)} steps per trial and per run. Tuning: "
        f"`train.py --optimize` machinery, {c.n_trials} trials ({states}), {c.sampler.upper()} sampler "
        f"({c.n_startup_trials} random trials first), {c.pruner} pruner, every trial trained from seed "
        f"{c.tuning_seed} and judged by its last evaluation on {c.eval_episodes} validation courses (seeds "
        f"{VALIDATION_SEED}+), {s['seconds'] / 60:.1f} min; best trial {s['best_trial']} at {s['best_value']:.1f}. "
        f"Then both entries retrained from seeds {', '.join(map(str, c.seeds))} at the same budget (also their "
        f"schedules' horizon; {result.retrain_seconds / 60:.1f} min) and every final model judged deterministically "
        f"on {c.test_episodes} test courses (seeds {TEST_SEED}+) no tuning or training saw; mean ± sd over seeds, "
        "the difference paired by seed; training time is the mean wall time of a run, evaluations excluded, on a "
        "machine other jobs shared. The hand-tuned entry was tuned for 3M steps: this says nothing about that "
        "budget. Study, `best.yml`, `trials.csv` and plots in "
        f"`{_shown(s['report'])}`. "
        f"Machine: {format_machine(result.machine)}. Regenerate with `.venv/bin/python scripts/bench.py tuning`."
    )


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (runs/tuning/...)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def write_tuning_report(result: TuningBenchResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    title = "Tuning PPO on the green slope: train.py --optimize against the hand-tuned recipe"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)
