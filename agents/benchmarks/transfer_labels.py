"""The label-fraction table of the transfer trend: test accuracy on the target task (classes 5-9) at 1%, 5%, 10%
and 100% of its training labels, for a network trained from scratch, a frozen random encoder plus a head, and
encoders pre-trained supervised (classes 0-4) or self-supervised (SimCLR on all training inputs), each as a
linear probe and fine-tuned, over seeds.

A seed fixes the label subsample, the classifier's initial weights (so every arm of a seed starts its head, and
scratch its whole network, from the same numbers) and the pre-training of both encoders, which are cached under
``runs/transfer/`` and so trained once per dataset, method and seed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.benchmarks.report import format_machine, machine_info, markdown_table, publish
from trends.transfer import DEFAULT_CACHE, LABEL_FRACTIONS, TransferConfig, TransferResult, run_transfer
from trends.transfer.contrastive import AUGMENTATIONS, Augmentation
from trends.transfer.encoders import ENCODER_SPECS

BENCH_NAME = "transfer_labels"
Progress = Callable[[str], None]

ARMS: tuple[tuple[str, str], ...] = (  # (pretraining, mode), one table row each
    ("none", "scratch"),
    ("none", "linear_probe"),
    ("supervised", "linear_probe"),
    ("supervised", "fine_tune"),
    ("contrastive", "linear_probe"),
    ("contrastive", "fine_tune"),
)
ARM_NAMES = {
    ("none", "scratch"): "scratch",
    ("none", "linear_probe"): "random encoder (frozen) + head",
    ("supervised", "linear_probe"): "supervised + linear probe",
    ("supervised", "fine_tune"): "supervised + fine-tune",
    ("contrastive", "linear_probe"): "contrastive + linear probe",
    ("contrastive", "fine_tune"): "contrastive + fine-tune",
}


def arm_name(pretraining: str, mode: str) -> str:
    return ARM_NAMES.get((pretraining, mode), f"{pretraining} + {mode}")


@dataclass(frozen=True)
class TransferBenchConfig:
    datasets: tuple[str, ...] = ("digits", "mnist1d")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    fractions: tuple[float, ...] = LABEL_FRACTIONS
    arms: tuple[tuple[str, str], ...] = ARMS
    transfer: TransferConfig = field(default_factory=TransferConfig)
    cache_dir: Path | None = DEFAULT_CACHE


@dataclass
class TransferBenchResult:
    config: TransferBenchConfig
    runs: list[TransferResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=machine_info)

    def cell(self, dataset: str, arm: tuple[str, str], fraction: float) -> list[TransferResult]:
        return [
            r
            for r in self.runs
            if r.dataset == dataset and (r.pretraining, r.mode) == arm and r.label_fraction == fraction
        ]

    def to_markdown(self) -> str:
        parts = [self._table(dataset) for dataset in self.config.datasets]
        parts += [
            _HOW_TO_READ,
            _setup(self.config),
            self._pretraining_line(),
            f"Seeds {list(self.config.seeds)}. {format_machine(self.machine)}",
        ]
        return "\n\n".join(part for part in parts if part)

    def _table(self, dataset: str) -> str:
        header, fractions = [f"{dataset} (target: classes 5-9)"], self.config.fractions
        for fraction in fractions:
            labels = {r.n_labels for r in self.runs if r.dataset == dataset and r.label_fraction == fraction}
            header.append(f"{fraction:.0%} ({'/'.join(str(n) for n in sorted(labels))} labels)")
        rows = [
            [arm_name(*arm), *(_mean_std([r.test_accuracy for r in self.cell(dataset, arm, f)]) for f in fractions)]
            for arm in self.config.arms
        ]
        return markdown_table(header, rows)

    def _pretraining_line(self) -> str:
        """What the encoders reached on their own tasks, mean over seeds (one value per encoder)."""
        facts = []
        for dataset in self.config.datasets:
            for pretraining, what in (("supervised", "source validation accuracy"), ("contrastive", "val NT-Xent")):
                values = {
                    (r.seed, r.pretrain_metric)
                    for r in self.runs
                    if (r.dataset, r.pretraining) == (dataset, pretraining)
                }
                if values:
                    facts.append(f"{dataset} {pretraining}: {what} {_mean_std([v for _, v in values])}")
        return f"Encoders, mean over seeds: {'; '.join(facts)}." if facts else ""

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["cache_dir"] = None if self.config.cache_dir is None else str(self.config.cache_dir)
        return {"config": config, "runs": [asdict(r) for r in self.runs], "machine": self.machine}


def run_transfer_bench(
    config: TransferBenchConfig | None = None, progress: Progress | None = None
) -> TransferBenchResult:
    """Every arm at every label fraction, for every dataset and seed (seed-major, so each seed's two encoders are
    pre-trained once and then served from the cache)."""
    config = config or TransferBenchConfig()
    say = progress or (lambda message: None)
    result = TransferBenchResult(config)
    for dataset in config.datasets:
        for seed in config.seeds:
            for fraction in config.fractions:
                for pretraining, mode in config.arms:
                    run = run_transfer(dataset, pretraining, mode, fraction, seed, config.transfer, config.cache_dir)
                    result.runs.append(run)
                    say(
                        f"{dataset} seed {seed} {fraction:.0%} {arm_name(pretraining, mode)}: "
                        f"test {run.test_accuracy:.3f} ({run.epochs} epochs, {run.seconds:.1f}s)"
                    )
    return result


def write_transfer_bench_report(
    result: TransferBenchResult, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    title = "Pre-training and transfer: accuracy against the share of target labels"
    return publish(BENCH_NAME, title, result.to_markdown(), result.to_dict(), out_dir, readme)


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {spread:.3f}"


def _setup(config: TransferBenchConfig) -> str:
    specs = "; ".join(f"{name}: {spec.describe()}" for name, spec in ENCODER_SPECS.items() if name in config.datasets)
    augmentations = "; ".join(f"{name}: {_describe(a)}" for name, a in AUGMENTATIONS.items() if name in config.datasets)
    t = config.transfer
    return (
        f"Networks ({specs}) are the encoder, plus a linear head of 5 classes. Target training: Adam "
        f"{t.learning_rate:g} (the encoder at {t.encoder_lr_scale:g}x when fine-tuned), batch {t.batch_size}, up to "
        f"{t.max_epochs} epochs ({t.probe_max_epochs} for a probe, which trains on features computed once), "
        f"patience {t.patience}, early stopping on the target's whole validation split. "
        f"SimCLR: temperature {t.pretrain.temperature:g}, batch {t.pretrain.contrastive.batch_size}, "
        f"augmentations {augmentations}."
    )


def _describe(augmentation: Augmentation) -> str:
    a = augmentation
    parts = [f"crop of ≥ {a.crop:g} resized"] if a.crop < 1.0 else []
    parts += [f"shift ≤ {a.max_shift}", f"scale ±{a.scale:g}"]
    parts += [f"shear ±{a.shear:g}"] if a.shear else []
    return ", ".join([*parts, f"noise σ {a.noise:g}"])


_HOW_TO_READ = (
    "How to read it: test accuracy on classes 5-9 of each dataset (relabelled 0-4), mean ± standard deviation over "
    "the seeds; a column is the share of the target's training labels kept (stratified, at least one per class; "
    "the count in brackets). Supervised pre-training saw the labels of classes 0-4 only; contrastive pre-training "
    "saw every training input of all ten classes without labels. A linear probe trains only the new head on the "
    "frozen encoder, so it scores the features as they are; the frozen random encoder is the floor a learnt "
    "encoder must clear. Pre-training pays where its row beats scratch, which matters most in the few-label columns; "
    "where a pre-trained row falls below scratch, the encoder carried features the target task could not use "
    "(negative transfer)."
)
