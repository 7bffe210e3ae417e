"""Make a trained network or agent smaller and faster: prune it, quantize it or distil it, and compare the result
with the original (accuracy or return, parameters, FLOPs, bytes, latency at batch 1 and 256).

Examples:
  python scripts/compress.py prune --model mnist1d-cnn --target-flops 0.5 --method rl --algo td3   # AMC
  python scripts/compress.py prune --model digits-mlp --target-flops 0.5 --method uniform
  python scripts/compress.py prune --method tpe --episodes 100 --seed 1 --tensorboard-log runs/compression/tb
  python scripts/compress.py quantize --model mnist1d-cnn --method rl --size-budget 0.1    # HAQ: bits per layer
  python scripts/compress.py quantize --model digits-mlp --method int8                     # torch int8 dynamic
  python scripts/compress.py quantize --run runs/ppo/Ski-v0_1 --method int8 --export onnx  # a trained agent
  python scripts/compress.py distill --teacher runs/ppo/Ski-v0_1 --student-width 16        # policy distillation
  python scripts/compress.py distill --dataset digits --student-width 16 --transfer-size 200   # Hinton KD

Every command prints its table and writes it as markdown and CSV under --out (default runs/compression/reports).
Pruning and quantization search with an agent in trendgym/Pruning-v0 or trendgym/Quantization-v0 (method rl) or
with a baseline; the searched network is scored without fine-tuning, as AMC and HAQ search, and the chosen one
is then fine-tuned (pruning) before its test accuracy is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import (
    HelpFormatter,
    examples_of,
    output_dir,
    positive_float,
    positive_int,
    run_subcommand,
    script_command,
    share,
    subcommand_parser,
)
from agents.compression.report import Report
from agents.runs import RunError

DEFAULT_OUT = Path("runs") / "compression" / "reports"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of the search, the agent or the student")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed forward calls per latency figure")


def _add_prune(subparsers: argparse._SubParsersAction) -> None:
    from agents.compression.pruning import ALGOS, METHODS
    from trends.compression.zoo import ZOO

    parser = subparsers.add_parser(
        "prune",
        help="structured pruning under a FLOPs or parameter budget (AMC)",
        description="Choose how many channels each layer keeps (an RL agent in trendgym/Pruning-v0, uniform, "
        "random or TPE), prune the network for real with torch-pruning, fine-tune it, and compare.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--model", choices=list(ZOO), default="mnist1d-cnn", help="the trained network")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--target-flops", type=share, help="share of the FLOPs to keep (default 0.5)")
    budget.add_argument("--target-params", type=share, help="share of the parameters to keep instead")
    parser.add_argument("--method", choices=METHODS, default="rl", help="who chooses the preserve ratios")
    parser.add_argument("--algo", choices=ALGOS, default="td3", help="the RL algorithm of --method rl")
    parser.add_argument("--episodes", type=positive_int, help="pruned networks tried by the search (default: its own)")
    parser.add_argument("--fine-tune-epochs", type=int, default=None, help="epochs of fine-tuning after pruning")
    parser.add_argument("--tensorboard-log", type=output_dir, help="write the search's episodes to TensorBoard here")
    _common(parser)
    parser.set_defaults(handler=_run_prune)


def _add_quantize(subparsers: argparse._SubParsersAction) -> None:
    from agents.compression.policies import POLICY_FORMATS
    from agents.compression.quantization import METHODS
    from trends.compression.zoo import ZOO

    parser = subparsers.add_parser(
        "quantize",
        help="fewer bits per weight: mixed precision by RL (HAQ), 8-bit, float16, int8",
        description="Quantize a zoo network (--model) with any method, or a trained agent's policy (--run) to "
        "float16 or int8, and compare with float32.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--model", choices=list(ZOO), help="a trained network of the zoo (default mnist1d-cnn)")
    what.add_argument("--run", help="a trained agent: run folder or model zip (methods fp16, int8)")
    parser.add_argument(
        "--method", choices=METHODS, help="how the weights are quantized (default: rl for --model, int8 for --run)"
    )
    parser.add_argument("--size-budget", type=share, default=0.1, help="weight bytes allowed, share of float32 (rl)")
    parser.add_argument("--episodes", type=positive_int, help="bit-width choices the search tries (rl)")
    parser.add_argument("--eval-episodes", type=positive_int, default=50, help="unseen episodes to score an agent")
    parser.add_argument("--tensorboard-log", type=output_dir, help="write the search's episodes to TensorBoard here")
    parser.add_argument("--export", choices=["onnx"], help="also export the quantized policy (--run)")
    parser.set_defaults(handler=_run_quantize, policy_formats=POLICY_FORMATS)
    _common(parser)


def _add_distill(subparsers: argparse._SubParsersAction) -> None:
    from agents.compression.distillation import STUDENT_KINDS, TEACHERS

    parser = subparsers.add_parser(
        "distill",
        help="a small student taught by a trained teacher: an agent (--teacher) or a classifier (--dataset)",
        description="Policy distillation (Rusu et al. 2016, DAgger) of a trained agent into a small policy network, "
        "or knowledge distillation (Hinton et al. 2015) of the zoo's classifier of a dataset, against the same "
        "student trained on the labels alone.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--teacher", help="a trained agent: run folder or model zip")
    what.add_argument("--dataset", choices=list(TEACHERS), help="distil the zoo's classifier of this dataset")
    parser.add_argument("--student-width", type=positive_int, default=16, help="units of each student layer")
    parser.add_argument("--student-depth", type=positive_int, default=1, help="hidden layers of a policy student")
    parser.add_argument("--student-kind", choices=STUDENT_KINDS, default="narrow", help="classifier student shape")
    parser.add_argument("--transfer-size", type=positive_int, help="training samples the classifier student sees")
    parser.add_argument("--temperature", type=positive_float, default=4.0, help="softmax temperature T")
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft targets (classifier)")
    parser.add_argument("--iterations", type=positive_int, default=6, help="DAgger iterations (agent)")
    parser.add_argument("--steps-per-iteration", type=positive_int, default=1000, help="states per iteration")
    parser.add_argument("--eval-episodes", type=positive_int, default=50, help="unseen episodes to score both")
    parser.add_argument("--export", choices=["onnx"], help="also export the student policy (--teacher)")
    parser.set_defaults(handler=_run_distill)
    _common(parser)


def _run_prune(args: argparse.Namespace) -> Report:
    from agents.compression.pruning import prune_model

    target, preserve = ("params", args.target_params) if args.target_params else ("flops", args.target_flops or 0.5)
    options = {"episodes": args.episodes, "fine_tune_epochs": args.fine_tune_epochs}
    outcome = prune_model(
        model=args.model,
        target=target,
        preserve=preserve,
        method=args.method,
        algo=args.algo,
        seed=args.seed,
        tensorboard_log=args.tensorboard_log,
        progress=_progress,
        **{k: v for k, v in options.items() if v is not None},
    )
    ratios = ", ".join(f"{name} {ratio:.2f}" for name, ratio in outcome.preserve_ratios.items())
    print(f"preserve ratios: {ratios}")
    method = f"{args.method}-{args.algo}" if args.method == "rl" else args.method
    return _finish(outcome.report, args, f"prune-{args.model}-{target}{preserve:g}-{method}-seed{args.seed}")


def _run_quantize(args: argparse.Namespace) -> Report:
    if args.run is not None:
        from agents.compression.policies import check_onnx_export, compress_policy, export_onnx, policy_report
        from agents.runs import load_agent

        args.method = args.method or "int8"
        if args.method not in args.policy_formats:
            raise ValueError(f"a policy (--run) is quantized with --method fp16 or int8, not {args.method}")
        if args.export:
            check_onnx_export(args.method)  # before the 15 s of scoring, not after them
        report = policy_report(args.run, formats=(args.method,), episodes=args.eval_episodes, repeats=args.repeats)
        if args.export:
            path = export_onnx(
                compress_policy(load_agent(args.run), args.method), args.out / f"policy-{args.method}.onnx"
            )
            print(f"exported {path}")
        return _finish(report, args, f"quantize-policy-{args.method}")
    if args.export:
        raise ValueError("--export onnx exports a policy: give --run")
    from agents.compression.quantization import quantize_model

    model, args.method = args.model or "mnist1d-cnn", args.method or "rl"
    options = {"episodes": args.episodes}
    outcome = quantize_model(
        model=model,
        method=args.method,
        size_budget=args.size_budget,
        seed=args.seed,
        tensorboard_log=args.tensorboard_log,
        progress=_progress,
        **{k: v for k, v in options.items() if v is not None},
    )
    if outcome.bits is not None:
        print(f"bits per layer: {list(outcome.bits)}")
    return _finish(outcome.report, args, f"quantize-{model}-{args.method}-seed{args.seed}")


def _run_distill(args: argparse.Namespace) -> Report:
    if args.dataset is not None:
        from agents.compression.distillation import CLASSIFIER_DISTILL, distill_classifier

        if args.export:
            raise ValueError("--export onnx exports a policy: give --teacher")
        if not 0.0 <= args.alpha <= 1.0:
            raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
        config = dataclasses.replace(CLASSIFIER_DISTILL, temperature=args.temperature, alpha=args.alpha, seed=args.seed)
        result = distill_classifier(
            args.dataset, args.student_width, args.student_kind, args.transfer_size, config, repeats=args.repeats
        )
        errors = ", ".join(f"{name} {n}" for name, n in result.test_errors.items())
        print(f"test errors (of {len(result.teacher.dataset.y_test)}): {errors}")
        return _finish(
            result.report, args, f"distill-{args.dataset}-{args.student_kind}{args.student_width}-seed{args.seed}"
        )
    from agents.compression.distillation import distill_agent
    from agents.distill import PolicyDistillConfig

    if args.export:
        from agents.compression.policies import check_onnx_export

        check_onnx_export("fp32")  # before the distillation, not after it

    config = PolicyDistillConfig(
        iterations=args.iterations,
        steps_per_iteration=args.steps_per_iteration,
        temperature=args.temperature,
        seed=args.seed,
    )
    result = distill_agent(
        args.teacher, args.student_width, args.student_depth, config, args.eval_episodes, repeats=args.repeats
    )
    print(f"student saved in {result.run_dir} (watch it: {script_command('watch.py')} {result.run_dir})")
    if args.export:
        from agents.compression.policies import compress_policy, export_onnx
        from agents.runs import load_agent

        path = export_onnx(compress_policy(load_agent(result.run_dir), "fp32"), result.run_dir / "policy.onnx")
        print(f"exported {path}")
    return _finish(result.report, args, f"distill-agent-{args.student_depth}x{args.student_width}-seed{args.seed}")


def _finish(report: Report, args: argparse.Namespace, stem: str) -> Report:
    print()
    print(report.markdown())
    md, table = report.write(args.out, stem)
    print(f"wrote {md} and {table}", file=sys.stderr)
    return report


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("compress.py", __doc__, (_add_prune, _add_quantize, _add_distill))


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    from agents.compression.policies import ExportUnavailable

    return run_subcommand(build_parser(), argv, runtime_errors=(RunError, ExportUnavailable, OSError))


if __name__ == "__main__":
    sys.exit(main())
