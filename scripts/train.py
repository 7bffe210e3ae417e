"""Train an agent on a trendgym env, RL Baselines3 Zoo style; a thin shell over agents.training.train."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from agents.algorithms import ALGOS, AlgorithmError
from agents.cli import (
    DEVICES,
    OneLineParser,
    next_steps,
    non_negative_float,
    non_negative_int,
    positive_int,
    script_command,
    shown,
)
from agents.hyperparams import HyperparamsError, parse_key_values
from agents.runs import BEST_MODEL_FILE, RUNS_ROOT, RunError
from agents.search_summary import best_configuration_met
from agents.training import ConfigError, TrainConfig, train
from agents.transfer import TRANSFER_PARTS
from agents.tuning import PRUNERS, SAMPLERS, TuneConfig, tune
from agents.vec_env import VEC_ENV_KINDS

EXAMPLES = """\
examples:
  python scripts/train.py --algo ppo --env trendgym/Ski-v0                 # the green slope, ~3 minutes
  python scripts/train.py --algo ppo --env trendgym/Ski-v0 --env-kwargs slope:blue --timesteps 3e6
  python scripts/train.py --algo dqn --env trendgym/Ski-v0 --hyperparams learning_rate:1e-4 batch_size:256
  python scripts/train.py --algo sac --env trendgym/SkiContinuous-v0 --n-envs 8 --seed 3
  python scripts/train.py --resume runs/ppo/Ski-v0_1 --timesteps 4e6     # continue a run (or Ctrl-C'd one)
  python scripts/train.py --env-kwargs slope:blue --init-from runs/ppo/Ski-v0_1   # green skier starts on blue
  python scripts/train.py --hyperparams-file runs/tuning/ppo_Ski-v0_slope-green/best.yml --env-kwargs slope:green

tuning hyper-parameters (RL Zoo's -optimize; the report goes to runs/tuning/<study>/):
  python scripts/train.py --optimize --env-kwargs slope:green --timesteps 2e5 --eval-freq 5e4 --n-trials 20
  python scripts/train.py --optimize --algo dqn --timesteps 1e5 --n-trials 30 --n-jobs 2 --sampler random
  python scripts/train.py --optimize --storage postgresql://user:pw@db-host/trendgym --study-name ski-green \\
      --env-kwargs slope:green --timesteps 2e5 --n-trials 100   # the same line on every machine: one worker each

then:
  tensorboard --logdir runs
  python scripts/watch.py runs/ppo/Ski-v0_1
  python scripts/evaluate.py runs/ppo/Ski-v0_1

Hyper-parameters come from agents/hyperparams/<algo>.yml (RL Zoo format), or --hyperparams-file;
--hyperparams key:value overrides them. Values read as in RL Zoo: 3e-4 and 256 are numbers, true/false
booleans, anything else a string (lin_3e-4 is a linear schedule, dict(net_arch=[64, 64]) a policy_kwargs).

--optimize samples an algorithm's hyper-parameters on top of that entry (keys given with --hyperparams stay
fixed), trains each trial for --timesteps, evaluates it every --eval-freq steps on the same --eval-episodes
validation courses (pruned early when its curve lags), and scores it by its last evaluation's mean return.
Trials live in an Optuna study (default: SQLite runs/tuning/<algo>_<env>.db); running the same command again
resumes it up to --n-trials, and running it on other machines with one --storage URL and --study-name adds
workers to the same study (a killed worker's trial is failed by heartbeat and redone by the others). Watch it
with: optuna-dashboard <storage URL>. Outputs: best.yml (a block for agents/hyperparams/<algo>.yml),
trials.csv, history.png, importance.png and curves.png.
"""

TUNING_FLAGS = ("n_trials", "n_jobs", "sampler", "pruner", "n_startup_trials", "storage", "study_name")


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
    p.add_argument(
        "--hyperparams-file", type=Path, metavar="YML", help="a yml in RL Zoo's format instead of the algorithm's"
    )
    p.add_argument("--tensorboard-log", type=Path, default=RUNS_ROOT, help="root of the run folders (default: runs)")
    p.add_argument("--eval-freq", type=positive_int, default=100_000, help="timesteps between validations")
    p.add_argument(
        "--eval-episodes", type=positive_int, default=20, help="validation courses per validation (default: 20)"
    )
    p.add_argument("--save-freq", type=positive_int, default=200_000, help="timesteps between checkpoints")
    p.add_argument(
        "--save-minutes",
        type=non_negative_float,
        default=2.0,
        help="also a checkpoint every so many minutes of training, 0 for none",
    )
    p.add_argument("--no-eval", action="store_true", help="no validation during training")
    p.add_argument("--resume", metavar="RUN_OR_ZIP", help="continue a run folder or a model zip of one")
    start = p.add_argument_group("transfer (a new run that starts from a trained agent)")
    start.add_argument("--init-from", metavar="RUN_OR_ZIP", help="start from this trained agent's policy")
    start.add_argument(
        "--init-parts", choices=TRANSFER_PARTS, default="all", help="all: the whole policy; body: its hidden layers"
    )
    tuning = p.add_argument_group("tuning hyper-parameters (Optuna; see below)")
    tuning.add_argument("--optimize", action="store_true", help="tune the hyper-parameters instead of one training")
    tuning.add_argument("--n-trials", type=positive_int, help="finished trials in the study, all workers (default: 20)")
    tuning.add_argument("--n-jobs", type=positive_int, help="worker processes started here (default: 1)")
    tuning.add_argument("--sampler", choices=SAMPLERS, help="random, tpe or gp (default: tpe)")
    tuning.add_argument("--pruner", choices=PRUNERS, help="median, halving or none (default: median)")
    tuning.add_argument(
        "--n-startup-trials", type=non_negative_int, help="random trials before TPE/GP and pruning (default: 5)"
    )
    tuning.add_argument("--storage", metavar="URL", help="Optuna storage (default: sqlite runs/tuning/<algo>_<env>.db)")
    tuning.add_argument("--study-name", help="the study to create or join (default: <algo>_<env>[_<key>-<value>])")
    p.add_argument(
        "--vec-env", choices=VEC_ENV_KINDS, help="how envs are vectorised (default: native, if the env has one)"
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="torch device (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no validation lines")
    p.add_argument("--verbose", action="store_true", help="also print SB3's table of metrics at each update")
    return p


def shared_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a training run and a tuning study read from the same flags."""
    return {
        "algo": args.algo,
        "env": args.env,
        "env_kwargs": parse_key_values(args.env_kwargs, "--env-kwargs entry"),
        "seed": args.seed,
        "timesteps": args.timesteps,
        "n_envs": args.n_envs,
        "hyperparams": args.hyperparams,
        "hyperparams_file": args.hyperparams_file,
        "eval_episodes": args.eval_episodes,
        "vec_env": args.vec_env,
        "verbose": 0 if args.quiet else 2 if args.verbose else 1,
    }


def config_from_args(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    return TrainConfig(
        **shared_settings(args),
        tensorboard_log=args.tensorboard_log,
        eval_freq=0 if args.no_eval else args.eval_freq,
        save_freq=args.save_freq,
        save_minutes=args.save_minutes,
        device=args.device,
        resume=args.resume,
        init_from=args.init_from,
        init_parts=args.init_parts,
        command=shlex.join(["python", "scripts/train.py", *argv]),
    )


def tune_config_from_args(args: argparse.Namespace) -> TuneConfig:
    defaults = TuneConfig()
    chosen = {name: getattr(args, name) for name in TUNING_FLAGS if getattr(args, name) is not None}
    return TuneConfig(
        **shared_settings(args),
        root=args.tensorboard_log,
        eval_freq=args.eval_freq,
        device="cpu" if args.device == "auto" else args.device,  # small MLPs: a GPU only slows each trial down
        **{**{name: getattr(defaults, name) for name in TUNING_FLAGS}, **chosen},
    )


def check_combination(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that make no sense together: one line, exit 2."""
    if not args.optimize:
        given = [f"--{name.replace('_', '-')}" for name in TUNING_FLAGS if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)} only work with --optimize")
        return
    for flag, value in (("--resume", args.resume), ("--init-from", args.init_from), ("--no-eval", args.no_eval)):
        if value:
            parser.error(f"--optimize cannot be combined with {flag}")


def optimize(args: argparse.Namespace) -> int:
    """train.py --optimize: run the tuning and say where its report is."""
    try:
        result = tune(tune_config_from_args(args))
    except (ConfigError, HyperparamsError, AlgorithmError) as e:
        print(shown(f"train.py: error: {e}"), file=sys.stderr)
        return 2
    except ValueError as e:  # a storage that cannot be opened
        print(shown(f"train.py: error: {e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the first trial or while the report was written
        print("\ninterrupted; run the same command to resume the study", file=sys.stderr)
        return 130
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(result.states.items()))
    print(f"\nstudy {result.study_name!r} in {result.storage}: {result.finished} finished trials ({states})")
    if result.best is not None:
        clean = result.best.user_attrs.get("clean_rate")
        clean_text = f", {clean:.0%} clean" if clean is not None else ""
        print(f"best: trial {result.best.number}, mean return {result.best.value:.2f}{clean_text}")
        print(f"  {result.best_file}  (train: {script_command('train.py')} ... --hyperparams-file {result.best_file})")
    print(f"report: {result.out_dir}/ (trials.csv, history.png, importance.png, curves.png)")
    print(shown(f"dashboard: optuna-dashboard {result.storage}"))
    if result.interrupted:
        print("interrupted: the running trials are marked failed; run the same command to resume", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    check_combination(parser, args)
    if args.optimize:
        return optimize(args)
    try:
        result = train(config_from_args(args, argv))
    except (ConfigError, HyperparamsError, AlgorithmError) as e:
        print(shown(f"train.py: error: {e}"), file=sys.stderr)
        return 2
    except RunError as e:
        print(shown(f"train.py: {e}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training started (while building envs): nothing to save
        print("\ninterrupted before training started", file=sys.stderr)
        return 130
    run = result.run_dir
    if result.interrupted:
        received = signal.Signals(result.stop_signal or signal.SIGINT)
        print(f"\n{received.name}: stopped at {result.num_timesteps:,} steps; saved {result.model_path}")
        print(f"resume with: {script_command('train.py')} --resume {run}")
        return 128 + received.value
    best = run / BEST_MODEL_FILE
    loads = f"{best.name} (the best validation)" if best.is_file() else result.model_path.name
    print(f"\ntrained {result.num_timesteps:,} steps; run folder {run}; watch.py and evaluate.py load {loads}")
    if (best_met := best_configuration_met(result.model)) is not None:  # a search env: the best its search met
        print(best_met)
    print(
        next_steps(
            [
                (f"tensorboard --logdir {args.tensorboard_log}", "then open http://localhost:6006"),
                (f"python scripts/watch.py {run}", "watch it in a pygame window"),
                (f"python scripts/evaluate.py {run}", "judge it on unseen seeds beside the baselines"),
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
