"""What every benchmark shares when it reports: crash-safe file writes, the README section it owns, the machine
it ran on and a compact way to print rates.

A benchmark's numbers reach three places (the terminal, ``docs/bench/<name>.md|json`` and a section of the
README); keeping the writing here means each later benchmark (learning curves, search, compression) only
produces its own markdown and JSON.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from trends.files import atomic_write_text


def write_atomic(path: Path, text: str) -> None:
    """Write a report so that a reader sees either the old file or the whole new one (see trends.files)."""
    atomic_write_text(path, text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON through :func:`write_atomic` (raw numbers for later analysis)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def section_markers(name: str) -> tuple[str, str]:
    """The HTML comments that fence benchmark ``name``'s section of the README (invisible when rendered)."""
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def update_readme_section(readme: Path, name: str, markdown: str) -> bool:
    """Replace what lies between ``<!-- bench:name -->`` and ``<!-- /bench:name -->`` in ``readme``.

    Returns False, touching nothing, when the README does not exist or lacks either marker (or has them in
    the wrong order): the README's author decides where a figure goes by placing the markers, the benchmark
    never guesses. The markers themselves and everything outside them are kept byte for byte, and the file
    is replaced atomically, so a README is never left half written.
    """
    readme = Path(readme)
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = section_markers(name)
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, flags=re.DOTALL)
    if match is None:
        return False
    body = "\n" + markdown.strip("\n") + "\n"
    new_text = text[: match.start(1)] + body + text[match.end(1) :]
    if new_text != text:
        write_atomic(readme, new_text)
    return True


def machine_info() -> dict[str, Any]:
    """Where the numbers come from: speeds mean little without the machine and the library versions."""
    import gymnasium
    import numpy

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
    }


def format_machine(machine: dict[str, Any]) -> str:
    """One line for a report's footer."""
    return (
        f"{machine['platform']}, {machine['cpu_count']} CPUs, python {machine['python']}, "
        f"numpy {machine['numpy']}, gymnasium {machine['gymnasium']}"
    )


def format_rate(value: float) -> str:
    """A rate with three significant digits and a k/M suffix: ``4.08M``, ``127k``, ``950``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table; cells are taken as given (already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def publish(
    name: str, title: str, markdown: str, data: Any, out_dir: Path, readme: Path | None = None
) -> dict[str, Any]:
    """Write ``<name>.md`` (under ``title``) and ``<name>.json`` into ``out_dir`` atomically, and the README's
    ``<!-- bench:name -->`` section when ``readme`` is given.

    Returns where things went: ``{"markdown": path, "json": path, "readme": bool}``, the last telling whether
    ``readme`` had the markers and was updated.
    """
    out_dir = Path(out_dir)
    md_path, json_path = out_dir / f"{name}.md", out_dir / f"{name}.json"
    write_atomic(md_path, f"# {title}\n\n{markdown}")
    write_json_atomic(json_path, data)
    updated = readme is not None and update_readme_section(readme, name, markdown)
    return {"markdown": md_path, "json": json_path, "readme": updated}
