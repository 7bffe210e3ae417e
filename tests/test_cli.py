"""The command lines' shared help formatter."""

import argparse

from agents.cli import HelpFormatter, command, shown


def test_help_shows_each_default_once_and_no_empty_one():
    """argparse's defaults formatter would append "(default: None)", or a second default after one the help
    already spells out in words."""
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--storage", help="where trials go (default: runs/cache.db)")
    parser.add_argument("--name", help="a name")
    parser.add_argument("--steps", type=int, default=100, help="steps")
    text = parser.format_help()
    assert text.count("(default") == 2 and "None" not in text and "(default: 100)" in text


def test_shown_runs_a_python_module_with_this_environments_python():
    """trends/ writes install hints as "python -m pip ..."; in a shell without .venv active a bare python is
    another interpreter, so what reaches the terminal names this one."""
    assert (
        shown("install it with: python -m pip install onnx")
        == f"install it with: {command('python')} -m pip install onnx"
    )
    assert shown("run .venv/bin/python -m pip install onnx") == "run .venv/bin/python -m pip install onnx"  # as it is
