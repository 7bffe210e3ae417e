"""What every trendgym script shares: usage mistakes in one line with exit code 2, and argument types that
say what they expected. DESIGN.md: bad input gets a clear one-line error and a non-zero exit, never a
traceback; 2 for usage, 1 for a runtime problem, 130 for Ctrl-C."""

from __future__ import annotations

import argparse
import sys

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows every default."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (exit 2) instead of the usage block and the error."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep the examples' lines
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, error: object, code: int = EXIT_RUNTIME) -> int:
    """Print ``error`` as the script's one line on stderr and return the exit code."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return code


def _whole_number(text: str, minimum: int, what: str) -> int:
    """``2e6`` is as good as ``2000000``: budgets are easier to type in scientific notation."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not value.is_integer() or value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return int(value)


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "a non-negative integer")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value
