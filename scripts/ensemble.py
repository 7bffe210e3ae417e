"""Ensembles: build a pool of diverse trained models, combine them (averaging, voting, Caruana selection,
stacking, or an RL agent choosing the members), or let several trained agents act as one.

Examples:
  python scripts/ensemble.py members build                       # both pools: scikit-learn models and networks
  python scripts/ensemble.py members build --dataset digits
  python scripts/ensemble.py combine --dataset mnist1d --method caruana stacking rl
  python scripts/ensemble.py combine --dataset digits --method rl --seed 1 --tensorboard-log runs/ensemble/tb
  python scripts/ensemble.py agents --runs runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 runs/ppo/Ski-v0_3
  python scripts/ensemble.py agents --runs runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 --slope blue --rule soft

Every command prints its table against the best single member and writes it as markdown and CSV under --out
(default runs/ensemble/reports). Pools are trained once and cached under runs/ensemble/pools/<dataset>/, one file
per member, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import HelpFormatter, examples_of, output_dir, positive_int, run_subcommand, subcommand_parser
from agents.ensemble.combination import METHODS, combine, markdown, pool_table, single_best, write_rows
from agents.ensemble.policies import evaluate_members
from agents.evaluation import format_table
from agents.runs import RunError
from agents.tables import write_table
from trends.ensemble import DEFAULT_CACHE, MemberPool, describe_members, load_pool

DATASETS = ("digits", "mnist1d")
DEFAULT_OUT = Path("runs") / "ensemble" / "reports"


def _add_members(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "members",
        help="build (train and cache) the member pools",
        description="Train every member of a dataset's pool that the cache lacks, then list the pool.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("action", choices=["build"], help="what to do with the pools")
    parser.add_argument("--dataset", nargs="+", choices=DATASETS, default=list(DATASETS), help="the pools")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the pools' members are cached")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_members)


def _add_combine(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "combine",
        help="combine a pool's members and compare with the best single member",
        description="Fit each combination method on the validation split of a dataset's pool and report "
        "validation and test accuracy against the best single member.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--dataset", choices=DATASETS, default="digits", help="the pool")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the pools' members are cached")
    parser.add_argument("--method", nargs="+", choices=METHODS, default=list(METHODS), help="combination methods")
    parser.add_argument("--seed", type=int, default=0, help="Caruana's bags, stacking's folds, the RL agent")
    parser.add_argument("--algo", choices=["maskableppo", "ppo", "dqn"], default="maskableppo", help="RL agent")
    parser.add_argument("--timesteps", type=positive_int, help="RL training steps (default: the yml file's)")
    parser.add_argument("--tensorboard-log", type=Path, help="write the RL agent's run (and TensorBoard) here")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_combine)


def _add_agents(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agents",
        help="several trained agents acting as one, against each alone",
        description="Play each run alone and all of them as one ensemble agent on the same unseen courses.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--runs", nargs="+", required=True, help="two or more run folders or model zips")
    parser.add_argument("--rule", choices=["auto", "vote", "soft", "mean"], default="auto", help="how they combine")
    parser.add_argument("--weights", type=float, nargs="+", help="one weight per run (default: equal)")
    parser.add_argument("--slope", choices=["green", "blue", "black"], help="another slope than the runs trained on")
    parser.add_argument("--episodes", type=positive_int, default=50, help="unseen courses")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_agents)


def _pool(dataset: str, cache_dir: Path) -> MemberPool:
    return load_pool(dataset, cache_dir, lambda name, i, n: print(f"training {name} ({i}/{n})", file=sys.stderr))


def _run_members(args: argparse.Namespace) -> None:
    for dataset in dict.fromkeys(args.dataset):
        pool = _pool(dataset, args.cache_dir)
        markdown, header, rows = pool_table(pool, describe_members(dataset))
        print(f"\n{dataset}: {pool.n_members} members\n\n{markdown}")
        _wrote(write_table(args.out, f"members-{dataset}", f"The {dataset} member pool", markdown, header, rows))


def _run_combine(args: argparse.Namespace) -> None:
    pool = _pool(args.dataset, args.cache_dir)
    rows = [single_best(pool)]
    for method in dict.fromkeys(args.method):
        print(f"{method}...", file=sys.stderr, flush=True)
        rows.append(combine(pool, method, args.seed, args.algo, args.timesteps, args.tensorboard_log))
    print(markdown(rows))
    _wrote(
        write_rows(rows, f"Ensembles of the {args.dataset} pool", args.out, f"combine-{args.dataset}-seed{args.seed}")
    )


def _run_agents(args: argparse.Namespace) -> None:
    if len(args.runs) < 2:
        raise ValueError("an ensemble of agents needs two or more runs")
    results = evaluate_members(args.runs, args.weights, args.rule, args.episodes, args.slope)
    print(format_table(results))
    best = max(results[:-1], key=lambda r: r.mean_return)
    print(f"ensemble - best member ({best.name}): {results[-1].mean_return - best.mean_return:+.1f} return")
    header = ["policy", "return_mean", "return_std", "clean_rate"]
    rows = [[r.name, r.mean_return, r.std_return, r.metric_means().get("clean", "")] for r in results]
    title = "An ensemble of agents against each alone"
    _wrote(write_table(args.out, "agents", title, format_table(results, "markdown"), header, rows))


def _wrote(paths: tuple[Path, Path]) -> None:
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("ensemble.py", __doc__, (_add_members, _add_combine, _add_agents))


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    return run_subcommand(build_parser(), argv, runtime_errors=(RunError, OSError))


if __name__ == "__main__":
    sys.exit(main())
