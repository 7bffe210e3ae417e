"""Watch a trained agent ski: in a pygame window, or recorded to a GIF or MP4 file.

Several runs act as one agent (agents.ensemble.policies.PolicyEnsemble): a majority vote of their actions for
Discrete envs (--ensemble-rule soft: the mean of their action probabilities), the mean action for Box envs.

With --record, or when there is no screen (SDL_VIDEODRIVER=dummy, no DISPLAY/WAYLAND_DISPLAY on Linux, or
pygame failing to open a window), the episodes are rendered off-screen and written to a file: the --record
path, else <run folder>/videos/watch_seed<S>[_<slope>].gif (the first run's folder, with _ensemble<N> for
several runs; the path is printed).
In the window, Esc, Q or closing the window stops.

A decision env whose episodes make one search (ArchitectureSearch-v0, HyperparamSearch-v0, FeatureEngineering-v0,
Pruning-v0, Quantization-v0, EnsembleWeighting-v0) plays one search over the episodes, as in training: --seed
starts it, and each episode adds a configuration to the history the view draws.

Examples:
  python scripts/watch.py                                       # the latest run, one episode in a window
  python scripts/watch.py runs/ppo/Ski-v0_1 --episodes 3 --slope blue
  python scripts/watch.py runs/ppo/Ski-v0_1 --record ski.gif    # headless, one episode to a GIF
  python scripts/watch.py runs/ppo/Ski-v0_1 --record ski.gif --frame-skip 2   # half the frames and size
  python scripts/watch.py runs/ppo/Ski-v0_1/best_model.zip --record ski.mp4 --episodes 5 --seed 7
  python scripts/watch.py runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 runs/ppo/Ski-v0_3   # three runs voting as one
  python scripts/watch.py runs/ppo/Ski-v0_1 runs/ppo/Ski-v0_2 --ensemble-rule soft --weights 2 1 --slope blue
  python scripts/watch.py runs/maskableppo/ArchitectureSearch-v0_1 --episodes 30 --fps 8   # a search of 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import torch

from agents.cli import OneLineParser, non_negative_int, positive_float, positive_int, run_guarded
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
    EpisodeResult,
    OptionNotApplicable,
    check_policy_fits,
    env_id_argument,
    env_of_run,
    make_env,
    plays_one_search,
    return_decimals,
)
from agents.recording import (
    DisplayUnavailable,
    RecordingError,
    check_video_path,
    display_available,
    fallback_video_path,
    play_episodes,
    record_episodes,
)
from agents.runs import LoadedAgent, RunError, config_dir_of
from agents.seeds import TEST_SEED
from envs.ski.course import SLOPES


def video_path(text: str) -> Path:
    try:
        return check_video_path(text)
    except RecordingError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    doc_head, examples = __doc__.split("Examples:")
    parser = OneLineParser(
        prog="watch.py",
        description=doc_head.strip(),
        epilog="Examples:" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN",
        help="a run folder or a model .zip (default: the latest run); several act as one ensemble",
    )
    parser.add_argument("--episodes", type=positive_int, default=1, help="episodes to play (default: %(default)s)")
    parser.add_argument("--slope", choices=list(SLOPES), help="ski a different slope than the run trained on")
    parser.add_argument("--record", type=video_path, metavar="OUT.gif|OUT.mp4", help="write a video, no window")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the most likely one")
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=TEST_SEED,
        help="course seed of the first episode, then +1 (default: %(default)s)",
    )
    parser.add_argument("--fps", type=positive_float, help="frames a second (default: the env's render_fps)")
    parser.add_argument("--frame-skip", type=positive_int, default=1, help="record every k-th frame (default: 1)")
    parser.add_argument("--scale", type=positive_float, default=1.0, help="size of recorded frames (default: 1.0)")
    parser.add_argument(
        "--env", type=env_id_argument, metavar="ENV_ID", help="the env to ski in (default: the run's config.yml)"
    )
    parser.add_argument("--last", action="store_true", help="load model.zip rather than best_model.zip")
    add_ensemble_arguments(parser)
    return parser


def print_episode(index: int, episode: EpisodeResult, n_gates: int | None) -> None:
    print(f"episode {index + 1}: {episode.describe(n_gates)}", flush=True)


def print_summary(episodes: list[EpisodeResult]) -> None:
    returns = [e.episode_return for e in episodes]
    if returns:
        mean, std, d = statistics.fmean(returns), statistics.pstdev(returns), max(2, return_decimals(returns))
        print(f"mean return {mean:.{d}f} ± {std:.{d}f} over {len(returns)} episode(s)")


def watch_video_path(agent: LoadedAgent | PolicyEnsemble, seed: int, slope: str | None) -> Path:
    """Where to record without a screen: the run's videos/ folder; an ensemble's in its first run's folder, under
    a name of its own so that it never overwrites that run's own video."""
    if not isinstance(agent, PolicyEnsemble):
        return fallback_video_path(config_dir_of(agent.path), seed, slope)
    path = fallback_video_path(config_dir_of(agent.paths[0]), seed, slope)
    return path.with_name(f"{path.stem}_ensemble{len(agent.members)}{path.suffix}")


def run(args: argparse.Namespace) -> None:
    agent = load_policy(args.runs, args.weights, args.ensemble_rule, prefer_best=not args.last)
    env_id, env_kwargs = env_of_run(agent.config, args.env, args.slope)
    env = make_env(env_id, env_kwargs)
    check_policy_fits(getattr(agent, "model", agent), env)  # a PolicyEnsemble has the spaces itself
    n_gates = getattr(getattr(env.unwrapped, "slope", None), "n_gates", None)
    one_search = plays_one_search(env)
    env.close()
    if isinstance(agent, PolicyEnsemble) and (elsewhere := members_trained_elsewhere(agent, env_id, env_kwargs)):
        print(f"watch.py: warning: {'; '.join(elsewhere)}", file=sys.stderr)  # as evaluate.py warns
    seeds = [args.seed + i for i in range(args.episodes)]
    deterministic = not args.stochastic
    print(f"model: {describe_models(agent)}\nenv:   {env_id} {env_kwargs}")
    if one_search:
        print(f"one search of {len(seeds)} episodes: seed {seeds[0]} starts it, each episode adds to its history")

    def on_episode(i: int, e: EpisodeResult) -> None:
        print_episode(i, e, n_gates)

    path = args.record
    if path is None and display_available():
        try:
            episodes, _ = play_episodes(agent, env_id, env_kwargs, seeds, deterministic, args.fps, on_episode)
            print_summary(episodes)
            return
        except DisplayUnavailable as e:
            print(f"{e}; recording instead", file=sys.stderr)
    if path is None:
        path = watch_video_path(agent, args.seed, args.slope)
        print(f"no display: recording to {path} instead of opening a window")
    recording = record_episodes(
        agent, env_id, env_kwargs, seeds, path, deterministic, args.fps, args.frame_skip, args.scale, on_episode
    )
    print_summary(recording.episodes)
    size = recording.path.stat().st_size / 1e6
    print(f"wrote {recording.path}: {recording.frames} frames at {recording.fps:g} fps, {size:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    return run_guarded(
        parser, run, args, (OptionNotApplicable, RecordingError), (RunError, EnvConfigError, EnsembleError, OSError)
    )


if __name__ == "__main__":
    sys.exit(main())
