"""What the README and the scripts' --help show runs as shown: every script command in the README's code blocks
names a script that exists and flags its parser takes, and no --help prints a bare `python scripts/...` that a
plain shell would run with another interpreter."""

import argparse
import functools
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from helpers import SCRIPTS, load_script

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = re.compile(r"^\s*\.venv/bin/python scripts/(\w+)\.py(.*)$")
script = functools.cache(load_script)


def readme_commands() -> list[tuple[int, str, str]]:
    """(line number, script, arguments) of each script command in the README's ```bash blocks."""
    found, in_bash, pending = [], False, ""
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        line = pending + line
        if line.rstrip().endswith("\\"):  # a command continued on the next line
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if m := COMMAND.match(line.split(" #")[0]):
            found.append((number, m[1], m[2]))
    return found


def parser_for(name: str, argv: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    module = script(name)
    if name == "search":  # one parser per subcommand, chosen by the first word
        builders = {"compare": "build_compare_parser", "build-table": "build_table_parser",
                    "worker": "build_worker_parser"}  # fmt: skip
        if argv and argv[0] in builders:
            return getattr(module, builders[argv[0]])(), argv[1:]
        return module.build_search_parser(), argv
    if name == "play":
        return module.build_parser() if hasattr(module, "build_parser") else None, argv
    return module.build_parser(), argv


COMMANDS = readme_commands()


def test_the_readme_shows_script_commands():
    assert len(COMMANDS) > 50


@pytest.mark.parametrize(("line", "name", "args"), COMMANDS, ids=[f"README:{n}" for n, _, _ in COMMANDS])
def test_every_readme_command_names_a_script_and_flags_it_takes(line, name, args, tmp_path, monkeypatch, capsys):
    assert (SCRIPTS / f"{name}.py").is_file(), f"README line {line}: no scripts/{name}.py"
    monkeypatch.chdir(tmp_path)  # output folders the parsers make land here
    parser, argv = parser_for(name, shlex.split(args))
    if parser is None:
        return
    try:
        parser.parse_args(argv)
    except SystemExit as e:
        assert e.code == 0, f"README line {line}: {name}.py {args}\n{capsys.readouterr().err}"


@pytest.mark.parametrize("name", ["train", "watch", "evaluate", "quickstart", "compress", "ensemble", "transfer",
                                  "gan", "bench", "search"])  # fmt: skip
def test_help_shows_commands_in_the_form_that_runs_from_a_plain_shell(name, monkeypatch):
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if Path(p) != Path(sys.executable).parent))  # fmt: skip
    module = load_script(name)  # fresh: the help is formatted with the PATH of this shell
    parser = module.build_search_parser() if name == "search" else module.build_parser()
    text = parser.format_help()
    assert "scripts/" in text or name == "quickstart"
    bare = re.findall(r"(?<![\w./-])python scripts/\S+", text)
    assert not bare, bare
