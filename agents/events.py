"""A resumed run's TensorBoard curves continue where its model stopped, with no stretch drawn twice.

A run killed at step 647k and resumed from its 600k checkpoint would otherwise show the steps 600k-647k twice:
once from the killed process's event file, once from the resumed one (SB3's resumers know this as the
``reset_num_timesteps`` problem). Before the resumed training logs anything, every event past the checkpoint's
step is cut from the run's event files; what the new process logs then follows on without overlap.
"""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.record_writer import RecordWriter

from trends.files import atomic_write

EVENT_FILE_GLOB = "events.out.tfevents.*"


def _kept_records(path: Path, last_step: int) -> tuple[list[bytes], int]:
    """The raw records of ``path`` up to ``last_step`` (file headers and other step-less records kept), and how
    many were past it. A file cut short by a kill ends its records early; what was read is kept."""
    kept: list[bytes] = []
    dropped = 0
    for record in RawEventFileLoader(str(path)).Load():
        event = Event.FromString(record)
        if event.HasField("summary") and event.step > last_step:
            dropped += 1
        else:
            kept.append(record)
    return kept, dropped


def truncate_events(run_dir: Path, last_step: int) -> int:
    """Drop every summary logged after ``last_step`` from the event files in ``run_dir``; returns how many.

    Each file is rewritten atomically, so a kill during this leaves every file whole, old or new.
    """
    total = 0
    for path in sorted(Path(run_dir).glob(EVENT_FILE_GLOB)):
        kept, dropped = _kept_records(path, last_step)
        if not dropped:
            continue

        def write(f, records: list[bytes] = kept) -> None:
            writer = RecordWriter(f)
            for record in records:
                writer.write(record)

        atomic_write(path, write)
        total += dropped
    return total
