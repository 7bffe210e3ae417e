"""Crash-safe file writes for everything trendgym leaves behind: models, statistics, configs, reports.

DESIGN.md: a crash or Ctrl-C loses nothing already written. Every file is written to a temporary name beside
its target, flushed to disk, then renamed over it (``os.replace`` is atomic on POSIX and Windows), so a reader
sees the old file or the whole new one, never half of one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success flush it to disk and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: the file gets the usual permissions (mkstemp's are owner-only).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, mode.replace("w", "x"), **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary binary file and rename it over ``path`` when done."""
    with atomic_file(path) as f:
        write(f)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path, "w") as f:
        f.write(text)
