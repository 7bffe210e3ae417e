"""Search a space of networks with any AutoML method, compare the methods, or build a tabular benchmark; or
engineer a tabular dataset's features (the features-<dataset> spaces).

Examples:
  python scripts/search.py --space mnist1d-arch --method tpe --budget 100 --seed 0    # on the table: seconds
  python scripts/search.py --space mnist1d-arch --method evolution --budget 50 --backend train   # real training
  python scripts/search.py --space digits-hparams --method random --budget 30 --backend train
  python scripts/search.py --method rl --budget 200 --storage sqlite:///runs/automl/searches.db
  python scripts/search.py --method evolution --budget 100 --method-args population_size:20 sample_size:3
  python scripts/search.py compare --seeds 10 --budget 200                          # every method, README table
  python scripts/search.py compare --methods random evolution --seeds 3 --budget 50 --no-readme --out /tmp/cmp
  python scripts/search.py build-table --space mnist1d-arch --workers 2              # about 20 minutes on 2 free cores
  python scripts/search.py worker --study arch --storage postgresql://user@host/db --method tpe --budget 200
  python scripts/search.py --space features-synthetic --method rl --budget 3000 --storage memory   # about 15 s
  python scripts/search.py --space features-wine --method random --budget 500 --model gbm
  python scripts/search.py --space features-diabetes --method expand-reduce
  python scripts/search.py --space features-synthetic --method rl --budget 3000 --method-args learning_rate:1e-3

Methods: random (Optuna's, per decision), uniform (random over configurations), tpe, gp, cmaes, ga (NSGA-II),
evolution (regularized evolution), rl (MaskablePPO on the search env), reinforce (Zoph & Le's controller),
ppo-controller (the same controller trained by PPO on a replay, without repeats), darts (one-shot gradient
search). The budget counts evaluated configurations (a repeat costs a unit, never a training). Every trial is
recorded in an Optuna study (default: the SQLite file runs/automl/cache.db), so
`optuna-dashboard sqlite:///runs/automl/cache.db` shows it, and running the same command again resumes it.

Workers (`search.py worker`, agents/workers.py): start the same command any number of times, on any machines that
reach the storage; they share one study, evaluate no configuration twice, stop together when it holds --budget
COMPLETE trials, and a killed worker's trial ends FAIL after the grace period (Optuna heartbeats). Methods as
workers: random, tpe, gp, cmaes, ga, uniform, evolution (asynchronous); rl, reinforce, ppo-controller and darts
are refused.

Feature spaces (features-synthetic, features-breast_cancer, features-wine, features-diabetes; Khurana et al.
2018): rl (MaskablePPO on trendgym/FeatureEngineering-v0), random (random allowed actions on the same env),
expand-reduce (every transformation, then the best by mutual information), none (the raw features); --model
linear or gbm scores them. The budget counts env steps (feature sets scored, cached or not). Every score is cached
in the same storage, so the same search again fits no model; recording a new set in SQLite costs 15-100 ms (a
free or a busy machine), several times a linear scoring, so --storage memory is faster for a long search.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import (
    DEVICES,
    HelpFormatter,
    OneLineParser,
    existing_file,
    output_dir,
    positive_int,
    run_guarded,
    shown,
)
from agents.feature_search import FEATURE_METHODS, FEATURE_SPACES, dataset_of_space, run_feature_search
from agents.hyperparams import parse_key_values
from agents.search import METHODS, run_search
from agents.search_compare import CompareConfig, run_compare, write_compare_report
from agents.workers import GRACE_SECONDS, HEARTBEAT_SECONDS, WORKER_METHODS, run_worker
from trends.automl.backends import BACKENDS
from trends.automl.search import SearchRecord
from trends.automl.space import SPACES, get_space
from trends.automl.table import build_table
from trends.features import MODELS, load_tabular
from trends.training import TORCH_THREADS

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("compare", "build-table", "worker")


def _examples() -> str:
    return "examples:" + __doc__.split("Examples:")[1]


def build_search_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="search.py",
        description=__doc__.split("\n\n")[0]
        + " Subcommands: compare, build-table, worker (see `search.py worker -h`).",
        epilog=_examples(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--space", choices=[*SPACES, *FEATURE_SPACES], default="mnist1d-arch", help="the search space")
    parser.add_argument(
        "--method", choices=list(dict.fromkeys(METHODS + FEATURE_METHODS)), default="random", help="the search method"
    )
    parser.add_argument(
        "--budget", type=positive_int, default=100, help="configurations to evaluate (feature spaces: env steps)"
    )
    parser.add_argument("--model", choices=MODELS, help="feature spaces only: the scoring model (default linear)")
    parser.add_argument("--seed", type=int, default=0, help="the method's seed")
    parser.add_argument("--backend", choices=BACKENDS, default="table", help="table lookups or real training")
    parser.add_argument("--storage", help="SQLAlchemy URL of the Optuna storage (default: runs/automl/cache.db)")
    parser.add_argument("--study-name", help="the study to record into (default: search:SPACE:METHOD:BACKEND:seedN)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="where real training runs")
    parser.add_argument(
        "--method-args",
        nargs="+",
        metavar="KEY:VALUE",
        help="the method's own settings: population_size:20 (evolution), learning_rate:0.01 (reinforce, "
        "ppo-controller), epochs:30 (darts), n_steps:128 (rl), n_startup_trials:20 (tpe)",
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
    parser.add_argument("--out", type=output_dir, default=REPO_ROOT / "docs" / "bench", help="report directory")
    parser.add_argument("--readme", type=existing_file, default=REPO_ROOT / "README.md", help="README to update")
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
    parser.add_argument("--out", type=output_dir, help="directory of the table files (default: trends/automl/tables)")
    return parser


def check_space_and_method(args: argparse.Namespace) -> None:
    """A method of the other family, or --model on a network space: ValueError, one line (a usage error)."""
    features = args.space in FEATURE_SPACES
    if features and args.method not in FEATURE_METHODS:
        raise ValueError(
            f"--method {args.method} searches networks; on {args.space} choose one of {', '.join(FEATURE_METHODS)}"
        )
    if not features and args.method not in METHODS:
        raise ValueError(
            f"--method {args.method} engineers features; use it on a features-<dataset> space "
            f"({', '.join(FEATURE_SPACES)})"
        )
    if not features and args.model is not None:
        raise ValueError(f"--model scores features; use it on a features-<dataset> space, not {args.space}")


def run_one_feature_search(args: argparse.Namespace) -> None:
    outcome = run_feature_search(
        dataset_of_space(args.space),
        args.method,
        args.budget,
        seed=args.seed,
        model=args.model or "linear",
        storage=args.storage,
        settings=parse_key_values(args.method_args, "method setting"),
    )
    metric = "accuracy" if load_tabular(outcome.dataset).task == "classification" else "R2"
    print(f"{args.method} on {args.space} ({outcome.model} model), seed {args.seed}")
    print(
        f"  evaluations: {outcome.evaluations} (scorings computed rather than served from the cache: "
        f"{outcome.computed}), {outcome.seconds:.1f} s"
    )
    print(f"  best feature set ({len(outcome.expressions)}): {', '.join(outcome.expressions)}")
    print(
        f"  cross-validated {metric}: {outcome.score:.4f} (raw features {outcome.raw_score:.4f}, {outcome.gain:+.4f})"
    )
    raw_test = outcome.raw_test_score
    print(f"  test {metric}: {outcome.test_score:.4f} (raw features {raw_test:.4f}, {outcome.test_gain:+.4f})")
    for name, found in outcome.found.items():
        print(f"  known feature {name}: {'found' if found else 'not found'}")
    storage = args.storage or "sqlite:///runs/automl/cache.db"
    print(f"  scores cached in {storage if storage != 'memory' else 'memory (gone now)'}")


def build_worker_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="search.py worker",
        description="Work on a study shared with other worker processes (on this machine or others) until it "
        "holds --budget COMPLETE trials: no configuration is evaluated twice, and a killed worker's trial ends "
        "FAIL once its heartbeat is older than the grace period. Start as many as you like with the same command.",
        epilog=_examples(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--study", help="the shared study (default: workers:SPACE:METHOD:BACKEND)")
    parser.add_argument("--storage", help="SQLAlchemy URL every worker reaches (default: runs/automl/cache.db)")
    parser.add_argument("--space", choices=list(SPACES), default="mnist1d-arch", help="the search space")
    parser.add_argument("--method", choices=METHODS, default="tpe", help=f"one of {', '.join(WORKER_METHODS)}")
    parser.add_argument("--budget", type=positive_int, default=100, help="COMPLETE trials of the study, all workers'")
    parser.add_argument("--seed", type=int, help="this worker's seed (default: drawn, so workers differ)")
    parser.add_argument("--backend", choices=BACKENDS, default="table", help="table lookups or real training")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="where real training runs")
    parser.add_argument("--method-args", nargs="+", metavar="KEY:VALUE", help="the method's own settings")
    parser.add_argument("--heartbeat", type=positive_int, default=HEARTBEAT_SECONDS, help="heartbeat interval, s")
    parser.add_argument("--grace", type=positive_int, default=GRACE_SECONDS, help="a trial silent this long fails, s")
    parser.add_argument("--quiet", action="store_true", help="no line per trial on stderr")
    return parser


def check_budget(space_name: str, budget: int) -> None:
    """A budget larger than the space is a user mistake (one line), not a search that can never finish."""
    size = get_space(space_name).size
    if budget > size:
        raise ValueError(f"--budget {budget} exceeds the {size} configurations of {space_name}")


def print_best(best: SearchRecord) -> None:
    """The best record of a search or a worker: its accuracies and configuration."""
    print(f"  best validation accuracy: {best.val_accuracy:.4f}   its test accuracy: {best.test_accuracy:.4f}")
    print(f"  best configuration: {best.config}")


def run_worker_command(args: argparse.Namespace) -> None:
    check_budget(args.space, args.budget)
    outcome = run_worker(
        get_space(args.space),
        args.method,
        args.budget,
        study_name=args.study,
        storage=args.storage,
        seed=args.seed,
        backend=args.backend,
        device=args.device,
        settings=parse_key_values(args.method_args, "method setting"),
        heartbeat=args.heartbeat,
        grace=args.grace,
        log=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True),
    )
    repeats = len(outcome.records) - outcome.evaluated
    print(f"worker {outcome.worker} (seed {outcome.seed}) on study {outcome.study_name!r}: {outcome.seconds:.1f} s")
    print(f"  this worker: {outcome.evaluated} configurations evaluated, {repeats} repeats of others' records")
    print(f"  the study: {outcome.study_complete} of {outcome.budget} COMPLETE trials")
    if outcome.best is not None:
        print_best(outcome.best)


def run_one_search(args: argparse.Namespace) -> None:
    if args.space in FEATURE_SPACES:
        run_one_feature_search(args)
        return
    check_budget(args.space, args.budget)
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
        print_best(best)
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
    print(shown(f"TensorBoard: tensorboard --logdir {args.tensorboard}"), file=sys.stderr)


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
        "worker": (build_worker_parser, run_worker_command),
    }[command]
    parser = parser()
    args = parser.parse_args(argv[1:] if command else argv)
    if command is None:
        try:
            check_space_and_method(args)
        except ValueError as error:
            parser.error(str(error))
    return run_guarded(parser, run, args, runtime_errors=(ValueError,))


if __name__ == "__main__":
    sys.exit(main())
