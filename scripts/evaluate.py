"""Judge a trained agent on courses it never saw, beside the random and heuristic baselines on the same courses.

Several runs act as one agent (agents.ensemble.policies.PolicyEnsemble): a majority vote of their actions for
Discrete envs (--ensemble-rule soft: the mean of their action probabilities), the mean action for Box envs;
--members puts each run alone beside the ensemble, on the same courses.

A decision env whose episodes make one search (ArchitectureSearch-v0, HyperparamSearch-v0, FeatureEngineering-v0,
Pruning-v0, Quantization-v0, EnsembleWeighting-v0): each policy runs one search of --episodes episodes, started by
the first seed, and the table shows the mean of each episode's metrics but a search's best and evaluations at
its end.

Examples:
  python scripts/evaluate.py runs/ppo/Ski-v0_1                  # 20 unseen courses, agent vs baselines
  python scripts/evaluate.py                                    # the latest run
  python scripts/evaluate.py runs/ppo/Ski-v0_1/model.zip --episodes 50 --json eval.json
  python scripts/evaluate.py runs/ppo/Ski-v0_1 --slope blue     # a green-trained skier on the blue slope
  python scripts/evaluate.py runs/ppo/Ski-v0_1 --seeds 1000000 1000001 --stochastic --no-baselines
  python scripts/evaluate.py runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 runs/ppo/Ski-v0_3 --members   # vote vs each run
  python scripts/evaluate.py runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 --ensemble-rule soft --weights 2 1 --slope blue
  python scripts/evaluate.py runs/maskableppo/ArchitectureSearch-v0_1 --episodes 100   # a search of 100 vs random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import OneLineParser, non_negative_int, output_file, positive_int, run_guarded
from agents.ensemble.policies import (
    EnsembleError,
    PolicyEnsemble,
    add_ensemble_arguments,
    describe_models,
    load_policy,
    members_trained_elsewhere,
)
from agents.evaluation import (
    EnvConfigError,
    OptionNotApplicable,
    check_policy_fits,
    compare_with_baselines,
    comparison_dict,
    env_id_argument,
    env_of_run,
    evaluate,
    format_table,
    make_env,
    plays_one_search,
)
from agents.runs import LoadedAgent, RunError, config_dir_of
from agents.seeds import TEST_SEED, test_seeds
from envs.ski.course import SLOPES
from trends.files import atomic_write_text

DEFAULT_EPISODES = 20


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="evaluate.py",
        description=__doc__.split("Examples:")[0].strip(),
        epilog="Examples:" + __doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="a run folder or a model .zip (default: the latest run); several act as one ensemble",
    )
    parser.add_argument(
        "--episodes", type=positive_int, default=DEFAULT_EPISODES, help="courses to ski (default: %(default)s)"
    )
    parser.add_argument(
        "--seeds", type=non_negative_int, nargs="+", help=f"course seeds (default: {TEST_SEED}, {TEST_SEED}+1, ...)"
    )
    parser.add_argument("--json", type=output_file, metavar="OUT.json", help="also write every result to this file")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the most likely one")
    parser.add_argument("--slope", choices=list(SLOPES), help="ski a different slope than the run trained on")
    parser.add_argument(
        "--env", type=env_id_argument, metavar="ENV_ID", help="the env to judge in (default: the run's config.yml)"
    )
    parser.add_argument("--no-baselines", action="store_true", help="evaluate the agent only")
    parser.add_argument("--last", action="store_true", help="load model.zip rather than best_model.zip")
    add_ensemble_arguments(parser)
    parser.add_argument("--members", action="store_true", help="with several runs, also judge each run alone")
    return parser


def policy_name(agent: LoadedAgent | PolicyEnsemble) -> str:
    """The agent's row in the table: its algorithm, or the ensemble and its rule."""
    if isinstance(agent, PolicyEnsemble):
        return f"ensemble ({agent.rule})"
    return agent.config.get("algo", "agent")


def json_context(agent: LoadedAgent | PolicyEnsemble) -> dict[str, Any]:
    """What --json records about the agent: its model and config, or every member's and the ensemble's rule."""
    if not isinstance(agent, PolicyEnsemble):
        return {"model": str(agent.path), "config": agent.config}
    return {
        "models": [str(p) for p in agent.paths],
        "ensemble": {"rule": agent.rule, "weights": agent.weights.tolist()},
        "configs": [m.config for m in agent.members],
    }


def run(args: argparse.Namespace) -> None:
    agent = load_policy(args.runs, args.weights, args.ensemble_rule, prefer_best=not args.last)
    if args.members and not isinstance(agent, PolicyEnsemble):
        raise OptionNotApplicable("--members compares several runs with their ensemble; give two or more runs")
    env_id, env_kwargs = env_of_run(agent.config, args.env, args.slope)
    env = make_env(env_id, env_kwargs)
    check_policy_fits(getattr(agent, "model", agent), env)  # a PolicyEnsemble has the spaces itself
    one_search = plays_one_search(env)
    env.close()
    if isinstance(agent, PolicyEnsemble) and (elsewhere := members_trained_elsewhere(agent, env_id, env_kwargs)):
        print(f"evaluate.py: warning: {'; '.join(elsewhere)}", file=sys.stderr)  # one line, before the work
    seeds = args.seeds or test_seeds(args.episodes)
    deterministic = not args.stochastic
    mode = "deterministic" if deterministic else "stochastic"
    print(f"model: {describe_models(agent)}")
    if one_search:  # a seeded reset starts a new search: each policy searches once, over all the episodes
        print(f"env:   {env_id} {env_kwargs}, one search of {len(seeds)} episodes each (seed {seeds[0]}), {mode}")
    else:
        print(f"env:   {env_id} {env_kwargs}, {len(seeds)} episodes on unseen seeds ({seeds[0]}..{seeds[-1]}), {mode}")
    results = compare_with_baselines(
        agent,
        env_id,
        env_kwargs,
        seeds,
        deterministic,
        name=policy_name(agent),
        baselines=not args.no_baselines,
    )
    if args.members:
        results[1:1] = [
            evaluate(m, env_id, env_kwargs, seeds, deterministic, f"run {i + 1} ({config_dir_of(m.path).name})")
            for i, m in enumerate(agent.members)
        ]
    print(format_table(results))
    if args.json is not None:
        record = comparison_dict(results, **json_context(agent))
        atomic_write_text(args.json, json.dumps(record, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # OSError: e.g. --json into a folder that cannot be written
    return run_guarded(parser, run, args, (OptionNotApplicable,), (RunError, EnvConfigError, EnsembleError, OSError))


if __name__ == "__main__":
    sys.exit(main())
