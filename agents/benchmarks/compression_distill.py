"""What distillation buys, over seeds: a classifier student taught by the zoo's teacher against the same student
trained on the labels alone (Hinton et al. 2015), and a ski agent's policy distilled into a network with under a
tenth of its parameters against the teacher itself (Rusu et al. 2016).

Classifier rows: for each seed the two students start from the same weights and see the same transfer set, so
the paired difference is the teacher's contribution. Agent rows: one green-slope PPO teacher per seed
(:mod:`agents.compression.teachers`), its student distilled with that seed, both scored on the same unseen
courses.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from agents.compression.distillation import CLASSIFIER_DISTILL, distill_agent, distill_classifier
from agents.compression.teachers import DEFAULT_ROOT, ski_teacher

BENCH_NAME = "compression_distill"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClassifierCase:
    """One classifier experiment: the dataset (its zoo teacher), the student and its transfer set."""

    dataset: str
    student_kind: str
    student_width: int
    transfer_size: int | None  # None: the whole training split

    def describe(self) -> str:
        samples = "all training samples" if self.transfer_size is None else f"{self.transfer_size} training samples"
        return f"{self.dataset}: {self.student_kind} student, width {self.student_width}, {samples}"


DEFAULT_CASES = (
    # Few labels, the student the teacher's shape: soft targets carry what 200 labels cannot.
    ClassifierCase("digits", "narrow", 16, 200),
    # Hinton's MNIST setting: an MLP student that overfits its labels, taught by a stronger network (a CNN).
    ClassifierCase("mnist1d", "mlp", 32, None),
    # All the labels and the teacher's own shape, 8x narrower: where soft targets may not help at all.
    ClassifierCase("mnist1d", "narrow", 16, None),
)


@dataclass(frozen=True)
class DistillBenchConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    cases: tuple[ClassifierCase, ...] = DEFAULT_CASES
    agent_student_width: int = 16  # one hidden layer: about 7% of the [64, 64] teacher's actor
    eval_episodes: int = 50  # unseen courses per agent
    agents: bool = True  # the ski part (trains the teachers first if runs/compression/teachers lacks them)
    teachers_root: Path = DEFAULT_ROOT


@dataclass
class ClassifierSeed:
    seed: int
    teacher: float
    labels_only: float
    distilled: float
    errors: dict[str, int]
    student_parameters: int
    teacher_parameters: int


@dataclass
class AgentSeed:
    seed: int
    teacher_return: float
    student_return: float
    teacher_clean: float
    student_clean: float
    teacher_parameters: int
    student_parameters: int


@dataclass
class DistillBenchResult:
    config: DistillBenchConfig
    classifiers: dict[str, list[ClassifierSeed]] = field(default_factory=dict)  # case description -> seeds
    agents: list[AgentSeed] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def to_markdown(self) -> str:
        parts = []
        if self.classifiers:
            parts += [_classifier_table(self.classifiers), _CLASSIFIER_NOTE]
        if self.agents:
            parts += [_agent_table(self.agents, self.config), _AGENT_NOTE]
        parts.append(f"Seeds {list(self.config.seeds)}. {format_machine(self.machine)}")
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {**asdict(self.config), "teachers_root": str(self.config.teachers_root)},
            "classifiers": {case: [asdict(s) for s in seeds] for case, seeds in self.classifiers.items()},
            "agents": [asdict(s) for s in self.agents],
            "machine": self.machine,
        }


def run_distill_bench(config: DistillBenchConfig | None = None, progress: Progress | None = None) -> DistillBenchResult:
    config = config or DistillBenchConfig()
    say = progress or (lambda message: None)
    result = DistillBenchResult(config)
    for case in config.cases:
        seeds = result.classifiers.setdefault(case.describe(), [])
        for seed in config.seeds:
            run = distill_classifier(
                case.dataset,
                case.student_width,
                case.student_kind,
                case.transfer_size,
                replace(CLASSIFIER_DISTILL, seed=seed),
                repeats=3,
            )
            teacher_row, _, distilled_row = run.report.rows
            seeds.append(
                ClassifierSeed(
                    seed,
                    run.teacher.test_accuracy,
                    run.labels_only.test_accuracy,
                    run.distilled.test_accuracy,
                    run.test_errors,
                    distilled_row.parameters,
                    teacher_row.parameters,
                )
            )
            last = seeds[-1]
            say(f"{case.describe()} seed {seed}: labels {last.labels_only:.3f}, distilled {last.distilled:.3f}")
    if config.agents:
        for seed in config.seeds:
            teacher_run = ski_teacher(seed, config.teachers_root)
            run = distill_agent(
                teacher_run, config.agent_student_width, episodes=config.eval_episodes, root=None, repeats=3
            )
            teacher_row, student_row = run.report.rows
            clean_t = run.teacher_evaluation.metric_means().get("clean", float("nan"))
            clean_s = run.student_evaluation.metric_means().get("clean", float("nan"))
            result.agents.append(
                AgentSeed(
                    seed,
                    teacher_row.score,
                    student_row.score,
                    clean_t,
                    clean_s,
                    teacher_row.parameters,
                    student_row.parameters,
                )
            )
            say(f"ski teacher {seed}: return {teacher_row.score:.1f} -> student {student_row.score:.1f}")
    return result


def write_distill_bench_report(result: DistillBenchResult, out_dir: Path, readme: Path | None = None) -> dict[str, Any]:
    return publish(BENCH_NAME, "Distillation", result.to_markdown(), result.to_dict(), out_dir, readme)


_CLASSIFIER_NOTE = (
    "How to read it: test accuracy, mean ± standard deviation over the seeds (the student's initial weights and "
    "batch order; the teacher is the same zoo model), and the test errors as Hinton et al. count them (their MNIST "
    "student: 146 errors on labels, 74 distilled). Both students share the recipe (Adam 1e-2, batch 32, up to 100 "
    "epochs, early stopping on the validation cross-entropy); the distilled one learns from T=4, alpha=0.9. The "
    "cases differ on purpose: a student short of labels (digits, 200 samples) or of the right shape for the data (an "
    "MLP on MNIST-1D, whose classes are shifted and scaled patterns a convolution finds) has something to learn "
    "from the teacher; a narrow CNN trained on every label may not, and then the soft targets cost it accuracy."
)
_AGENT_NOTE = (
    "How to read it: one green-slope PPO teacher per seed (the main job's recipe, 3M steps), distilled by DAgger "
    "(6 iterations of 1000 states, KL to the teacher's action distribution); both play the same 50 unseen courses "
    "deterministically. Parameters are the actor's (the network that acts). Rusu et al. kept 102% of the "
    "teacher's score with 7% of its parameters on Atari."
)


def _mean_std(values: list[float], fmt: str = "{:.3f}") -> str:
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.fmean(values))} ± {fmt.format(spread)}"


def _accuracy_with_errors(seeds: list[ClassifierSeed], attribute: str, errors_key: str) -> str:
    accuracy = _mean_std([getattr(s, attribute) for s in seeds])
    return f"{accuracy} ({statistics.fmean(s.errors[errors_key] for s in seeds):.0f})"


def _classifier_table(classifiers: dict[str, list[ClassifierSeed]]) -> str:
    rows = []
    for case, seeds in classifiers.items():
        gains = [s.distilled - s.labels_only for s in seeds]
        rows.append(
            [
                case,
                f"{seeds[0].teacher:.3f} ({seeds[0].errors['teacher']})",
                _accuracy_with_errors(seeds, "labels_only", "labels only"),
                _accuracy_with_errors(seeds, "distilled", "distilled"),
                f"{statistics.fmean(gains):+.3f} (min {min(gains):+.3f})",
                f"{seeds[0].student_parameters:,} / {seeds[0].teacher_parameters:,}",
            ]
        )
    header = [
        "case",
        "teacher (errors)",
        "student on labels (errors)",
        "student distilled (errors)",
        "gain, mean (worst seed)",
        "parameters student / teacher",
    ]
    return markdown_table(header, rows)


def _agent_table(agents: list[AgentSeed], config: DistillBenchConfig) -> str:
    kept = [s.student_return / s.teacher_return for s in agents if s.teacher_return > 0]
    rows = [
        [
            "teacher [64, 64]",
            _mean_std([s.teacher_return for s in agents], "{:.1f}"),
            _mean_std([s.teacher_clean for s in agents], "{:.2f}"),
            f"{agents[0].teacher_parameters:,}",
            "",
        ],
        [
            f"student [{config.agent_student_width}]",
            _mean_std([s.student_return for s in agents], "{:.1f}"),
            _mean_std([s.student_clean for s in agents], "{:.2f}"),
            f"{agents[0].student_parameters:,} ({agents[0].student_parameters / agents[0].teacher_parameters:.1%})",
            f"{statistics.fmean(kept):.0%} (min {min(kept):.0%})" if kept else "",
        ],
    ]
    header = ["policy (ski, green)", "return", "clean-run rate", "actor parameters", "return kept"]
    return markdown_table(header, rows)
