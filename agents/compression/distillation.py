"""Knowledge distillation as ``scripts/compress.py distill`` runs it: a classifier of the compression zoo taught
to a smaller student (Hinton et al. 2015), or a trained agent's policy taught to a smaller policy network (Rusu
et al. 2016), each compared with its teacher in one :class:`~agents.compression.report.Report`.

A distilled student means something only next to the same student trained without its teacher, so the
classifier command trains both, from the same initial weights (the same seed), on the same transfer set: the
difference between the two rows is what the teacher's soft targets bought.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from agents.compression.report import Report, Row, measured_row
from agents.distill import DistilledPolicy, PolicyDistillConfig, distill_policy
from agents.evaluation import EvaluationResult, evaluate
from agents.runs import MODEL_FILE, RUNS_ROOT, LoadedAgent, load_agent, staged_run_dir, write_config
from agents.seeds import test_seeds
from trends.compression.distill import DistillConfig, DistillResult, distill
from trends.compression.measure import policy_module
from trends.compression.zoo import DEFAULT_CACHE, TrainedModel, load_trained
from trends.models import LayerSpec, NetworkSpec

TEACHERS = {"mnist1d": "mnist1d-cnn", "digits": "digits-mlp"}  # dataset -> the zoo model that teaches on it
STUDENT_KINDS = ("narrow", "mlp")
DISTILLED_ROOT = RUNS_ROOT / "compression" / "distilled"
# Students trained to convergence: at DistillConfig's default lr 1e-3 the small students were still improving when
# their epochs ran out, and an under-trained student says nothing about what the soft targets carry.
CLASSIFIER_DISTILL = DistillConfig(
    temperature=4.0, alpha=0.9, learning_rate=1e-2, batch_size=32, epochs=100, patience=10
)


def student_spec(teacher: NetworkSpec, width: int, kind: str = "narrow") -> NetworkSpec:
    """The student network: ``narrow`` keeps the teacher's layers (kinds, kernels, residuals) with every one
    ``width`` wide, so only the size changes; ``mlp`` is two dense layers of ``width``, Hinton's MNIST student."""
    if width < 1:
        raise ValueError(f"the student width must be at least 1, got {width}")
    if kind == "narrow":
        return NetworkSpec(tuple(dataclasses.replace(layer, width=width) for layer in teacher.layers))
    if kind == "mlp":
        return NetworkSpec((LayerSpec("dense", width), LayerSpec("dense", width)))
    raise ValueError(f"unknown student kind {kind!r}; choose one of {', '.join(STUDENT_KINDS)}")


@dataclass
class ClassifierDistillation:
    """The teacher, the student taught by it and the same student trained on the labels alone."""

    report: Report
    teacher: TrainedModel
    distilled: DistillResult
    labels_only: DistillResult

    @property
    def test_errors(self) -> dict[str, int]:
        """Misclassified test samples, the figure Hinton et al. report (146 alone, 74 distilled on MNIST)."""
        n = len(self.teacher.dataset.y_test)
        return {
            "teacher": round((1 - self.teacher.test_accuracy) * n),
            "labels only": round((1 - self.labels_only.test_accuracy) * n),
            "distilled": round((1 - self.distilled.test_accuracy) * n),
        }


def distill_classifier(
    dataset: str = "mnist1d",
    student_width: int = 16,
    student_kind: str = "narrow",
    transfer_size: int | None = None,
    config: DistillConfig | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    repeats: int = 30,
) -> ClassifierDistillation:
    """Distil the zoo's model of ``dataset`` into a ``student_width`` student, and train that student on labels.

    :param transfer_size: the first n training samples are the student's (its transfer set); the teacher saw
        them all. None: every training sample. Fewer labelled samples is where soft targets help most.
    :param config: temperature, soft/hard mix and training recipe; the label-only student uses the same recipe
        with ``alpha=0``
    """
    config = CLASSIFIER_DISTILL if config is None else config
    if dataset not in TEACHERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(TEACHERS)}")
    teacher = load_trained(TEACHERS[dataset], cache_dir)
    spec = student_spec(teacher.spec, student_width, student_kind)
    data = teacher.dataset
    if transfer_size is not None:
        if not 1 <= transfer_size <= len(data.y_train):
            raise ValueError(f"transfer_size must be in 1..{len(data.y_train)}, got {transfer_size}")
        data = dataclasses.replace(data, x_train=data.x_train[:transfer_size], y_train=data.y_train[:transfer_size])
    distilled = distill(teacher.model, spec, data, config)
    labels_only = distill(teacher.model, spec, data, dataclasses.replace(config, alpha=0.0))
    shape = data.sample_shape
    samples = len(data.y_train)
    report = Report(
        title=f"Distilling {teacher.name} on {dataset} into a {student_kind} student of width {student_width}",
        score_name="test accuracy",
        rows=[
            measured_row(f"teacher {teacher.name}", teacher.model, shape, teacher.test_accuracy, repeats=repeats),
            measured_row(
                "student, labels only",
                labels_only.model,
                shape,
                labels_only.test_accuracy,
                repeats=repeats,
                note=f"{samples} samples",
            ),
            measured_row(
                "student, distilled",
                distilled.model,
                shape,
                distilled.test_accuracy,
                repeats=repeats,
                note=f"T={config.temperature:g}, alpha={config.alpha:g}",
            ),
        ],
    )
    return ClassifierDistillation(report, teacher, distilled, labels_only)


@dataclass
class AgentDistillation:
    """A trained agent, its distilled student (saved as a run) and both evaluated on the same unseen courses."""

    report: Report
    student: DistilledPolicy
    teacher_evaluation: EvaluationResult
    student_evaluation: EvaluationResult
    run_dir: Path | None  # where the student was saved; watch.py and evaluate.py take it


def distill_agent(
    teacher_run: str | Path,
    student_width: int = 16,
    student_depth: int = 1,
    config: PolicyDistillConfig | None = None,
    episodes: int = 50,
    root: Path | None = DISTILLED_ROOT,
    repeats: int = 30,
) -> AgentDistillation:
    """Distil the agent of ``teacher_run`` (a run folder or zip) into a policy of ``student_depth`` hidden
    layers of ``student_width`` by DAgger (:func:`agents.distill.distill_policy`), evaluate both on ``episodes``
    unseen test courses (the same for both) and measure both actors.

    :param root: the student is saved as a run folder under it (``<root>/<algo>/<Env>_<n>``, model, observation
        statistics, ``config.yml`` and the DAgger iterations as TensorBoard scalars under ``compress/``), so
        ``watch.py`` and ``evaluate.py`` take it; None saves nothing
    """
    if student_width < 1 or student_depth < 1:
        raise ValueError(f"the student needs width and depth of at least 1, got {student_width} x {student_depth}")
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    teacher = load_agent(teacher_run)
    env_id, env_kwargs = _env_of(teacher)
    config = dataclasses.replace(config or PolicyDistillConfig(), student_net_arch=(student_width,) * student_depth)
    student = distill_policy(teacher, env_id, env_kwargs, config)
    seeds = test_seeds(episodes)
    teacher_eval = evaluate(teacher, env_id, env_kwargs, seeds, name="teacher")
    student_eval = evaluate(student, env_id, env_kwargs, seeds, name="student")
    shape = teacher.model.observation_space.shape
    rows = [
        _agent_row("teacher", teacher.model, teacher_eval, shape, repeats),
        _agent_row(f"student {list(config.student_net_arch)}", student.student, student_eval, shape, repeats),
    ]
    report = Report(f"Distilling {teacher.path} on {env_id}", "return", rows)
    run_dir = None if root is None else _save_student(student, teacher, config, env_id, env_kwargs, root)
    return AgentDistillation(report, student, teacher_eval, student_eval, run_dir)


def _env_of(agent: LoadedAgent) -> tuple[str, dict[str, Any]]:
    env_id = agent.config.get("env")
    if not env_id:
        raise ValueError(f"{agent.path} has no config.yml naming its env; distil a run folder made by train.py")
    return env_id, dict(agent.config.get("env_kwargs") or {})


def _agent_row(name: str, model: Any, evaluation: EvaluationResult, shape: tuple[int, ...], repeats: int) -> Row:
    """A report row of an agent: its actor's costs and its mean return (clean-run rate in the note, for ski)."""
    clean = evaluation.metric_means().get("clean")
    note = f"clean {clean:.0%}" if clean is not None else ""
    return measured_row(name, policy_module(model), shape, evaluation.mean_return, evaluation.std_return, note, repeats)


def _save_student(
    student: DistilledPolicy,
    teacher: LoadedAgent,
    config: PolicyDistillConfig,
    env_id: str,
    env_kwargs: dict[str, Any],
    root: Path,
) -> Path:
    """Save the student as a run folder: its zip, statistics, a config.yml and the DAgger iterations in TB.

    The folder appears whole or not at all (:func:`agents.runs.staged_run_dir`): a student zip without the
    statistics it acts on would load and ski, badly, and be scored as if that were the student. Its config
    records the teacher's ``normalize``, since the student learnt on the teacher's normalised observations.
    """
    algo = teacher.config.get("algo") or type(student.student).__name__.lower()
    with staged_run_dir(algo, env_id, root) as staged:
        record = {"algo": algo, "env": env_id, "env_kwargs": env_kwargs}
        if student.vecnormalize is not None:
            record["normalize"] = teacher.config.get("normalize", True)
        record.update(distilled_from=str(teacher.path), distillation=dataclasses.asdict(config))
        write_config(staged.folder, record)
        student.save(staged.folder / MODEL_FILE)
        with SummaryWriter(log_dir=str(staged.folder)) as writer:
            for stats in student.history:
                writer.add_scalar("compress/distill_loss", stats.loss, stats.iteration)
                writer.add_scalar("compress/dataset_states", stats.states, stats.iteration)
                writer.add_scalar("compress/teacher_share", stats.beta, stats.iteration)
                if stats.episode_returns:
                    mixture_return = statistics.fmean(stats.episode_returns)
                    writer.add_scalar("compress/mixture_return", mixture_return, stats.iteration)
    return staged.run_dir


__all__ = [
    "STUDENT_KINDS",
    "TEACHERS",
    "AgentDistillation",
    "ClassifierDistillation",
    "distill_agent",
    "distill_classifier",
    "student_spec",
]
