#!/usr/bin/env python
"""Run trendgym's benchmarks and regenerate their reports (docs/bench/ and the README's tables).

Each benchmark is a subcommand; its logic lives in ``agents.benchmarks`` so tests can call it. To add one,
write ``_add_<name>(subparsers)`` that declares its arguments and sets ``func`` to a function taking the
parsed arguments and returning an exit code, and list it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from agents.cli import HelpFormatter, OneLineParser, existing_file, non_negative_int, output_dir, positive_int

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "bench"
DEFAULT_README = REPO_ROOT / "README.md"

EXAMPLES = """examples:
  python scripts/bench.py ski                      # the published run: 5 repeats, updates docs/bench and README
  python scripts/bench.py ski --repeats 3 --steps 2000 --no-readme   # a quick look
  python scripts/bench.py ski --sizes 64 1024 --no-memory --out /tmp/bench
  python scripts/bench.py baselines                # random and heuristic skiers on every slope
  python scripts/bench.py automl                   # the table-backed search env's step cost, PPO on it
  python scripts/bench.py lr-control               # learning-rate schedules on LearningRateControl-v0's instances
  python scripts/bench.py compression-distill      # knowledge and policy distillation over 5 seeds
  python scripts/bench.py compression-policies     # ski policies in fp32, fp16, int8: size, latency, return
  python scripts/bench.py compression-search       # AMC pruning and HAQ quantization: RL against fixed rules
  python scripts/bench.py ensemble-agents          # five ski agents alone and as one, on green and blue
  python scripts/bench.py ensemble-combine         # RL selection, Caruana, stacking... on digits and MNIST-1D
  python scripts/bench.py transfer-curriculum      # green-to-blue transfer against blue from scratch, 5 seeds
  python scripts/bench.py transfer-curriculum --slope black   # green to black, to a mean return of 0
  python scripts/bench.py transfer-labels          # pre-trained encoders against scratch at few labels, 5 seeds
  python scripts/bench.py imitation                # GAIL and behaviour cloning against the number of demos
  python scripts/bench.py gan-modes                # vanilla GAN against PacGAN on the ring and the grid
  python scripts/bench.py gan-augment              # few digits labels with and without a conditional GAN's
  python scripts/bench.py pixel-transfer           # PPO on pixels from pre-trained encoders against scratch
  python scripts/bench.py feature-engineering      # RL feature engineering against random, expand-reduce, raw
  python scripts/bench.py workers                  # 1, 2, 4 worker processes on SQLite and PostgreSQL
  python scripts/bench.py workers --budget 50 --repeats 1 --storages sqlite --no-readme   # a quick look
  python scripts/bench.py tuning                   # train.py --optimize on green against the hand-tuned PPO
"""


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Where every benchmark writes; shared so later subcommands behave alike."""
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for <name>.md and <name>.json")
    parser.add_argument(
        "--readme", type=existing_file, default=DEFAULT_README, help="README whose bench section to update"
    )
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")


def _print_report(markdown: str, written: dict, args: argparse.Namespace) -> int:
    """Every benchmark ends alike: its table on stdout, where it wrote on stderr."""
    print()
    print(markdown)
    print(f"wrote {written['markdown']} and {written['json']}", file=sys.stderr)
    if not args.no_readme:
        state = "updated" if written["readme"] else "not updated (no README or no bench markers for it)"
        print(f"README {args.readme}: {state}", file=sys.stderr)
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_and_report(run: Callable, write: Callable, config: object, args: argparse.Namespace) -> int:
    """Run a benchmark with ``config``, progress on stderr, then write and print its report as every one does."""
    result = run(config, progress=_progress)
    written = write(result, args.out, None if args.no_readme else args.readme)
    return _print_report(result.to_markdown(), written, args)


def _add_ski(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.ski_speed import SkiSpeedConfig

    defaults = SkiSpeedConfig()
    parser = subparsers.add_parser(
        "ski",
        help="steps/s of the ski env (single and vector) against CartPole-v1",
        description="Time trendgym/Ski-v0 (gym.make and its native vector env) against CartPole-v1 in the same "
        "run, report the ratios against the targets (single step at most 2x CartPole's; vector throughput at "
        "1024 skiers at least 1/4 of CartPole's) and the peak memory of each configuration.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats, help="timed repeats per config")
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="step() calls per repeat")
    parser.add_argument(
        "--sizes", type=positive_int, nargs="+", default=list(defaults.vector_sizes), help="vector env sizes"
    )
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="repeat r uses seed + r")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_ski)


def _run_ski(args: argparse.Namespace) -> int:
    from agents.benchmarks.ski_speed import SkiSpeedConfig, run_ski_speed, write_ski_speed_report

    config = SkiSpeedConfig(
        repeats=args.repeats,
        steps=args.steps,
        vector_sizes=tuple(sorted(set(args.sizes))),
        seed=args.seed,
        memory=not args.no_memory,
    )
    return _run_and_report(run_ski_speed, write_ski_speed_report, config, args)


def _add_baselines(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baselines",
        help="returns and clean-run rates of the random and heuristic skiers on every slope",
        description="Evaluate the random policy and the heuristic skier on every slope (Discrete and continuous "
        "actions) on test course seeds no training uses.",
        epilog="examples:\n  python scripts/bench.py baselines\n  python scripts/bench.py baselines --episodes 10 "
        "--no-readme --out /tmp/bench",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--episodes", type=positive_int, default=50, help="episodes (course seeds) per row")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_baselines)


def _run_baselines(args: argparse.Namespace) -> int:
    from agents.benchmarks.ski_baselines import run_ski_baselines, write_ski_baselines_report

    result = run_ski_baselines(args.episodes)
    written = write_ski_baselines_report(result, args.out, None if args.no_readme else args.readme)
    return _print_report(result.to_markdown(), written, args)


LEARNING_EXAMPLES = """examples:
  python scripts/bench.py learning                 # train.py's recipe on every slope, 5 seeds, beside the heuristic
  python scripts/bench.py learning --slopes green --workers 2
  python scripts/bench.py learning --slopes green --seeds 1 --timesteps 200000 --no-readme --out /tmp/bench   # a look
"""

LEARNING_SPEED_EXAMPLES = """examples:
  python scripts/bench.py learning-speed           # the published run: green, blue and CartPole, seeds 1 2 3
  python scripts/bench.py learning-speed --tasks green cartpole --seeds 1 --no-readme --out /tmp/bench   # a look
  python scripts/bench.py learning-speed --tasks blue --eval-every 250000 --eval-episodes 50
  python scripts/bench.py learning-speed --max-steps 500000 --no-readme --out /tmp/bench   # short schedules
"""


def _train_seed(text: str) -> int:
    """A training seed: below the validation and test courses' seeds."""
    from agents.seeds import MAX_TRAIN_SEED

    value = non_negative_int(text)
    if value >= MAX_TRAIN_SEED:
        raise argparse.ArgumentTypeError(f"seeds must be below {MAX_TRAIN_SEED} (higher ones are validation)")
    return value


def _add_learning(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.recipes import DEFAULT_SEEDS, SLOPE_NAMES, TEST_EPISODES

    parser = subparsers.add_parser(
        "learning",
        help="train.py's recipe on each slope, over seeds, beside the heuristic skier on the same test courses",
        description="For each slope and seed, train as `train.py --env-kwargs slope:<slope>` does (its yml entry "
        "and budget); judge the best and the final model deterministically on the same test courses as the "
        "heuristic skier; report medians with bootstrap 95% intervals and IQMs over the seeds. Green takes about "
        "3 minutes a seed.",
        epilog=LEARNING_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--slopes", nargs="+", choices=SLOPE_NAMES, default=list(SLOPE_NAMES), help="slopes")
    parser.add_argument("--seeds", type=_train_seed, nargs="+", default=list(DEFAULT_SEEDS), help="training seeds")
    parser.add_argument("--test-episodes", type=positive_int, default=TEST_EPISODES, help="test courses")
    parser.add_argument("--timesteps", type=positive_int, help="cap the budget (default: the recipe's own)")
    parser.add_argument("--workers", type=positive_int, default=1, help="seeds trained side by side in processes")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_learning)


def _run_learning(args: argparse.Namespace) -> int:
    from agents.benchmarks.recipes import RecipeConfig, run_recipes, write_recipes_report

    config = RecipeConfig(
        slopes=tuple(dict.fromkeys(args.slopes)), seeds=tuple(dict.fromkeys(args.seeds)),
        test_episodes=args.test_episodes, timesteps=args.timesteps, workers=args.workers,
    )  # fmt: skip
    return _run_and_report(run_recipes, write_recipes_report, config, args)


def _add_learning_speed(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.learning import DEFAULT_SEEDS, SKI_EVAL_EPISODES, SKI_EVAL_EVERY, TASK_NAMES

    train_seed = _train_seed
    parser = subparsers.add_parser(
        "learning-speed",
        help="env steps and wall time for PPO to ski 80%% of unseen courses cleanly, against CartPole-v1",
        description="Train PPO (agents/hyperparams/ppo.yml) on the green and the blue slope, for each seed, until "
        "its deterministic clean-run rate on held-out validation courses reaches 80%; report the env steps and "
        "the training wall time (evaluations excluded) it took, and the clean-run rate of that model on test "
        "courses. SB3 PPO on CartPole-v1 with RL Zoo's tuned hyper-parameters (target: mean return 475) is "
        "timed in the same run as the reference. The default run takes up to about 25 minutes.",
        epilog=LEARNING_SPEED_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=train_seed, nargs="+", default=list(DEFAULT_SEEDS), help="training seeds")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES), help="what to learn")
    parser.add_argument(
        "--eval-every", type=positive_int, default=SKI_EVAL_EVERY, help="ski env steps between validations"
    )
    parser.add_argument(
        "--eval-episodes", type=positive_int, default=SKI_EVAL_EPISODES, help="ski validation courses per validation"
    )
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="cap every task's budget (green 4M, blue 8M, CartPole 100k steps); shortens the schedules too",
    )
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_learning_speed)


def _run_learning_speed(args: argparse.Namespace) -> int:
    from agents.benchmarks.learning import LearningConfig, default_tasks, run_learning, write_learning_report

    tasks = default_tasks(args.tasks, args.eval_every, args.eval_episodes, args.max_steps)
    config = LearningConfig(seeds=tuple(dict.fromkeys(args.seeds)), tasks=tuple(tasks))
    return _run_and_report(run_learning, write_learning_report, config, args)


def _add_automl(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.automl_speed import AutomlSpeedConfig

    defaults = AutomlSpeedConfig()
    parser = subparsers.add_parser(
        "automl",
        help="step cost of the table-backed architecture-search env and PPO's training speed on it",
        description="Time trendgym/ArchitectureSearch-v0 on its tabular benchmark (target: a step under 100 us) "
        "and MaskablePPO's learn() throughput on it, against CartPole-v1 and PPO in the same run.",
        epilog="examples:\n  python scripts/bench.py automl\n  python scripts/bench.py automl --repeats 2 --no-readme",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats, help="timed repeats")
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="env steps per repeat")
    parser.add_argument("--train-steps", type=positive_int, default=defaults.train_steps, help="PPO steps per repeat")
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="repeat r uses seed + r")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_automl)


def _run_automl(args: argparse.Namespace) -> int:
    from agents.benchmarks.automl_speed import AutomlSpeedConfig, run_automl_speed, write_automl_speed_report

    config = AutomlSpeedConfig(repeats=args.repeats, steps=args.steps, train_steps=args.train_steps, seed=args.seed)
    return _run_and_report(run_automl_speed, write_automl_speed_report, config, args)


LR_CONTROL_EXAMPLES = """examples:
  python scripts/bench.py lr-control               # the published run: every policy on every train and test instance
  python scripts/bench.py lr-control --sets test --policies cosine random --no-readme --out /tmp/bench
  python scripts/bench.py lr-control --max-instances 2 --no-readme --out /tmp/bench   # a quick look
"""


def _add_lr_control(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.lr_control import POLICY_NAMES, SET_NAMES, LrControlConfig

    defaults = LrControlConfig()
    parser = subparsers.add_parser(
        "lr-control",
        help="returns, crash rates and accuracies of the learning-rate schedules on LearningRateControl-v0",
        description="Train every instance of trendgym/LearningRateControl-v0's train and test sets once under each "
        "non-learning controller (constant, step decay and cosine schedules, the constant rate at the middle of "
        "the action range, a uniformly random controller), Box actions; report the mean return with its standard "
        "error, the crash rate, the final validation and test accuracies and the wall time of an episode. The "
        "default run takes about a minute.",
        epilog=LR_CONTROL_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--sets", nargs="+", choices=SET_NAMES, default=list(defaults.sets), help="instance sets")
    parser.add_argument(
        "--policies", nargs="+", choices=POLICY_NAMES, default=list(defaults.policies), help="controllers to run"
    )
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="the random controller's seed")
    parser.add_argument(
        "--max-instances", type=positive_int, default=None, help="only the first n instances of each set"
    )
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_lr_control)


def _run_lr_control(args: argparse.Namespace) -> int:
    from agents.benchmarks.lr_control import LrControlConfig, run_lr_control, write_lr_control_report

    config = LrControlConfig(
        sets=tuple(dict.fromkeys(args.sets)),
        policies=tuple(dict.fromkeys(args.policies)),
        seed=args.seed,
        max_instances=args.max_instances,
    )
    return _run_and_report(run_lr_control, write_lr_control_report, config, args)


COMPRESSION_DISTILL_EXAMPLES = """examples:
  python scripts/bench.py compression-distill          # KD on digits and MNIST-1D, ski policies, 5 seeds each
  python scripts/bench.py compression-distill --seeds 0 --no-agents --no-readme --out /tmp/bench   # a quick look
"""


def _add_compression_distill(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.compression_distill import DistillBenchConfig

    defaults = DistillBenchConfig()
    parser = subparsers.add_parser(
        "compression-distill",
        help="knowledge distillation against label training; ski policies distilled to under a tenth",
        description="Distil the zoo's digits and MNIST-1D classifiers into small students and train the same "
        "students on labels alone (test accuracy and errors over seeds); distil one green-slope PPO teacher per "
        "seed into a policy with about 7%% of its actor's parameters and score both on unseen courses. Trains "
        "the ski teachers first when runs/compression/teachers lacks them (about 2 minutes each).",
        epilog=COMPRESSION_DISTILL_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="student (and teacher) seeds"
    )
    parser.add_argument("--episodes", type=positive_int, default=defaults.eval_episodes, help="unseen ski courses")
    parser.add_argument("--no-agents", action="store_true", help="only the classifiers")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_compression_distill)


def _run_compression_distill(args: argparse.Namespace) -> int:
    from agents.benchmarks.compression_distill import (
        DistillBenchConfig,
        run_distill_bench,
        write_distill_bench_report,
    )

    config = DistillBenchConfig(
        seeds=tuple(dict.fromkeys(args.seeds)), eval_episodes=args.episodes, agents=not args.no_agents
    )
    return _run_and_report(run_distill_bench, write_distill_bench_report, config, args)


def _add_compression_policies(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.compression_policies import CompressionPoliciesConfig

    defaults = CompressionPoliciesConfig()
    parser = subparsers.add_parser(
        "compression-policies",
        help="ski policies in fp32, fp16 and int8: size, latency at batch 1 and 256, return",
        description="Take one green-slope PPO teacher per seed (trained first when runs/compression/teachers lacks "
        "it) in float32, float16 and int8 dynamic quantization; measure bytes and latency at batch 1 and 256 on "
        "one thread, and play the same unseen courses with each (return, clean-run rate, agreement with fp32).",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--seeds", type=non_negative_int, nargs="+", default=list(defaults.teacher_seeds), help="teacher seeds"
    )
    parser.add_argument("--episodes", type=positive_int, default=defaults.episodes, help="unseen courses")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_compression_policies)


def _run_compression_policies(args: argparse.Namespace) -> int:
    from agents.benchmarks.compression_policies import (
        CompressionPoliciesConfig,
        run_compression_policies,
        write_compression_policies_report,
    )

    config = CompressionPoliciesConfig(teacher_seeds=tuple(dict.fromkeys(args.seeds)), episodes=args.episodes)
    return _run_and_report(run_compression_policies, write_compression_policies_report, config, args)


def _add_compression_search(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.compression_search import CompressionSearchConfig
    from agents.compression.pruning import ALGOS
    from trends.compression.zoo import ZOO

    defaults = CompressionSearchConfig()
    parser = subparsers.add_parser(
        "compression-search",
        help="pruning at half the FLOPs and quantization under a size budget: RL agents against uniform, random, TPE",
        description="Search each zoo network's pruning (AMC, trendgym/Pruning-v0) and quantization (HAQ, "
        "trendgym/Quantization-v0) with RL agents, uniform rules, random search and TPE on the same number of "
        "episodes and seeds; fine-tune the pruned networks and report accuracy, FLOPs, parameters, size, latency. "
        "The default run takes about 6 minutes.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument("--episodes", type=positive_int, default=defaults.episodes, help="networks per search")
    parser.add_argument(
        "--prune-models", nargs="*", choices=list(ZOO), default=list(defaults.prune_models), help="networks to prune"
    )
    parser.add_argument(
        "--quantize-models",
        nargs="*",
        choices=list(ZOO),
        default=list(defaults.quantize_models),
        help="networks to quantize",
    )
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(defaults.rl_algos), help="RL agents")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_compression_search)


def _run_compression_search(args: argparse.Namespace) -> int:
    from agents.benchmarks.compression_search import (
        CompressionSearchConfig,
        run_compression_search,
        write_compression_search_report,
    )

    config = CompressionSearchConfig(
        seeds=tuple(dict.fromkeys(args.seeds)),
        episodes=args.episodes,
        prune_models=tuple(dict.fromkeys(args.prune_models)),
        quantize_models=tuple(dict.fromkeys(args.quantize_models)),
        rl_algos=tuple(dict.fromkeys(args.algos)),
    )
    return _run_and_report(run_compression_search, write_compression_search_report, config, args)


def _add_ensemble_agents(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.ensemble_agents import EnsembleAgentsConfig

    defaults = EnsembleAgentsConfig()
    parser = subparsers.add_parser(
        "ensemble-agents",
        help="five green ski agents alone and as one ensemble, on green and on blue",
        description="Play the green-slope PPO teachers (one per seed, trained first when runs/compression/teachers "
        "lacks them) alone and combined by majority and soft vote on the same unseen courses of the slope they "
        "trained on and of the next harder one: return, clean-run rate, gates passed, agreement of the members.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--seeds", type=non_negative_int, nargs="+", default=list(defaults.teacher_seeds), help="member seeds"
    )
    parser.add_argument("--episodes", type=positive_int, default=defaults.episodes, help="unseen courses per slope")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_ensemble_agents)


def _run_ensemble_agents(args: argparse.Namespace) -> int:
    from agents.benchmarks.ensemble_agents import (
        EnsembleAgentsConfig,
        run_ensemble_agents,
        write_ensemble_agents_report,
    )

    config = EnsembleAgentsConfig(teacher_seeds=tuple(dict.fromkeys(args.seeds)), episodes=args.episodes)
    return _run_and_report(run_ensemble_agents, write_ensemble_agents_report, config, args)


def _add_ensemble_combine(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.ensemble_combine import EnsembleCombineConfig
    from agents.ensemble.combination import METHODS

    defaults = EnsembleCombineConfig()
    parser = subparsers.add_parser(
        "ensemble-combine",
        help="RL selection of ensemble members against the best single member, averaging, Caruana, stacking",
        description="Combine each dataset's member pool (trained first when runs/ensemble/pools lacks it) with "
        "every method over the seeds, and report validation and test accuracy against the best single member.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--datasets", nargs="+", choices=["digits", "mnist1d"], default=list(defaults.datasets))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(defaults.methods), help="methods")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument("--rl-timesteps", type=positive_int, help="RL training steps (default: the yml file's)")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_ensemble_combine)


def _run_ensemble_combine(args: argparse.Namespace) -> int:
    from agents.benchmarks.ensemble_combine import (
        EnsembleCombineConfig,
        run_ensemble_combine,
        write_ensemble_combine_report,
    )

    config = EnsembleCombineConfig(
        datasets=tuple(dict.fromkeys(args.datasets)),
        methods=tuple(dict.fromkeys(args.methods)),
        seeds=tuple(dict.fromkeys(args.seeds)),
        rl_timesteps=args.rl_timesteps,
    )
    return _run_and_report(run_ensemble_combine, write_ensemble_combine_report, config, args)


def _add_transfer_curriculum(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.transfer_curriculum import CONDITIONS, CurriculumConfig

    defaults = CurriculumConfig()
    parser = subparsers.add_parser(
        "transfer-curriculum",
        help="green-to-blue (or black) transfer against training there from scratch: steps to a target",
        description="Start PPO on the blue or black slope from each seed's green teacher (its whole policy, or its "
        "hidden layers only) or from scratch, train with the same recipe and budget, and report the steps to the "
        "target on held-out courses (blue: 40% clean runs in 600k steps; black: a mean return of 0 in 1M steps, "
        "clean runs being out of reach there) and the learning curves. Trains the green teachers first when "
        "runs/compression/teachers lacks them.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--slope", choices=["blue", "black"], default=defaults.slope, help="the harder slope")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument(
        "--conditions", nargs="+", choices=CONDITIONS, default=list(defaults.conditions), help="starting points"
    )
    parser.add_argument(
        "--budget", type=positive_int, help="steps per run at most (default: 600k on blue, 1M on black)"
    )
    parser.add_argument("--workers", type=positive_int, default=defaults.workers, help="processes, a seed each")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_transfer_curriculum)


def _run_transfer_curriculum(args: argparse.Namespace) -> int:
    from agents.benchmarks.transfer_curriculum import CurriculumConfig, run_curriculum, write_curriculum_report

    changes = {
        "seeds": tuple(dict.fromkeys(args.seeds)),
        "conditions": tuple(dict.fromkeys(args.conditions)),
        "workers": args.workers,
    }
    if args.budget is not None:
        changes["budget"] = args.budget
    config = CurriculumConfig.for_slope(args.slope, **changes)
    return _run_and_report(run_curriculum, write_curriculum_report, config, args)


def _add_transfer_labels(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.transfer_labels import TransferBenchConfig

    defaults = TransferBenchConfig()
    parser = subparsers.add_parser(
        "transfer-labels",
        help="supervised and self-supervised pre-training against scratch at 1%%, 5%%, 10%%, 100%% of the labels",
        description="Pre-train an encoder on classes 0-4 (supervised) or on every unlabelled input (contrastive), "
        "then train on classes 5-9 with a fraction of their labels (linear probe or fine-tune), against the same "
        "network from scratch and a frozen random encoder; test accuracy over seeds, digits and MNIST-1D.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--datasets", nargs="+", choices=["digits", "mnist1d"], default=list(defaults.datasets))
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_transfer_labels)


def _run_transfer_labels(args: argparse.Namespace) -> int:
    from agents.benchmarks.transfer_labels import TransferBenchConfig, run_transfer_bench, write_transfer_bench_report

    config = TransferBenchConfig(datasets=tuple(dict.fromkeys(args.datasets)), seeds=tuple(dict.fromkeys(args.seeds)))
    return _run_and_report(run_transfer_bench, write_transfer_bench_report, config, args)


def _add_imitation(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.imitation import ImitationBenchConfig

    defaults = ImitationBenchConfig()
    parser = subparsers.add_parser(
        "imitation",
        help="GAIL and behaviour cloning against the number of expert demonstrations, on the green slope",
        description="Record the heuristic skier's demonstrations, train GAIL (PPO on the discriminator's reward) "
        "and behaviour cloning from the first n of them, and score both on unseen courses as a fraction of the "
        "expert's return above a random policy's.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument(
        "--demos", type=positive_int, nargs="+", default=list(defaults.demo_episodes), help="demonstration counts"
    )
    parser.add_argument("--timesteps", type=positive_int, default=defaults.gail_timesteps, help="GAIL agent steps")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_imitation)


def _run_imitation(args: argparse.Namespace) -> int:
    from agents.benchmarks.imitation import ImitationBenchConfig, run_imitation_bench, write_imitation_bench_report

    config = ImitationBenchConfig(
        seeds=tuple(dict.fromkeys(args.seeds)),
        demo_episodes=tuple(sorted(set(args.demos))),
        gail_timesteps=args.timesteps,
    )
    return _run_and_report(run_imitation_bench, write_imitation_bench_report, config, args)


def _add_gan_modes(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.gan_modes import GanModesConfig

    defaults = GanModesConfig()
    parser = subparsers.add_parser(
        "gan-modes",
        help="mode collapse: the vanilla GAN against PacGAN on the 8-Gaussian ring and the 25-Gaussian grid",
        description="Train the vanilla GAN and PacGAN (packed discriminator) on the 2-D mixtures over seeds and "
        "report modes covered, the share of high-quality samples and the reverse KL to uniform mode weights.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument("--packs", type=positive_int, nargs="+", default=list(defaults.packs), help="1: vanilla")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_gan_modes)


def _run_gan_modes(args: argparse.Namespace) -> int:
    from agents.benchmarks.gan_modes import GanModesConfig, run_gan_modes, write_gan_modes_report

    config = GanModesConfig(seeds=tuple(dict.fromkeys(args.seeds)), packs=tuple(dict.fromkeys(args.packs)))
    return _run_and_report(run_gan_modes, write_gan_modes_report, config, args)


def _add_gan_augment(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.gan_modes import GanAugmentConfig

    defaults = GanAugmentConfig()
    parser = subparsers.add_parser(
        "gan-augment",
        help="a classifier on few digits labels with and without a conditional GAN's samples",
        description="Train a conditional GAN on a few labelled digits per class, add its samples to the same few "
        "labels and compare the classifier's test accuracy with the real labels alone, over seeds.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument(
        "--labels-per-class", type=positive_int, nargs="+", default=list(defaults.labels_per_class), help="real labels"
    )
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_gan_augment)


def _run_gan_augment(args: argparse.Namespace) -> int:
    from agents.benchmarks.gan_modes import GanAugmentConfig, run_gan_augment, write_gan_augment_report

    config = GanAugmentConfig(
        seeds=tuple(dict.fromkeys(args.seeds)), labels_per_class=tuple(dict.fromkeys(args.labels_per_class))
    )
    return _run_and_report(run_gan_augment, write_gan_augment_report, config, args)


def _add_pixel_transfer(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.pixel_transfer import CONDITIONS, PixelTransferConfig

    defaults = PixelTransferConfig()
    parser = subparsers.add_parser(
        "pixel-transfer",
        help="PPO on ski pixels with a CNN encoder pre-trained on frames (supervised or contrastive) vs scratch",
        description="Pre-train a NatureCNN encoder on ski frames (regressing the state vector, or SimCLR), then "
        "train PPO on pixels (two frames 0.4 s apart) with it frozen or fine-tuned, against a CNN from scratch, for "
        "the same budget; decisions and training time to the target return, validation curves, test return and "
        "clean-run rate. Jobs run in --workers processes; the default run takes about 1.5 hours on two free cores.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument(
        "--conditions", nargs="+", choices=CONDITIONS, default=list(defaults.conditions), help="encoders"
    )
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="PPO decisions per run")
    parser.add_argument(
        "--target", type=float, default=defaults.target, help="mean validation return that counts as skiing down"
    )
    parser.add_argument("--workers", type=positive_int, default=defaults.workers, help="processes")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_pixel_transfer)


def _run_pixel_transfer(args: argparse.Namespace) -> int:
    from agents.benchmarks.pixel_transfer import (
        PixelTransferConfig,
        run_pixel_transfer,
        write_pixel_transfer_report,
    )

    config = PixelTransferConfig(
        seeds=tuple(dict.fromkeys(args.seeds)),
        conditions=tuple(dict.fromkeys(args.conditions)),
        budget=args.budget,
        target=args.target,
        workers=args.workers,
    )
    return _run_and_report(run_pixel_transfer, write_pixel_transfer_report, config, args)


def _add_feature_engineering(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.feature_engineering import BUDGETS, FeatureEngineeringConfig
    from agents.feature_search import FEATURE_METHODS
    from trends.features import FEATURE_DATASETS

    defaults = FeatureEngineeringConfig()
    parser = subparsers.add_parser(
        "feature-engineering",
        help="MaskablePPO on FeatureEngineering-v0 against random search, expand-reduce and the raw features",
        description="Engineer the features of every dataset with every method (agents/feature_search.py) over "
        "seeds, the same budget of steps for the RL agent and random search: cross-validated and test score of "
        "the best set, gain over the raw features, its size, evaluations, wall time, and on the synthetic dataset "
        "whether the known features were found. The default run took 58 minutes on two cores busy with other jobs.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="seeds")
    parser.add_argument(
        "--datasets", nargs="+", choices=FEATURE_DATASETS, default=list(defaults.datasets), help="datasets"
    )
    parser.add_argument("--methods", nargs="+", choices=FEATURE_METHODS, default=list(defaults.methods), help="methods")
    parser.add_argument(
        "--budget",
        type=positive_int,
        help="steps per rl and random search on every dataset (default: "
        + ", ".join(f"{d} {b}" for d, b in BUDGETS.items())
        + ")",
    )
    parser.add_argument("--model", choices=("linear", "gbm"), default=defaults.model, help="the scoring model")
    parser.add_argument("--workers", type=positive_int, default=defaults.workers, help="processes")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_feature_engineering)


def _run_feature_engineering(args: argparse.Namespace) -> int:
    from agents.benchmarks.feature_engineering import (
        BUDGETS,
        FeatureEngineeringConfig,
        run_feature_engineering,
        write_feature_engineering_report,
    )

    datasets = tuple(dict.fromkeys(args.datasets))
    config = FeatureEngineeringConfig(
        datasets=datasets,
        methods=tuple(dict.fromkeys(args.methods)),
        seeds=tuple(dict.fromkeys(args.seeds)),
        budgets={d: args.budget or BUDGETS[d] for d in datasets},
        model=args.model,
        workers=args.workers,
    )
    return _run_and_report(run_feature_engineering, write_feature_engineering_report, config, args)


def _add_tuning(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.tuning import TuningBenchConfig

    defaults = TuningBenchConfig()
    parser = subparsers.add_parser(
        "tuning",
        help="a short train.py --optimize run on the green slope against the hand-tuned PPO entry",
        description="Tune PPO on the green slope (TPE, median pruner, short trials), then retrain the best "
        "hyper-parameters and ppo.yml's hand-tuned entry at the same budget over several seeds and judge both on "
        "the same test courses. The study resumes if rerun. The default run takes about 20 minutes on two cores.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--slope", choices=("green", "blue", "black"), default=defaults.slope, help="the slope")
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="env steps per trial and run")
    parser.add_argument("--n-trials", type=positive_int, default=defaults.n_trials, help="trials of the tuning")
    parser.add_argument("--eval-freq", type=positive_int, default=defaults.eval_freq, help="steps between evaluations")
    parser.add_argument("--eval-episodes", type=positive_int, default=defaults.eval_episodes, help="courses each")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=list(defaults.seeds), help="retraining")
    parser.add_argument("--test-episodes", type=positive_int, default=defaults.test_episodes, help="test courses")
    parser.add_argument("--study-name", help="the tuning study (default: from the settings, so a rerun resumes it)")
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_tuning)


def _run_tuning(args: argparse.Namespace) -> int:
    from agents.benchmarks.tuning import TuningBenchConfig, run_tuning_bench, write_tuning_report

    config = TuningBenchConfig(
        slope=args.slope,
        budget=args.budget,
        n_trials=args.n_trials,
        eval_freq=args.eval_freq,
        eval_episodes=args.eval_episodes,
        seeds=tuple(dict.fromkeys(args.seeds)),
        test_episodes=args.test_episodes,
        study_name=args.study_name,
    )
    return _run_and_report(run_tuning_bench, write_tuning_report, config, args)


def _add_workers(subparsers: argparse._SubParsersAction) -> None:
    from agents.benchmarks.workers import STORAGES, WorkersBenchConfig
    from agents.workers import WORKER_METHODS

    defaults = WorkersBenchConfig()
    parser = subparsers.add_parser(
        "workers",
        help="wall time of a table-backed search with 1, 2, 4 worker processes; storage overhead per trial",
        description="Fill one study with --budget trials of a table-backed search using 1, 2 and 4 worker "
        "processes, on a SQLite file and on a PostgreSQL server started on loopback for the run (Debian's "
        "postgresql package), and time one worker per trial on memory, SQLite and PostgreSQL.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--method", choices=WORKER_METHODS, default=defaults.method, help="the search method")
    parser.add_argument("--budget", type=positive_int, default=defaults.budget, help="COMPLETE trials per search")
    parser.add_argument("--workers", type=positive_int, nargs="+", default=list(defaults.workers), help="processes")
    parser.add_argument("--storages", nargs="+", choices=STORAGES, default=list(defaults.storages), help="databases")
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats, help="repeats of every setting")
    parser.add_argument(
        "--overhead-trials", type=positive_int, default=defaults.overhead_trials, help="trials timed per storage"
    )
    _add_report_arguments(parser)
    parser.set_defaults(func=_run_workers)


def _run_workers(args: argparse.Namespace) -> int:
    from agents.benchmarks.workers import WorkersBenchConfig, run_workers_bench, write_workers_report

    config = WorkersBenchConfig(
        method=args.method,
        budget=args.budget,
        workers=tuple(sorted(set(args.workers))),
        storages=tuple(dict.fromkeys(args.storages)),
        repeats=args.repeats,
        overhead_trials=args.overhead_trials,
    )
    return _run_and_report(run_workers_bench, write_workers_report, config, args)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_ski,
    _add_baselines,
    _add_learning,
    _add_learning_speed,
    _add_automl,
    _add_lr_control,
    _add_compression_distill,
    _add_compression_policies,
    _add_compression_search,
    _add_ensemble_agents,
    _add_ensemble_combine,
    _add_transfer_curriculum,
    _add_transfer_labels,
    _add_imitation,
    _add_gan_modes,
    _add_gan_augment,
    _add_pixel_transfer,
    _add_feature_engineering,
    _add_tuning,
    _add_workers,
]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bench.py",
        description="Run a trendgym benchmark, print its table and write docs/bench/<name>.md|json and the "
        "README section between <!-- bench:<name> --> markers.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OSError as error:  # an unwritable --out or README: the user's to fix, so no traceback
        print(f"bench.py: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; reports from earlier runs are left as they were", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
