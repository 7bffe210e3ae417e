"""Pre-training and transfer: reuse an encoder learnt on a source task (supervised) or on unlabelled inputs
(contrastive, SimCLR) for a target task with few labels, and compare with training from scratch.

Examples:
  python scripts/transfer.py labels --dataset mnist1d --pretraining contrastive --mode fine_tune --fraction 0.05
  python scripts/transfer.py labels --dataset digits --pretraining supervised --mode linear_probe --fraction 0.01
  python scripts/transfer.py labels --dataset digits --pretraining none --mode linear_probe   # frozen random encoder
  python scripts/transfer.py labels --dataset mnist1d --seed 3 --out /tmp/transfer

The target task is classes 5-9 of the dataset (relabelled 0-4), the source task classes 0-4. Each command prints
its table and writes it as markdown and CSV under --out (default runs/transfer/reports). Pre-trained encoders are
cached under --cache-dir (default runs/transfer), one per dataset, method and seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from agents.benchmarks.report import markdown_table
from agents.benchmarks.transfer_labels import arm_name
from agents.cli import HelpFormatter, examples_of, positive_float, run_subcommand, subcommand_parser
from agents.tables import write_table
from trends.transfer import DEFAULT_CACHE, MODES, PRETRAININGS, TransferResult, run_transfer
from trends.transfer.finetune import check_arm

DATASETS = ("digits", "mnist1d")
DEFAULT_OUT = Path("runs") / "transfer" / "reports"


def _fraction(text: str) -> float:
    """A share of the target's training labels in (0, 1]: ``--fraction 0.05`` keeps 5%."""
    value = positive_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text!r}")
    return value


def _add_labels(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "labels",
        help="one pre-training and fine-tuning mode at one label fraction, against scratch",
        description="Train the target task on a fraction of its labels from a pre-trained (or random) encoder, "
        "and from scratch with the same seed, and compare their test accuracy.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--dataset", choices=DATASETS, default="mnist1d", help="the dataset cut into the tasks")
    parser.add_argument("--pretraining", choices=[*PRETRAININGS, "none"], default="supervised", help="the encoder")
    parser.add_argument("--mode", choices=MODES, default="fine_tune", help="what learns on the target task")
    parser.add_argument("--fraction", type=_fraction, default=0.05, help="share of the target's training labels")
    parser.add_argument("--seed", type=int, default=0, help="label subsample, initial weights and pre-training")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where pre-trained encoders are cached")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_labels)


def _run_labels(args: argparse.Namespace) -> None:
    check_arm(args.pretraining, args.mode)  # before any progress line, so a mistake stays one line
    arms = [(args.pretraining, args.mode)]
    if arms[0] != ("none", "scratch"):
        arms.append(("none", "scratch"))
    results = []
    for pretraining, mode in arms:
        print(f"{arm_name(pretraining, mode)}...", file=sys.stderr, flush=True)
        run = run_transfer(args.dataset, pretraining, mode, args.fraction, args.seed, cache_dir=args.cache_dir)
        results.append(run)
    header = ["name", "labels", "test_accuracy", "val_accuracy", "epochs", "seconds", "trainable_parameters"]
    rows = [_row(r) for r in results]
    markdown = _markdown(header, rows)
    print(markdown)
    stem = f"labels-{args.dataset}-{args.pretraining}-{args.mode}-{args.fraction:g}-seed{args.seed}"
    title = f"Transfer to {args.dataset} classes 5-9 with {args.fraction:.0%} of the labels (seed {args.seed})"
    md, table = write_table(args.out, stem, title, markdown, header, rows)
    print(f"wrote {md} and {table}", file=sys.stderr)


def _row(result: TransferResult) -> list:
    return [
        arm_name(result.pretraining, result.mode),
        result.n_labels,
        round(result.test_accuracy, 4),
        round(result.val_accuracy, 4),
        result.epochs,
        round(result.seconds, 2),
        result.trainable_parameters,
    ]


def _markdown(header: list[str], rows: list[list]) -> str:
    return markdown_table(header, [[str(cell) for cell in row] for row in rows])


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("transfer.py", __doc__, (_add_labels,))


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    return run_subcommand(build_parser(), argv, runtime_errors=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
