"""The two files every command's table is written to: markdown for a person or a README, CSV for analysis; each
replaced atomically, so a crash never leaves half a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trends.files import atomic_write_text


def write_table(
    out_dir: str | Path, stem: str, title: str, markdown: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[Path, Path]:
    """``<out_dir>/<stem>.md`` (``# title`` then ``markdown``) and ``<stem>.csv`` (``header`` then ``rows``)."""
    out_dir = Path(out_dir)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    md, table = out_dir / f"{stem}.md", out_dir / f"{stem}.csv"
    atomic_write_text(md, f"# {title}\n\n{markdown}\n")
    atomic_write_text(table, buffer.getvalue())
    return md, table
