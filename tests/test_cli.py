"""The command lines' shared help formatter."""

import argparse

from agents.cli import HelpFormatter


def test_help_shows_each_default_once_and_no_empty_one():
    """argparse's defaults formatter would append "(default: None)", or a second default after one the help
    already spells out in words."""
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--storage", help="where trials go (default: runs/cache.db)")
    parser.add_argument("--name", help="a name")
    parser.add_argument("--steps", type=int, default=100, help="steps")
    text = parser.format_help()
    assert text.count("(default") == 2 and "None" not in text and "(default: 100)" in text
