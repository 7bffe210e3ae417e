"""The table every compression command ends with: each compressed model against the uncompressed original, in
the four costs :func:`trends.compression.measure.measure` takes (parameters, FLOPs, bytes, latency at batch 1
and 256) and the score that matters (test accuracy for a classifier, mean return for an agent).

One format for pruning, quantization and distillation, so their results can be read side by side; printed, and
written as markdown (for a README) and CSV (for analysis) without a half-written file ever being seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from torch import nn

from agents.tables import write_table
from trends.compression.measure import ModelMeasure, measure

LATENCY_BATCHES = (1, 256)


@dataclass(frozen=True)
class Row:
    """One model of a comparison: what it scores and what it costs."""

    name: str
    score: float  # test accuracy (a classifier) or mean return (an agent)
    parameters: int
    flops: int  # multiply-accumulates per sample
    size_bytes: int  # saved state dict (or, for simulated k-bit weights, the packed size they stand for)
    latency_b1_ms: float  # median of one forward call at batch 1, one torch thread
    latency_b256_ms: float  # the same at batch 256
    score_std: float | None = None  # spread of the score over episodes or seeds, when there is one
    note: str = ""  # what the row is, where the name cannot say it (e.g. "simulated: weights stay float32")


def measured_row(
    name: str,
    model: nn.Module,
    sample_shape: tuple[int, ...],
    score: float,
    score_std: float | None = None,
    note: str = "",
    repeats: int = 30,
    size_bytes: int | None = None,
) -> Row:
    """A row for ``model``, its costs measured now (``size_bytes`` overrides the saved size, for fake-quantized
    weights whose float32 tensors stand for fewer bits)."""
    costs: ModelMeasure = measure(model, sample_shape, repeats=repeats, batch_sizes=LATENCY_BATCHES)
    return Row(
        name=name,
        score=float(score),
        parameters=costs.nonzero_parameters,
        flops=costs.flops,
        size_bytes=costs.size_bytes if size_bytes is None else int(size_bytes),
        latency_b1_ms=costs.latency_at(1).median_ms,
        latency_b256_ms=costs.latency_at(256).median_ms,
        score_std=score_std,
        note=note,
    )


@dataclass
class Report:
    """Rows to compare; the first is the original every ratio is taken against."""

    title: str
    score_name: str  # "test accuracy" or "return"
    rows: list[Row] = field(default_factory=list)

    def markdown(self) -> str:
        """A GitHub table: each cost with its ratio to the original's (``0.27x``)."""
        if not self.rows:
            raise ValueError("a report needs at least the original's row")
        base = self.rows[0]
        header = ["model", self.score_name, "parameters", "FLOPs", "bytes", "latency b1 (ms)", "latency b256 (ms)"]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        for row in self.rows:
            cells = [
                row.name + (f" ({row.note})" if row.note else ""),
                _score(row, self.score_name),
                _with_ratio(row.parameters, base.parameters, "{:,}"),
                _with_ratio(row.flops, base.flops, "{:,}"),
                _with_ratio(row.size_bytes, base.size_bytes, "{:,}"),
                _with_ratio(row.latency_b1_ms, base.latency_b1_ms, "{:.3f}"),
                _with_ratio(row.latency_b256_ms, base.latency_b256_ms, "{:.3f}"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
        """``<stem>.md`` (titled) and ``<stem>.csv`` (every field of :class:`Row`, raw numbers) in ``out_dir``,
        each replaced atomically."""
        header = [f.name for f in fields(Row)]
        rows = [[getattr(row, name) for name in header] for row in self.rows]
        return write_table(out_dir, stem, self.title, self.markdown(), header, rows)


def _with_ratio(value: float, base: float, fmt: str) -> str:
    text = fmt.format(value)
    if base and math.isfinite(base):
        text += f" ({value / base:.2f}x)"
    return text


def _score(row: Row, score_name: str) -> str:
    text = f"{row.score:.3f}" if "accuracy" in score_name else f"{row.score:.1f}"
    if row.score_std is not None:
        text += f" ± {row.score_std:.3f}" if "accuracy" in score_name else f" ± {row.score_std:.1f}"
    return text
