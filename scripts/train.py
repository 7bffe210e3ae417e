"""Train an agent on a trendgym env, RL Baselines3 Zoo style; a thin shell over agents.training.train."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from agents.algorithms import ALGOS, AlgorithmError
from agents.cli import OneLineParser, non_negative_int, positive_int
from agents.hyperparams import HyperparamsError, parse_key_values
from agents.runs import RUNS_ROOT, RunError
from agents.training import ConfigError, TrainConfig, train
from agents.transfer import TRANSFER_PARTS
from agents.vec_env import VEC_ENV_KINDS

EXAMPLES = """\
examples:
  python scripts/train.py --algo ppo --env trendgym/Ski-v0                 # the green slope, ~3 minutes
  python scripts/train.py --algo ppo --env trendgym/Ski-v0 --env-kwargs slope:blue --timesteps 3e6
  python scripts/train.py --algo dqn --env trendgym/Ski-v0 --hyperparams learning_rate:1e-4 batch_size:256
  python scripts/train.py --algo sac --env trendgym/SkiContinuous-v0 --n-envs 8 --seed 3
  python scripts/train.py --resume runs/ppo/Ski-v0_1 --timesteps 4e6     # continue a run (or Ctrl-C'd one)
  python scripts/train.py --env-kwargs slope:blue --init-from runs/ppo/Ski-v0_1   # green skier starts on blue

then:
  tensorboard --logdir runs
  python scripts/watch.py runs/ppo/Ski-v0_1
  python scripts/evaluate.py runs/ppo/Ski-v0_1

Hyper-parameters come from agents/hyperparams/<algo>.yml (RL Zoo format); --hyperparams key:value overrides
them. Values read as in RL Zoo: 3e-4 and 256 are numbers, true/false booleans, anything else a string
(lin_3e-4 is a linear schedule, dict(net_arch=[64, 64]) a policy_kwargs).
"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="train.py",
        description="Train an agent; runs go to runs/<algo>/<env>_<n>/ (model, best model, config, TensorBoard).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--algo", default="ppo", choices=list(ALGOS), metavar="ALGO", help=f"one of: {', '.join(ALGOS)}")
    p.add_argument("--env", default="trendgym/Ski-v0", help="a registered env id (default: %(default)s)")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY:VALUE", help="gym.make arguments: slope:blue")
    p.add_argument("--timesteps", type=positive_int, help="total budget (default: n_timesteps of the yml)")
    p.add_argument("--n-envs", type=positive_int, help="envs trained at once (default: n_envs of the yml)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="training env i starts from seed*1000+i (default: 0)"
    )
    p.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY:VALUE", help="override the yml's entry")
    p.add_argument("--tensorboard-log", type=Path, default=RUNS_ROOT, help="root of the run folders (default: runs)")
    p.add_argument("--eval-freq", type=positive_int, default=100_000, help="timesteps between validations")
    p.add_argument(
        "--eval-episodes", type=positive_int, default=20, help="validation courses per validation (default: 20)"
    )
    p.add_argument("--save-freq", type=positive_int, default=200_000, help="timesteps between checkpoints")
    p.add_argument("--no-eval", action="store_true", help="no validation during training")
    p.add_argument("--resume", metavar="RUN_OR_ZIP", help="continue a run folder or a model zip of one")
    start = p.add_argument_group("transfer (a new run that starts from a trained agent)")
    start.add_argument("--init-from", metavar="RUN_OR_ZIP", help="start from this trained agent's policy")
    start.add_argument(
        "--init-parts", choices=TRANSFER_PARTS, default="all", help="all: the whole policy; body: its hidden layers"
    )
    p.add_argument(
        "--vec-env", choices=VEC_ENV_KINDS, help="how envs are vectorised (default: native, if the env has one)"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no validation lines")
    p.add_argument("--verbose", action="store_true", help="also print SB3's table of metrics at each update")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    return TrainConfig(
        algo=args.algo,
        env=args.env,
        env_kwargs=parse_key_values(args.env_kwargs, "--env-kwargs entry"),
        seed=args.seed,
        timesteps=args.timesteps,
        n_envs=args.n_envs,
        hyperparams=args.hyperparams,
        tensorboard_log=args.tensorboard_log,
        eval_freq=0 if args.no_eval else args.eval_freq,
        eval_episodes=args.eval_episodes,
        save_freq=args.save_freq,
        vec_env=args.vec_env,
        device=args.device,
        resume=args.resume,
        init_from=args.init_from,
        init_parts=args.init_parts,
        verbose=0 if args.quiet else 2 if args.verbose else 1,
        command=shlex.join(["python", "scripts/train.py", *argv]),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        result = train(config_from_args(args, argv))
    except (ConfigError, HyperparamsError, AlgorithmError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training started (while building envs): nothing to save
        print("\ninterrupted before training started", file=sys.stderr)
        return 130
    run = result.run_dir
    if result.interrupted:
        print(f"\ninterrupted at {result.num_timesteps} steps; saved {result.model_path}")
        print(f"resume with: python scripts/train.py --resume {run}")
        return 130
    print(f"\ntrained {result.num_timesteps} steps; run folder {run}")
    print(
        "  tensorboard --logdir runs"
        if Path(args.tensorboard_log) == RUNS_ROOT
        else f"  tensorboard --logdir {args.tensorboard_log}"
    )
    print(f"  python scripts/watch.py {run}")
    print(f"  python scripts/evaluate.py {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
