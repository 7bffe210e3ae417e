"""The README's Python example runs as printed: train, load with the normalisation statistics, act, judge."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    return re.search(r"<!-- python-api -->\n```python\n(.*?)```\n<!-- /python-api -->", text, re.S)[1]


def test_the_readme_python_example_runs_as_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/ lands here
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert re.search(r"^gates \d+, trees \d+, \d+\.\d s$", out, re.M), out
    assert re.search(r"^PPO +-?\d+\.\d", out, re.M) and "heuristic" in out
    run = tmp_path / "runs" / "ppo" / "Ski-v0_1"
    assert (run / "best_model.zip").is_file() and (run / "best_vecnormalize.pkl").is_file()
