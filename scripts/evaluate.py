"""Judge a trained agent on courses it never saw, beside the random and heuristic baselines on the same courses.

Examples:
  python scripts/evaluate.py runs/ppo/Ski-v0_1                  # 20 unseen courses, agent vs baselines
  python scripts/evaluate.py                                    # the latest run
  python scripts/evaluate.py runs/ppo/Ski-v0_1/model.zip --episodes 50 --json eval.json
  python scripts/evaluate.py runs/ppo/Ski-v0_1 --slope blue     # a green-trained skier on the blue slope
  python scripts/evaluate.py runs/ppo/Ski-v0_1 --seeds 1000000 1000001 --stochastic --no-baselines
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import OneLineParser, positive_int, run_guarded
from agents.evaluation import (
    EnvConfigError,
    OptionNotApplicable,
    check_policy_fits,
    compare_with_baselines,
    comparison_dict,
    env_id_argument,
    env_of_run,
    format_table,
    make_env,
)
from agents.runs import RunError, load_agent
from agents.seeds import TEST_SEED, test_seeds
from envs.ski.course import SLOPES
from trends.files import atomic_write_text

DEFAULT_EPISODES = 20


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="evaluate.py",
        description=__doc__.split("\n\n")[0],
        epilog="Examples:" + __doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_or_zip", nargs="?", help="a run folder or a model .zip (default: the latest run)")
    parser.add_argument(
        "--episodes", type=positive_int, default=DEFAULT_EPISODES, help="courses to ski (default: %(default)s)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help=f"course seeds (default: {TEST_SEED}, {TEST_SEED}+1, ...)")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="also write every result to this file")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the most likely one")
    parser.add_argument("--slope", choices=list(SLOPES), help="ski a different slope than the run trained on")
    parser.add_argument(
        "--env", type=env_id_argument, metavar="ENV_ID", help="the env to judge in (default: the run's config.yml)"
    )
    parser.add_argument("--no-baselines", action="store_true", help="evaluate the agent only")
    parser.add_argument("--last", action="store_true", help="load model.zip rather than best_model.zip")
    return parser


def run(args: argparse.Namespace) -> None:
    agent = load_agent(args.run_or_zip, prefer_best=not args.last)
    env_id, env_kwargs = env_of_run(agent.config, args.env, args.slope)
    env = make_env(env_id, env_kwargs)
    check_policy_fits(agent.model, env)
    env.close()
    seeds = args.seeds or test_seeds(args.episodes)
    deterministic = not args.stochastic
    mode = "deterministic" if deterministic else "stochastic"
    print(f"model: {agent.path}")
    print(f"env:   {env_id} {env_kwargs}, {len(seeds)} episodes on unseen seeds ({seeds[0]}..{seeds[-1]}), {mode}")
    results = compare_with_baselines(
        agent,
        env_id,
        env_kwargs,
        seeds,
        deterministic,
        name=agent.config.get("algo", "agent"),
        baselines=not args.no_baselines,
    )
    print(format_table(results))
    if args.json is not None:
        record = comparison_dict(results, model=str(agent.path), config=agent.config)
        atomic_write_text(args.json, json.dumps(record, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # OSError: e.g. --json into a folder that cannot be written
    return run_guarded(parser, run, args, (OptionNotApplicable,), (RunError, EnvConfigError, OSError))


if __name__ == "__main__":
    sys.exit(main())
