"""GANs: a generator (the counterfeiter) against a discriminator (the police) on the 2-D mode-collapse benchmarks,
vanilla or packed (PacGAN); a conditional GAN's labelled digits added to a classifier's few labels; and a view of
the generator's samples moving toward the data as it trains.

Examples:
  python scripts/gan.py modes --dataset ring                      # the vanilla GAN on 8 Gaussians on a ring
  python scripts/gan.py modes --dataset grid --pack 2 --seed 3    # PacGAN2 on the 5x5 grid
  python scripts/gan.py modes --dataset ring --tensorboard-log runs/gan/tb --plot runs/gan/ring.png
  python scripts/gan.py augment --labels-per-class 5 10 --forgeries-per-label 1 10 --seeds 0 1 2
  python scripts/gan.py watch --dataset ring --pack 2             # train (~100 s), then replay in a window
  python scripts/gan.py watch --snapshots runs/gan/reports/modes-ring-pack1-seed0.npz --record ring.gif
  python scripts/gan.py gail --demos 4 --timesteps 1e6          # GAIL on the ski slope, against behaviour cloning
  python scripts/gan.py gail --expert runs/ppo/Ski-v0_1 --demos 16 --slope blue   # the run: runs/gail/Ski-v0_<n>

`modes` prints the metrics (modes covered, share of high-quality samples, reverse KL) and writes them as markdown
and CSV under --out, with the generator's snapshots (.npz) that `watch --snapshots` replays. `augment` prints the
accuracy table and writes it into a new folder under --out for each run (augment_1, augment_2, ...). `watch` trains
(a progress line per tenth of its steps) unless given --snapshots, then replays in a pygame window that stays open
until closed (or --seconds), or writes a GIF with --record (needed without a screen). `gail` imitates an expert
skier (the heuristic, or a trained run) from its demonstrations: the discriminator is the police, the agent the
counterfeiter of the expert's state-action pairs; it saves the agent as a run folder (watch.py and evaluate.py take
it) and compares it with behaviour cloning on unseen courses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import (
    HelpFormatter,
    examples_of,
    non_negative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    run_subcommand,
    script_command,
    subcommand_parser,
)
from agents.tables import write_table
from trends.gan.mixtures import MIXTURES, make_mixture
from trends.gan.packing import (
    ModeGanConfig,
    ModeGanResult,
    Probe,
    Snapshots,
    describe,
    load_snapshots,
    save_snapshots,
)

DEFAULT_OUT = Path("runs") / "gan" / "reports"
PROGRESS_LINES = 10  # progress lines of a training: one per tenth of its steps


def _add_gan_arguments(parser: argparse.ArgumentParser) -> None:
    """The 2-D GAN's arguments, shared by `modes` and `watch` (ModeGanConfig's names)."""
    defaults = ModeGanConfig()
    parser.add_argument("--dataset", choices=MIXTURES, default="ring", help="8 modes on a ring or 25 on a grid")
    parser.add_argument("--pack", type=positive_int, default=1, help="samples the police judge at once (PacGAN m)")
    parser.add_argument("--steps", type=positive_int, default=defaults.steps, help="training steps")
    parser.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate, help="Adam's")
    parser.add_argument("--log-every", type=positive_int, default=defaults.log_every, help="steps per snapshot")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="weights, noise and real samples")


def _add_modes(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "modes",
        help="train a GAN or PacGAN on the ring or the grid and score its modes",
        description="Train a 2-D GAN (packed with --pack > 1) and print modes covered, high-quality share and "
        "reverse KL; write them and the generator's snapshots under --out.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    _add_gan_arguments(parser)
    parser.add_argument("--tensorboard-log", type=output_dir, help="write losses, accuracies and scatter plots here")
    parser.add_argument("--plot", type=output_file, help="also save the final samples' scatter plot as this PNG")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the table and snapshots")
    parser.set_defaults(handler=_run_modes)


def _add_augment(subparsers: argparse._SubParsersAction) -> None:
    from trends.gan.conditional import ConditionalGanConfig

    parser = subparsers.add_parser(
        "augment",
        help="a digits classifier on few labels, with and without a conditional GAN's forgeries",
        description="For each label count and seed: train a cGAN on the few labelled digits, and a classifier "
        "on them without and with the cGAN's forgeries; print and write the test accuracies.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--labels-per-class", type=positive_int, nargs="+", default=[5, 10], help="real labels")
    parser.add_argument(
        "--forgeries-per-label", type=positive_int, nargs="+", default=[1, 10], help="forgeries per real digit"
    )
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2], help="one trial per seed")
    parser.add_argument("--steps", type=positive_int, default=ConditionalGanConfig().steps, help="cGAN steps")
    parser.add_argument("--tensorboard-log", type=output_dir, help="write each cGAN's losses and digit grids here")
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_augment)


def _add_watch(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="replay a 2-D GAN's samples moving toward the data, in a window or as a GIF",
        description="Replay the snapshots of a `modes` run (--snapshots), or train one first with the `modes` "
        "arguments; show it in a pygame window, or record a GIF with --record.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--snapshots", type=Path, help="an .npz file `modes` wrote (default: train now)")
    _add_gan_arguments(parser)
    parser.add_argument("--record", type=output_file, help="write a GIF here instead of opening a window")
    parser.add_argument("--fps", type=positive_float, default=10.0, help="snapshots a second")
    parser.add_argument(
        "--seconds", type=positive_float, help="close the window this long after it opens (default: when you close it)"
    )
    parser.set_defaults(handler=_run_watch)


def _config(args: argparse.Namespace) -> ModeGanConfig:
    return ModeGanConfig(
        pack=args.pack, steps=args.steps, learning_rate=args.learning_rate, log_every=args.log_every, seed=args.seed
    )


def _train(args: argparse.Namespace, tensorboard_log: Path | None = None) -> ModeGanResult:
    from trends.gan.packing import train_mode_gan

    mixture, config = make_mixture(args.dataset), _config(args)
    print(f"training {describe(config, mixture)} for {config.steps} steps...", file=sys.stderr, flush=True)
    progress = _progress_probe(config.steps)
    if tensorboard_log is None:
        return train_mode_gan(mixture, config, progress)
    from trends.gan.board import GanBoard, mode_gan_probe

    with GanBoard(tensorboard_log) as board:
        to_board = mode_gan_probe(board, mixture)

        def both(step, scalars, samples) -> None:
            to_board(step, scalars, samples)
            progress(step, scalars, samples)

        return train_mode_gan(mixture, config, both)


def _progress_probe(total: int) -> Probe:
    """A line on stderr at the first snapshot past each tenth of the ``total`` steps (the default 5000 take about
    100 s): how far, how long, and how near the samples are to the modes, so a training is never silent."""
    start, next_line = time.monotonic(), total / PROGRESS_LINES

    def probe(step: int, scalars: dict[str, float], samples: object) -> None:
        nonlocal next_line
        if step < next_line and step != total:
            return
        while next_line <= step:
            next_line += total / PROGRESS_LINES
        print(
            f"step {step}/{total} ({step / total:.0%}, {time.monotonic() - start:.0f} s): distance to modes "
            f"{scalars['charts/distance_to_modes']:.3f}, police loss {scalars['losses/discriminator']:.3f}, "
            f"counterfeiter loss {scalars['losses/generator']:.3f}",
            file=sys.stderr,
            flush=True,
        )

    return probe


def _run_modes(args: argparse.Namespace) -> None:
    from agents.benchmarks.report import markdown_table

    result = _train(args, args.tensorboard_log)
    m, config = result.metrics, result.config
    print(f"{describe(config, result.mixture)}: {m.describe()}")
    stem = f"modes-{args.dataset}-pack{config.pack}-seed{config.seed}"
    header = ["dataset", "pack", "seed", "steps", "modes_covered", "n_modes", "high_quality", "reverse_kl"]
    row = [
        args.dataset,
        config.pack,
        config.seed,
        config.steps,
        m.modes_covered,
        m.n_modes,
        m.high_quality,
        m.reverse_kl,
    ]
    cells = [str(v) for v in row[:6]] + [f"{m.high_quality:.1%}", f"{m.reverse_kl:.3f}"]
    title = f"{describe(config, result.mixture)}, {config.steps} steps"
    paths = write_table(args.out, stem, title, markdown_table(header, [cells]), header, [row])
    save_snapshots(Snapshots.of(result), args.out / f"{stem}.npz")
    print(f"wrote {paths[0]}, {paths[1]} and {args.out / f'{stem}.npz'}", file=sys.stderr)
    if args.plot is not None:
        _save_plot(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)


def _save_plot(result: ModeGanResult, path: Path) -> None:
    from trends.files import atomic_write
    from trends.gan.board import scatter_figure

    figure = scatter_figure(result.samples, result.mixture, describe(result.config, result.mixture))
    atomic_write(path, lambda f: figure.savefig(f, format="png"))


def _run_augment(args: argparse.Namespace) -> None:
    from agents.benchmarks.gan_modes import GanAugmentConfig, run_gan_augment
    from agents.runs import numbered_dir
    from trends.gan.conditional import ConditionalGanConfig

    config = GanAugmentConfig(
        seeds=tuple(args.seeds),
        labels_per_class=tuple(dict.fromkeys(args.labels_per_class)),
        forgeries_per_label=tuple(dict.fromkeys(args.forgeries_per_label)),
        gan=ConditionalGanConfig(steps=args.steps),
    )
    result = run_gan_augment(config, lambda line: print(line, file=sys.stderr, flush=True), args.tensorboard_log)
    print(result.to_markdown())
    header = ["labels_per_class", "generated_per_class", "seed", "real_only", "augmented", "gain", "fidelity"]
    rows = [
        [t.labels_per_class, t.generated_per_class, t.seed, t.real_only, t.augmented, t.gain, t.fidelity]
        for t in result.trials
    ]
    title = "A digits classifier on few labels, with and without a conditional GAN's forgeries"
    folder = numbered_dir(args.out, "augment")  # its own folder: another run's table is never overwritten
    paths = write_table(folder, "augment", title, result.to_markdown(), header, rows)
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)


def _run_watch(args: argparse.Namespace) -> None:
    from agents.recording import DisplayUnavailable, display_available
    from envs.gan_view import play, record_gif

    if args.record is not None and args.record.suffix.lower() != ".gif":
        raise ValueError(f"cannot record to {args.record}: the file must end in .gif")
    if args.record is not None and args.seconds is not None:
        raise ValueError("--seconds limits the window; a GIF (--record) is as long as its snapshots")
    if args.record is None and not display_available():
        raise DisplayUnavailable("no screen to show a window on; pass --record FILE.gif")
    snapshots = load_snapshots(args.snapshots) if args.snapshots else Snapshots.of(_train(args))
    if args.record is not None:
        frames = record_gif(snapshots, args.record, fps=args.fps)
        print(f"wrote {args.record} ({frames} frames)", file=sys.stderr)
    else:
        until = f"for {args.seconds:g} s" if args.seconds is not None else "until you close it (or press Esc or Q)"
        print(f"replaying {len(snapshots.steps)} snapshots; the window stays open {until}", file=sys.stderr)
        play(snapshots, fps=args.fps, seconds=args.seconds)


def _add_gail(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gail",
        help="GAIL on the ski slope from an expert's demonstrations, against behaviour cloning",
        description="Record the expert's demonstrations, train GAIL (PPO on the discriminator's reward) and "
        "behaviour cloning from them, and score expert, GAIL, BC and a random skier on the same unseen courses.",
        epilog=examples_of(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--expert", help="a trained run to imitate (default: the heuristic skier)")
    parser.add_argument("--slope", choices=["green", "blue", "black"], default="green", help="the slope")
    parser.add_argument("--demos", type=positive_int, default=4, help="expert episodes to learn from")
    parser.add_argument("--timesteps", type=positive_int, default=1_000_000, help="GAIL agent steps")
    parser.add_argument("--episodes", type=positive_int, default=50, help="unseen courses to score on")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="demonstrations' courses and learners")
    parser.add_argument(
        "--tensorboard-log",
        type=Path,
        default=Path("runs"),
        help="root of the run folders, as train.py's: the GAIL run goes to <root>/gail/<Env>_<n>",
    )
    parser.add_argument("--out", type=output_dir, default=DEFAULT_OUT, help="directory for the markdown and CSV tables")
    parser.set_defaults(handler=_run_gail)


def _run_gail(args: argparse.Namespace) -> None:
    from agents.baselines import HeuristicSkier, RandomPolicy
    from agents.evaluation import evaluate, format_table, make_env
    from agents.imitation import behaviour_cloning, collect_demonstrations, train_gail
    from agents.runs import load_agent, new_run_dir
    from agents.seeds import test_seeds

    env_id, env_kwargs = "trendgym/Ski-v0", {"slope": args.slope}
    env = make_env(env_id, env_kwargs)
    spaces = env.action_space, env.observation_space
    env.close()
    expert = load_agent(args.expert) if args.expert else HeuristicSkier(spaces[0])
    demos = collect_demonstrations(expert, env_id, env_kwargs, args.demos, args.seed)
    print(f"{args.demos} demonstrations, {len(demos.actions)} state-action pairs", file=sys.stderr)
    run_dir = new_run_dir("gail", env_id, args.tensorboard_log)
    gail = train_gail(demos, env_id, env_kwargs, args.timesteps, args.seed, log_dir=run_dir)
    gail.save(run_dir / "model.zip")
    _write_gail_config(run_dir, args, env_id, env_kwargs, gail.vecnormalize is not None and gail.vecnormalize.norm_obs)
    clone = behaviour_cloning(demos, env_id, env_kwargs, args.seed)
    seeds = test_seeds(args.episodes)
    policies = {
        "expert": expert,
        "GAIL": gail,
        "behaviour cloning": clone,
        "random": RandomPolicy(clone.action_space, args.seed),
    }
    results = [evaluate(policy, env_id, env_kwargs, seeds, name=name) for name, policy in policies.items()]
    print(format_table(results))
    print(f"GAIL run (model, TensorBoard) in {run_dir}; judge it: {script_command('evaluate.py')} {run_dir}")
    header = ["policy", "return_mean", "return_std", "clean_rate"]
    rows = [[r.name, r.mean_return, r.std_return, r.metric_means().get("clean", "")] for r in results]
    title = f"GAIL and behaviour cloning from {args.demos} demonstrations"
    md, table = write_table(args.out, f"gail-{args.slope}-demos{args.demos}-seed{args.seed}", title,
                            format_table(results, "markdown"), header, rows)  # fmt: skip
    print(f"wrote {md} and {table}", file=sys.stderr)


def _write_gail_config(run_dir: Path, args: argparse.Namespace, env_id: str, env_kwargs: dict, normalize: bool) -> None:
    """The GAIL run's config.yml, so that watch.py and evaluate.py find its env and slope, and know it acts on
    normalised observations, as they do for a run train.py wrote."""
    from agents.runs import write_config

    record = {"algo": "ppo", "env": env_id, "env_kwargs": env_kwargs, "seed": args.seed}
    record.update(n_timesteps=args.timesteps, normalize=normalize)
    record["gail"] = {"expert": args.expert or "heuristic", "demos": args.demos}
    write_config(run_dir, record)


def build_parser() -> argparse.ArgumentParser:
    return subcommand_parser("gan.py", __doc__, (_add_modes, _add_augment, _add_watch, _add_gail))


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    from agents.recording import DisplayUnavailable
    from agents.runs import RunError

    return run_subcommand(build_parser(), argv, runtime_errors=(DisplayUnavailable, RunError, OSError))


if __name__ == "__main__":
    sys.exit(main())
