"""How much of an expert's skiing GAIL and behaviour cloning recover from a few demonstrations (Ho & Ermon 2016,
their Figure 1: performance against the number of expert trajectories, random = 0 and expert = 1).

The expert is the heuristic skier (:class:`agents.baselines.HeuristicSkier`) rather than a trained PPO teacher: it
skis every green course cleanly (165.6, 100% clean runs on the test courses, where the PPO teachers reach about
80%), so "a fraction of the expert's" measures imitation, not the imitation of a teacher's own mistakes; it
needs no training run to exist; and it is deterministic, so its demonstrations are a function of the seed.

For each seed the expert skis ``max(demo_episodes)`` training courses; a run with ``n`` demonstrations gets the
first ``n`` of them (nested sets, so more demonstrations only add data). BC and GAIL learn from the same pairs;
both are judged, with the expert and the random policy, on the same unseen test courses.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.baselines import HeuristicSkier, RandomPolicy
from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.evaluation import EvaluationResult, Policy, evaluate, make_env
from agents.imitation import GailConfig, behaviour_cloning, collect_demonstrations, train_gail
from agents.seeds import test_seeds

BENCH_NAME = "imitation"
METHODS = ("bc", "gail")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImitationBenchConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # demonstrations' courses and the learners' initial weights
    demo_episodes: tuple[int, ...] = (1, 4, 16)  # expert episodes (about 290 pairs each) per run
    gail_timesteps: int = 1_000_000  # agent steps per GAIL run: ~45 s of one core, 15 runs in the default
    bc_epochs: int = 20  # passes over the demonstrations
    eval_episodes: int = 50  # unseen test courses per policy
    env_id: str = "trendgym/Ski-v0"
    slope: str = "green"
    gail: GailConfig = field(default_factory=GailConfig)

    def __post_init__(self) -> None:
        if not self.seeds or not self.demo_episodes or min(self.demo_episodes) < 1:
            raise ValueError("seeds and demo_episodes must be non-empty, demo_episodes at least 1 each")
        if self.gail_timesteps < 1 or self.bc_epochs < 1 or self.eval_episodes < 1:
            raise ValueError("gail_timesteps, bc_epochs and eval_episodes must be at least 1")


@dataclass
class Score:
    """One policy on the test courses: mean return and clean-run rate."""

    mean_return: float
    clean: float

    @classmethod
    def of(cls, evaluation: EvaluationResult) -> Score:
        return cls(evaluation.mean_return, evaluation.metric_means().get("clean", float("nan")))


@dataclass
class ImitationRun:
    method: str  # "bc" or "gail"
    seed: int
    demo_episodes: int
    score: Score  # acting deterministically (the most probable action), as every benchmark judges agents
    seconds: float  # wall time of the learning (not of the evaluation)
    sampled: Score | None = None  # GAIL's policy acting stochastically, as it acted in training


@dataclass
class ImitationBenchResult:
    config: ImitationBenchConfig
    expert: Score
    random: Score
    runs: list[ImitationRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def normalised(self, mean_return: float) -> float:
        """Ho & Ermon's scale: 0 for the random policy, 1 for the expert."""
        return (mean_return - self.random.mean_return) / (self.expert.mean_return - self.random.mean_return)

    def runs_of(self, method: str, demo_episodes: int) -> list[ImitationRun]:
        return [r for r in self.runs if r.method == method and r.demo_episodes == demo_episodes]

    def to_markdown(self) -> str:
        return "\n\n".join([_table(self), _note(self.config), f"Seeds {list(self.config.seeds)}. {_footer(self)}"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "expert": asdict(self.expert),
            "random": asdict(self.random),
            "runs": [{**asdict(r), "normalised_return": self.normalised(r.score.mean_return)} for r in self.runs],
            "machine": self.machine,
        }


def _judge(policy: Policy, config: ImitationBenchConfig, name: str, deterministic: bool = True) -> Score:
    seeds = test_seeds(config.eval_episodes)
    return Score.of(evaluate(policy, config.env_id, {"slope": config.slope}, seeds, deterministic, name))


def run_imitation_bench(
    config: ImitationBenchConfig | None = None, progress: Progress | None = None
) -> ImitationBenchResult:
    config = config or ImitationBenchConfig()
    say = progress or (lambda message: None)
    env_kwargs = {"slope": config.slope}
    env = make_env(config.env_id, env_kwargs)
    expert = HeuristicSkier(env.action_space)
    random_policy = RandomPolicy(env.action_space, seed=test_seeds(1)[0], observation_space=env.observation_space)
    env.close()
    result = ImitationBenchResult(config, _judge(expert, config, "expert"), _judge(random_policy, config, "random"))
    say(f"expert {result.expert.mean_return:.1f}, random {result.random.mean_return:.1f}")
    for seed in config.seeds:
        all_demos = collect_demonstrations(expert, config.env_id, env_kwargs, max(config.demo_episodes), seed)
        for n in config.demo_episodes:
            demos = all_demos.first(n)
            start = time.perf_counter()
            bc = behaviour_cloning(demos, config.env_id, env_kwargs, seed=seed, epochs=config.bc_epochs)
            result.runs.append(ImitationRun("bc", seed, n, _judge(bc, config, "bc"), time.perf_counter() - start))
            start = time.perf_counter()
            gail = train_gail(demos, config.env_id, env_kwargs, config.gail_timesteps, seed, config.gail)
            seconds = time.perf_counter() - start
            sampled = _judge(gail, config, "gail", deterministic=False)
            result.runs.append(ImitationRun("gail", seed, n, _judge(gail, config, "gail"), seconds, sampled))
            bc_score, gail_score = result.runs[-2].score, result.runs[-1].score
            say(f"seed {seed}, {n} demos: BC {bc_score.mean_return:.1f}, GAIL {gail_score.mean_return:.1f}")
    return result


def write_imitation_bench_report(
    result: ImitationBenchResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    return publish(
        BENCH_NAME, "Imitation: GAIL and behaviour cloning", result.to_markdown(), result.to_dict(), out_dir, readme
    )


def _mean_std(values: list[float], fmt: str) -> str:
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.fmean(values))} ± {fmt.format(spread)}"


def _cells(result: ImitationBenchResult, scores: list[Score]) -> list[str]:
    returns = [s.mean_return for s in scores]
    return [
        _mean_std([result.normalised(x) for x in returns], "{:.2f}"),
        _mean_std(returns, "{:.1f}"),
        _mean_std([s.clean for s in scores], "{:.2f}"),
    ]


def _table(result: ImitationBenchResult) -> str:
    header = ["demonstrations", "policy", "score (random 0, expert 1)", "return", "clean-run rate"]
    expert, random = result.expert, result.random
    rows = [
        ["-", "expert (heuristic skier)", "1.00", f"{expert.mean_return:.1f}", f"{expert.clean:.2f}"],
        ["-", "random", "0.00", f"{random.mean_return:.1f}", f"{random.clean:.2f}"],
    ]
    for n in result.config.demo_episodes:
        for method, label in zip(METHODS, ("behaviour cloning", "GAIL"), strict=True):
            runs = result.runs_of(method, n)
            if runs:
                rows.append([str(n), label, *_cells(result, [r.score for r in runs])])
            if runs and all(r.sampled is not None for r in runs):
                rows.append([str(n), f"{label}, sampled actions", *_cells(result, [r.sampled for r in runs])])
    return markdown_table(header, rows)


def _note(config: ImitationBenchConfig) -> str:
    gail = config.gail
    return (
        "How to read it: the score puts a policy's mean return on Ho & Ermon's scale, 0 for the random policy and 1 "
        f"for the expert, on the same {config.eval_episodes} unseen {config.slope} courses, acting deterministically "
        "('sampled actions': GAIL's policy drawing its actions as it did in training); "
        "mean ± standard deviation over the seeds. A demonstration is one expert run down a training course, about "
        f"290 state-action pairs. Behaviour cloning: a [64, 64] policy, {config.bc_epochs} epochs of cross-entropy "
        f"on the expert's actions. GAIL: PPO with the ski recipe (agents/hyperparams/ppo.yml, 32 native envs) for "
        f"{config.gail_timesteps:,} agent steps on the discriminator's reward ({gail.reward_form} form), the "
        "discriminator (an MLP on the state and the one-hot action"
        + (", with DAC's absorbing state after the finish line" if gail.absorbing else "")
        + (f" and a gradient penalty of {gail.disc_grad_penalty:g}" if gail.disc_grad_penalty > 0 else "")
        + f") trained after each rollout ({gail.disc_epochs} {'pass' if gail.disc_epochs == 1 else 'passes'} over "
        f"it, step size {gail.disc_learning_rate:g}; agents/imitation/gail.py says why). GAIL trains a stochastic "
        "policy to match the expert's state-action distribution as it samples; its most probable action, taken "
        "every step, is another policy, one that misses more gates and falls more. BC needs no env "
        "steps at all but only ever sees the expert's states, so one mistake takes it where it has no data; GAIL "
        "learns in its own states and needs the environment, which is what its budget buys. PPO on the env's own "
        "reward needs about 3M steps for ~80% clean runs (the learning benchmark)."
    )


def _footer(result: ImitationBenchResult) -> str:
    gail_seconds = [r.seconds for r in result.runs if r.method == "gail"]
    timing = f"GAIL {statistics.fmean(gail_seconds):.0f} s per run (wall). " if gail_seconds else ""
    return timing + format_machine(result.machine)
