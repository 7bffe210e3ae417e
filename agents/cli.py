"""What every trendgym script shares: usage mistakes in one line with exit code 2, and argument types that
say what they expected. DESIGN.md: bad input gets a clear one-line error and a non-zero exit, never a
traceback; 2 for usage, 1 for a runtime problem, 130 for Ctrl-C."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEVICES = ("auto", "cpu", "cuda")  # what --device takes: torch's, with auto a GPU when there is one


SCRIPTS_DIR = Path(__file__).resolve().parent.parent / "scripts"
# Commands the scripts and their --help show a person, rewritten by shown() into the form that runs in a plain shell
_SHOWN_RE = re.compile(r"(?<![\w./-])(python scripts/|python -m |tensorboard |optuna-dashboard )")


def _as_typed(path: Path) -> str:
    """``path`` as a person types it from the current folder: relative below it, absolute elsewhere."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def command(program: str) -> str:
    """How to run ``program`` (``python`` or a console script such as ``tensorboard``) of this interpreter's
    environment from a plain shell.

    A printed next step must run as printed: in a shell that never activated ``.venv`` a bare ``python`` is
    another interpreter without torch. So the bare name is used only when the shell's ``PATH`` finds this
    environment's program under it; otherwise the path, ``.venv/bin/python`` from the project's folder.
    """
    bin_dir = Path(os.path.abspath(sys.executable)).parent
    found = shutil.which(program)
    if found is not None and Path(os.path.abspath(found)).parent == bin_dir:
        return program
    own = Path(sys.executable) if program == "python" else bin_dir / program
    return _as_typed(own)


def script_command(script: str) -> str:
    """The command line that runs ``scripts/<script>`` with this interpreter from the current folder."""
    return f"{command('python')} {_as_typed(SCRIPTS_DIR / script)}"


def shown(text: str) -> str:
    """``text`` with every ``python scripts/X``, ``python -m X``, ``tensorboard`` and ``optuna-dashboard`` command
    in the form that runs from a plain shell (see :func:`command`): the scripts' docstrings and messages (and the
    install hints of ``trends/``, which cannot import this module) keep the short form a reader knows, and what
    reaches the terminal runs as printed."""

    def replace(match: re.Match[str]) -> str:
        word = match[1]
        if word == "python scripts/":
            return f"{command('python')} {_as_typed(SCRIPTS_DIR)}/"
        if word == "python -m ":  # python -m pip install ...: into this environment, not the shell's python
            return f"{command('python')} -m "
        return f"{command(word.strip())} "

    return _SHOWN_RE.sub(replace, text)


def next_steps(steps: Sequence[tuple[str, str]]) -> str:
    """Commands a person may run next, one a line, each with what it does as a shell comment: the whole line,
    pasted as it stands, runs (a note in brackets after a command would be pasted with it)."""
    commands = [shown(cmd) for cmd, _ in steps]
    width = max(len(cmd) for cmd in commands)
    return "\n".join(f"  {cmd:<{width}}  # {what}" for cmd, (_, what) in zip(commands, steps, strict=True))


def budget_text(steps: int) -> str:
    """A step count as a person types it back into ``--timesteps``: ``6000000`` -> ``6e6``, ``8192`` as it is."""
    mantissa, exponent = f"{steps:.1e}".split("e")
    text = f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return text if float(text) == steps and steps >= 10_000 else str(steps)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows every default, except where the help already says it in words
    (a default worked out at run time, such as a path or a study name) or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is None:
            return text
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (exit 2) instead of the usage block and the error."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep the examples' lines
        for key in ("description", "epilog"):
            if kwargs.get(key):
                kwargs[key] = shown(kwargs[key])  # the examples run as printed
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, shown(f"{self.prog}: error: {message} (see --help)\n"))


def fail(prog: str, error: object, code: int = EXIT_RUNTIME) -> int:
    """Print ``error`` as the script's one line on stderr and return the exit code; a command it suggests is
    printed in the form that runs as printed."""
    print(shown(f"{prog}: error: {error}"), file=sys.stderr)
    return code


def run_guarded(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], object],
    args: argparse.Namespace,
    usage_errors: tuple[type[Exception], ...] = (),
    runtime_errors: tuple[type[Exception], ...] = (),
) -> int:
    """Run a script's body and turn the user's mistakes into its exit code: a usage error (exit 2) or a runtime
    error (exit 1) as one line, Ctrl-C as 130. Anything else is a bug and keeps its traceback."""
    try:
        run(args)
    except usage_errors as e:
        parser.error(str(e))
    except runtime_errors as e:
        return fail(parser.prog, e)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


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


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def share(text: str) -> float:
    """A share of a whole in (0, 1]: ``--target-flops 0.5`` keeps half, ``--fraction 0.05`` 5%."""
    value = positive_float(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text!r}")
    return value


def output_dir(text: str) -> Path:
    """A folder the user named for a script's output, checked now, so that a file in the way or a place that
    cannot be written is one line before any work (not after a search of 16 s or a benchmark of minutes).

    Nothing is left behind by the check: the nearest folder that exists must be one this process can create a
    folder in (tried, then removed); the script makes the rest of the path when it writes.
    """
    path = Path(text).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write in {text}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".trendgym-check-"))
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot write in {text}: {e.strerror or e}") from None
    return path


def output_file(text: str) -> Path:
    """A file the user named for a script's output: its folder made and writable now (see :func:`output_dir`),
    and no folder of that name in the way."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file name")
    output_dir(str(path.parent))
    return path


def existing_file(text: str) -> Path:
    """A file the script will read (or update in place): there and readable now, before any work."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read")
    return path


def examples_of(doc: str) -> str:
    """The ``Examples:`` part of a script's docstring, as its ``--help`` epilog."""
    return "examples:" + doc.split("Examples:")[1]


def subcommand_parser(
    prog: str, doc: str, adders: Sequence[Callable[[argparse._SubParsersAction], None]]
) -> argparse.ArgumentParser:
    """A script of subcommands (``compress.py prune``...): its description and examples from ``doc``, and one
    subcommand per adder, each declaring its arguments and setting ``handler`` to the function that runs it."""
    parser = OneLineParser(
        prog=prog, description=doc.split("\n\n")[0], epilog=examples_of(doc), formatter_class=HelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser)
    for add in adders:
        add(subparsers)
    return parser


def run_subcommand(
    parser: argparse.ArgumentParser, argv: list[str] | None, runtime_errors: tuple[type[Exception], ...] = ()
) -> int:
    """Parse ``argv`` and run the chosen subcommand's ``handler``: a ValueError is the user's (exit 2), the
    ``runtime_errors`` a runtime problem (exit 1), both one line."""
    args = parser.parse_args(argv)
    return run_guarded(parser, args.handler, args, usage_errors=(ValueError,), runtime_errors=runtime_errors)
