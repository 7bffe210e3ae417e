"""The main job (`make run`): train PPO on a ski slope, judge it on unseen courses beside the baselines, write a
GIF of one run, and say where everything is. Each step is one of the other scripts' functions.

Examples:
  python scripts/quickstart.py                    # the green slope, about 2 minutes on 2 CPU cores
  python scripts/quickstart.py --slope blue --timesteps 6e6
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from agents.cli import (
    EXIT_INTERRUPTED,
    OneLineParser,
    budget_text,
    fail,
    next_steps,
    non_negative_int,
    positive_int,
    script_command,
)
from agents.evaluation import compare_with_baselines, format_table
from agents.recording import record_episodes
from agents.runs import BEST_MODEL_FILE, MODEL_FILE, RunError, load_agent
from agents.seeds import TEST_SEED, test_seeds
from agents.training import ConfigError, TrainConfig, train
from envs.ski.course import SLOPES

ENV_ID = "trendgym/Ski-v0"
CLEAN_TARGET = 0.8  # the share of unseen courses the trained skier should ski cleanly


def build_parser() -> OneLineParser:
    doc_head, examples = __doc__.split("Examples:")
    parser = OneLineParser(prog="quickstart.py", description=doc_head.strip(), epilog="examples:" + examples)
    parser.add_argument("--slope", choices=list(SLOPES), default="green", help="the slope to learn (default: green)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="training seed (default: 0)")
    parser.add_argument("--timesteps", type=positive_int, help="training budget (default: the tuned one)")
    parser.add_argument("--episodes", type=positive_int, default=100, help="unseen courses to judge on (default: 100)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env_kwargs = {"slope": args.slope}
    started = time.perf_counter()
    try:
        result = train(TrainConfig(env=ENV_ID, env_kwargs=env_kwargs, seed=args.seed, timesteps=args.timesteps))
    except (ConfigError, RunError) as e:
        return fail("quickstart.py", e)
    if result.interrupted:
        print(f"\ninterrupted; resume with: {script_command('train.py')} --resume {result.run_dir}")
        return 128 + result.stop_signal if result.stop_signal else EXIT_INTERRUPTED
    seconds = time.perf_counter() - started
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    run = result.run_dir

    agent = load_agent(run)  # best_model.zip when validation kept one: what watch.py and evaluate.py load too
    judged = f"{agent.path.name} from step {agent.model.num_timesteps:,}"
    print(f"\njudging the trained skier ({judged}) on {args.episodes} courses it never saw ...")
    results = compare_with_baselines(agent, ENV_ID, env_kwargs, test_seeds(args.episodes), name="PPO")
    print(format_table(results))
    clean = results[0].metric_means()["clean"]

    gif = run / "episode.gif"
    record_episodes(agent, ENV_ID, env_kwargs, [TEST_SEED], gif, frame_skip=2)

    verdict = "meets" if clean >= CLEAN_TARGET else "falls short of"
    further = budget_text(int(float(f"{2 * result.num_timesteps:.1e}")))  # twice the steps, in two digits
    if agent.path.name == BEST_MODEL_FILE:
        kept = f"the best of its validations; watch.py and evaluate.py load it too (--last: the final {MODEL_FILE})"
    else:
        kept = "the final model; watch.py and evaluate.py load it too"
    print(
        f"\nPPO trained {result.num_timesteps:,} steps in {took}; it skis {clean:.0%} of unseen {args.slope} courses "
        f"cleanly, which {verdict} the {CLEAN_TARGET:.0%} target.\n"
        f"  judged:       {judged}, {kept}\n"
        f"  run folder:   {run}\n"
        f"  one run:      {gif}\n"
        "next steps (each line runs as printed):\n"
        + next_steps(
            [
                (f"tensorboard --logdir {run.parent.parent}", "then open http://localhost:6006"),
                (f"python scripts/watch.py {run}", "watch it ski in a pygame window"),
                (f"python scripts/evaluate.py {run} --slope blue", "judge it on a harder slope"),
                (
                    f"python scripts/train.py --resume {run} --timesteps {further}",
                    "train it on, to twice the steps",
                ),
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
