"""Search a space of networks with any AutoML method, compare the methods, or build a tabular benchmark.

Examples:
  python scripts/search.py --space mnist1d-arch --method tpe --budget 100 --seed 0    # on the table: seconds
  python scripts/search.py --space mnist1d-arch --method evolution --budget 50 --backend train   # real training
  python scripts/search.py --space digits-hparams --method random --budget 30 --backend train
  python scripts/search.py --method rl --budget 200 --storage sqlite:///runs/automl/searches.db
  python scripts/search.py --method evolution --budget 100 --method-args population_size:20 sample_size:3
  python scripts/search.py compare --seeds 10 --budget 200                          # every method, README table
  python scripts/search.py compare --methods random evolution --seeds 3 --budget 50 --no-readme --out /tmp/cmp
  python scripts/search.py build-table --space mnist1d-arch --workers 2              # about 20 minutes on 2 free cores

Methods: random (Optuna's, per decision), uniform (random over configurations), tpe, gp, cmaes, ga (NSGA-II),
evolution (regularized evolution), rl (MaskablePPO on the search env), reinforce (Zoph & Le's controller), darts
(one-shot gradient search). The budget counts
evaluated configurations (a repeat costs a unit, never a training). Every trial is recorded in an Optuna study
(default: the SQLite file runs/automl/cache.db), so `optuna-dashboard sqlite:///runs/automl/cache.db` shows it,
and running the same command again resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import HelpFormatter, OneLineParser, positive_int, run_guarded
from agents.hyperparams import parse_key_values
from agents.search import METHODS, run_search
from agents.search_compare import CompareConfig, run_compare, write_compare_report
from trends.automl.backends import BACKENDS
from trends.automl.space import SPACES, get_space
from trends.automl.table import build_table
from trends.training import TORCH_THREADS

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("compare", "build-table")


def _examples() -> str:
    return "examples:" + __doc__.split("Examples:")[1]


def build_search_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="search.py",
        description=__doc__.split("\n\n")[0] + " Subcommands: compare, build-table (see `search.py compare -h`).",
        epilog=_examples(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--space", choices=list(SPACES), default="mnist1d-arch", help="the search space")
    parser.add_argument("--method", choices=METHODS, default="random", help="the search method")
    parser.add_argument("--budget", type=positive_int, default=100, help="configurations to evaluate")
    parser.add_argument("--seed", type=int, default=0, help="the method's seed")
    parser.add_argument("--backend", choices=BACKENDS, default="table", help="table lookups or real training")
    parser.add_argument("--storage", help="SQLAlchemy URL of the Optuna storage (default: runs/automl/cache.db)")
    parser.add_argument("--study-name", help="the study to record into (default: search:SPACE:METHOD:BACKEND:seedN)")
    parser.add_argument("--device", default="cpu", help="where real training runs (cpu, cuda, auto)")
    parser.add_argument(
        "--method-args",
        nargs="+",
        metavar="KEY:VALUE",
        help="the method's own settings: population_size:20 (evolution), learning_rate:0.01 (reinforce), "
        "epochs:30 (darts), n_steps:128 (rl), n_startup_trials:20 (tpe)",
    )
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    defaults = CompareConfig()
    parser = OneLineParser(
        prog="search.py compare",
        description="Run every method on the same table, budget and seeds; write the anytime curves (PNG, CSV, "
        "TensorBoard) and the markdown table the README includes.",
        epilog=_examples(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--space", choices=list(SPACES), default=defaults.space, help="the search space")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(defaults.methods), help="methods")
    parser.add_argument("--seeds", type=positive_int, default=defaults.seeds, help="seeds 0..N-1 per method")
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="configurations per search")
    parser.add_argument(
        "--budgets", type=positive_int, nargs="+", default=list(defaults.budgets), help="budgets in the table"
    )
    parser.add_argument("--workers", type=positive_int, default=defaults.workers, help="processes")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "bench", help="report directory")
    parser.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", help="README to update")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument(
        "--tensorboard", type=Path, default=Path("runs") / "automl" / "compare", help="TensorBoard log directory"
    )
    return parser


def build_table_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="search.py build-table",
        description="Train every configuration of a space with its fixed recipe and seed (skipping those the "
        "storage holds) and write trends/automl/tables/<space>.csv and .json. Interrupt it at any time: the "
        "next run trains only what is missing.",
        epilog=_examples(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--space", choices=list(SPACES), default="mnist1d-arch", help="the search space")
    parser.add_argument("--workers", type=positive_int, default=2, help="training processes (one thread each)")
    parser.add_argument("--storage", help="SQLAlchemy URL of the evaluator cache (default: runs/automl/cache.db)")
    parser.add_argument("--out", type=Path, help="directory of the table files (default: trends/automl/tables)")
    return parser


def run_one_search(args: argparse.Namespace) -> None:
    if args.budget > get_space(args.space).size:
        raise ValueError(
            f"--budget {args.budget} exceeds the {get_space(args.space).size} configurations of {args.space}"
        )
    outcome = run_search(
        args.space,
        args.method,
        args.budget,
        seed=args.seed,
        backend=args.backend,
        storage=args.storage,
        study_name=args.study_name,
        device=args.device,
        settings=parse_key_values(args.method_args, "method setting"),
    )
    best = outcome.best
    print(f"{args.method} on {args.space} ({args.backend}), seed {args.seed}: {outcome.stopped}")
    distinct = sum(not record.repeat for record in outcome.records)
    print(
        f"  configurations evaluated: {len(outcome.records)}, {distinct} distinct "
        f"(equivalent trainings {outcome.equivalent_trainings:.1f})"
    )
    if best is not None:
        print(f"  best validation accuracy: {best.val_accuracy:.4f}   its test accuracy: {best.test_accuracy:.4f}")
        print(f"  best configuration: {best.config}")
        print(f"  parameters {best.parameters:,}, FLOPs {best.flops:,}")
    print(f"  study {outcome.study_name!r} in {args.storage or 'sqlite:///runs/automl/cache.db'}")


def run_compare_command(args: argparse.Namespace) -> None:
    config = CompareConfig(
        space=args.space,
        methods=tuple(dict.fromkeys(args.methods)),
        seeds=args.seeds,
        budget=args.budget,
        budgets=tuple(sorted(b for b in set(args.budgets) if b <= args.budget)) or (args.budget,),
        workers=args.workers,
    )
    curves = run_compare(config, log=lambda line: print(line, file=sys.stderr))
    written = write_compare_report(
        curves, config, args.out, readme=None if args.no_readme else args.readme, tensorboard_dir=args.tensorboard
    )
    print((args.out / "automl_search.md").read_text(encoding="utf-8"))
    print(f"wrote {written['csv']}, {written['png']}, {written['markdown']}", file=sys.stderr)
    print(f"TensorBoard: tensorboard --logdir {args.tensorboard}", file=sys.stderr)


def run_build_table(args: argparse.Namespace) -> None:
    space = get_space(args.space)
    command = f"python scripts/search.py build-table --space {space.name} --workers {args.workers}"

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} configurations trained", end="", file=sys.stderr, flush=True)

    table = build_table(space, storage=args.storage, workers=args.workers, command=command, progress=progress)
    print(file=sys.stderr)
    paths = table.save(args.out) if args.out else table.save()
    config, best = table.best()
    print(f"{len(table)} configurations; best validation accuracy {best.val_accuracy:.4f} ({config})")
    print(f"wrote {paths[0]} and {paths[1]}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(TORCH_THREADS)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser, run = {
        None: (build_search_parser, run_one_search),
        "compare": (build_compare_parser, run_compare_command),
        "build-table": (build_table_parser, run_build_table),
    }[command]
    parser = parser()
    args = parser.parse_args(argv[1:] if command else argv)
    return run_guarded(parser, run, args, runtime_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
