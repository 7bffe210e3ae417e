"""Pre-training and transfer: reuse an encoder learnt on a source task (supervised) or on unlabelled inputs
(contrastive, SimCLR) for a target task with few labels, and compare with training from scratch.

Examples:
  python scripts/transfer.py labels --dataset mnist1d --pretraining contrastive --mode fine_tune --fraction 0.05
  python scripts/transfer.py labels --dataset digits --pretraining supervised --mode linear_probe --fraction 0.01
  python scripts/transfer.py labels --dataset digits --pretraining none --mode linear_probe   # frozen random encoder
  python scripts/transfer.py labels --dataset mnist1d --seed 3 --out /tmp/transfer
  python scripts/transfer.py curriculum --teacher runs/ppo/Ski-v0_1 --slope blue --budget 6e5   # green -> blue
  python scripts/transfer.py pixels --conditions scratch supervised-frozen --seeds 0 1   # pixel PPO, two starts

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
from agents.cli import (
    HelpFormatter,
    examples_of,
    non_negative_int,
    output_dir,
    positive_int,
    run_subcommand,
    share,
    subcommand_parser,
)
from agents.processes import print_progress
from agents.runs import RunError
from agents.tables import write_table
from trends.transfer import DEFAULT_CACHE, MODES, PRETRAININGS, TransferResult, run_transfer
from trends.transfer.finetune import check_arm

DATASETS = ("digits", "mnist1d")
DEFAULT_OUT = Path("runs") / "transfer" / "reports"


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
    parser.add_argument("--fraction", type=share, default=0.05, help="share of the target's training labels")
    parser.add_argument("--seed", type=int, default=0, help="label subsample, initial weights and pre-training")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where pre-trained encoders are cached")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
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


def _add_curriculum(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.transfer_curriculum import CONDITIONS, CurriculumConfig

    defaults = CurriculumConfig()
    parser = subparsers.add_parser(
        "curriculum",
        help="a trained skier starts on a harder slope, against a skier that starts there from scratch",
        description="Train PPO on --slope from the --teacher run's policy (all of it, or its hidden layers) and from "
        "scratch, with the same recipe, budget and seed; report the steps to the target clean-run rate on held-out "
        "courses and the learning curves.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--teacher", type=Path, required=True, help="the trained run to start from")
    parser.add_argument("--slope", choices=["blue", "black"], default="blue", help="the harder slope")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="starts")
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="steps per run at most")
    parser.add_argument("--target", type=share, default=defaults.target, help="clean-run rate that counts")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_curriculum)


def _run_curriculum(args: argparse.Namespace) -> None:
    from agents.benchmarks.transfer_curriculum import CurriculumConfig, run_curriculum
    from agents.runs import load_agent

    load_agent(args.teacher, device="cpu")  # a missing or corrupt run is one line, before any training
    config = CurriculumConfig(
        seeds=tuple(dict.fromkeys(args.seeds)), conditions=tuple(dict.fromkeys(args.conditions)), slope=args.slope,
        target=args.target, budget=args.budget, teacher=args.teacher,
    )  # fmt: skip
    result = run_curriculum(config, progress=print_progress)
    markdown = result.to_markdown()
    print(markdown)
    header = ["condition", "seed", "reached", "steps_to_target", "best_validation_clean_rate"]
    rows = [
        [condition, run["seed"], run["reached"], run["steps_to_target"], run["best"]["score"] if run["best"] else ""]
        for condition, runs in result.runs.items()
        for run in runs
    ]
    md, table = write_table(args.out, f"curriculum-{args.slope}", "Curriculum transfer", markdown, header, rows)
    print(f"wrote {md} and {table}", file=sys.stderr)


def _add_pixels(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.pixel_transfer import CONDITIONS, PixelTransferConfig

    defaults = PixelTransferConfig()
    parser = subparsers.add_parser(
        "pixels",
        help="PPO on ski pixels from a pre-trained CNN encoder (frozen or fine-tuned), against a CNN from scratch",
        description="Pre-train the Nature CNN on ski frames (supervised: regress the state; contrastive: SimCLR), "
        "then train PPO on trendgym/SkiPixels-v0 from it and from scratch with the same recipe and budget; report "
        "the decisions and training time to the target validation return, and the learning curves.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="starts")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="PPO decisions per run")
    parser.add_argument(
        "--target", type=float, default=defaults.target, help="mean validation return that counts as skiing down"
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="processes running jobs side by side")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_pixels)


def _run_pixels(args: argparse.Namespace) -> None:
    from agents.benchmarks.pixel_transfer import PixelTransferConfig, first_reaching, run_pixel_transfer

    config = PixelTransferConfig(
        seeds=tuple(dict.fromkeys(args.seeds)), conditions=tuple(dict.fromkeys(args.conditions)), budget=args.budget,
        target=args.target, workers=args.workers,
    )  # fmt: skip
    result = run_pixel_transfer(config, progress=print_progress)
    markdown = result.to_markdown()
    print(markdown)
    header = ["condition", "seed", "decisions_to_target", "last_validation_return", "test_return", "test_clean_rate"]
    rows = []
    for condition, runs in result.runs.items():
        for run in runs:
            reached, test = first_reaching(run, config.target), run["final_model_on_test"]
            rows.append(
                [condition, run["seed"], reached["steps"] if reached else "", run["curve"][-1]["mean_return"],
                 test["mean_return"], test["clean_rate"]]
            )  # fmt: skip
    md, table = write_table(args.out, "pixels", "Pixel PPO from pre-trained encoders", markdown, header, rows)
    print(f"wrote {md} and {table}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("transfer.py", __doc__, (_add_labels, _add_curriculum, _add_pixels))


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    return run_subcommand(build_parser(), argv, runtime_errors=(RunError, OSError))


if __name__ == "__main__":
    sys.exit(main())
