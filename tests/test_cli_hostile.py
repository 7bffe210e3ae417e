"""Every flag of every script, given a value of the wrong type or out of its range: one line on stderr, exit 2,
and nothing written or started first (the parser refuses before any work).

The cases are walked from the parsers themselves, so a flag added later is covered by the type it declares."""

import argparse
import functools

import pytest
from helpers import load_script, run_main

from agents import cli

# script -> the argv prefix that reaches each parser (a subcommand name, or nothing)
SEARCH_PARSERS = {"": "build_search_parser", "compare": "build_compare_parser",
                  "build-table": "build_table_parser", "worker": "build_worker_parser"}  # fmt: skip
SCRIPTS = ("train", "watch", "evaluate", "quickstart", "compress", "ensemble", "transfer", "gan", "bench")

# what each argument type must refuse
BAD_VALUES = {
    cli.positive_int: ["0", "1.5"],
    cli.non_negative_int: ["-1"],
    cli.positive_float: ["nan"],
    cli.non_negative_float: ["-1"],
    cli.share: ["1.5"],
    cli.output_dir: ["afile/out"],
    cli.output_file: ["adir"],
    cli.existing_file: ["no_such_file.md"],
    int: ["abc"],
    float: ["abc"],
}


script = functools.cache(load_script)  # one import of each script for all its cases


def parsers_of(name: str) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """(argv prefix, parser) for a script and each of its subcommands."""
    module = script(name)
    if name == "search":
        return [([sub] if sub else [], getattr(module, builder)()) for sub, builder in SEARCH_PARSERS.items()]
    parser = module.build_parser()
    found = [([], parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [([sub], subparser) for sub, subparser in action.choices.items()]
    return found


def cases() -> list:
    found = []
    for name in (*SCRIPTS, "search"):
        for prefix, parser in parsers_of(name):
            for action in parser._actions:
                if not action.option_strings or action.nargs == 0:
                    continue
                flag = max(action.option_strings, key=len)
                values = list(BAD_VALUES.get(action.type, []))
                if action.choices is not None and action.type is None:
                    values.append("no-such-choice")
                for value in values:
                    where = "-".join([name, *prefix])
                    found.append(pytest.param(name, [*prefix, flag, value], id=f"{where}{flag}={value}"))
    return found


CASES = cases()


def test_the_walk_covers_every_script_and_the_typed_flags():
    names = {case.values[0] for case in CASES}
    assert names == {*SCRIPTS, "search"}
    assert len(CASES) > 200


@pytest.mark.parametrize(("name", "argv"), CASES)
def test_a_wrong_value_is_one_line_and_exit_2_before_any_work(name, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file in the way")
    (tmp_path / "adir").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_main(script(name), argv, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert argv[-2] in lines[0] or argv[-2].lstrip("-").replace("-", "_") in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made, nothing started
