"""Ski a trendgym slalom course yourself, with the arrow keys, and get the score an agent would get.

All the logic is in ``envs.ski.play``; this is the command line over it.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep pygame's greeting out of the score output

from gymnasium.error import DependencyNotInstalled

from agents.cli import OneLineParser
from envs.ski.course import SLOPES, get_slope
from envs.ski.play import NoDisplayError, play

EXAMPLES = """\
keys:
  left / right     turn (hold shift for a hard turn)
  down             brake (snowplough); nothing pressed: glide
  R                ski the same course again from the top
  Enter / Space    after a run: the next course
  Esc              quit (or close the window)

examples:
  python scripts/play.py                          the green slope, a new course every run
  python scripts/play.py --slope black            the steepest slope: 16 narrow gates, many trees
  python scripts/play.py --course-seed 7          one fixed course every run, to compare with an agent on it
  python scripts/play.py --seed 0 --episodes 3    three runs, the same three courses every time
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="play.py",
        description="Ski a slalom course of trendgym/Ski-v0 in a window; each run prints the score an agent gets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--slope", default="green", help=f"difficulty: {', '.join(SLOPES)} (default: green)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the sequence of courses and starts")
    parser.add_argument("--course-seed", type=int, default=None, help="ski this one course every run")
    parser.add_argument("--episodes", type=int, default=None, help="stop after this many runs (default: until Esc)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one sentence, or None. Checked before any window opens."""
    try:
        get_slope(args.slope)
    except ValueError as e:
        return str(e)
    for name in ("seed", "course_seed"):
        value = getattr(args, name)
        if value is not None and value < 0:
            return f"--{name.replace('_', '-')} must be a non-negative integer, got {value}"
    if args.episodes is not None and args.episodes < 1:
        return f"--episodes must be at least 1, got {args.episodes}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_args(args)
    if problem is not None:
        print(f"play.py: error: {problem}", file=sys.stderr)
        return 2
    try:
        scores = play(slope=args.slope, seed=args.seed, course_seed=args.course_seed, episodes=args.episodes)
    except (NoDisplayError, DependencyNotInstalled) as e:
        print(f"play.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if len(scores) > 1:
        best = max(scores, key=lambda s: s.episode_return)
        print(f"best of {len(scores)} runs: return {best.episode_return:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
