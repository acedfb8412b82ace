"""The event log: JSON Lines ``tc-events-NN.txt`` and its ``.config.txt`` (SPEC §6).

Every line has ``time`` (ISO 8601, UTC), ``code``, ``description`` and the code's fields.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# code -> (description, required fields). EV1..EV11 keep the classic meaning.
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "EV1": ("Request received", ("request_id", "input_video", "bitrate", "speed")),
    "EV2": ("Runner created", ("name", "worker_id")),
    "EV3": ("Task assigned", ("request_id", "worker_id", "task_id")),
    "EV4": ("Task started", ("request_id", "worker_id", "task_id")),
    "EV5": ("File downloaded", ("request_id", "worker_id", "task_id")),
    "EV6": ("Transcoding completed", ("request_id", "worker_id", "task_id")),
    "EV7": ("File uploaded", ("request_id", "worker_id", "task_id")),
    "EV8": ("Runner destroyed", ("name", "worker_id")),
    "EV9": ("Transcoding error", ("worker_id", "task_id", "error_message")),
    "EV10": ("Storage error", ("worker_id", "task_id", "error_message")),
    "EV11": ("Runner registered", ("name", "worker_id", "node", "cpus", "memory")),
    # Added by DaCirco.
    "EV12": ("Runner lost", ("name", "worker_id", "reason")),
    "EV13": ("Request failed", ("request_id", "error_message")),
    "EV14": ("Request requeued", ("request_id", "reason")),
    # Split jobs (written by the simulator for now): EV15 when a request is split in chunks;
    # each chunk's task has EV3-EV6 then EV16; the merge's task EV3-EV7 (EV7: the request's).
    "EV15": ("Request split", ("request_id", "chunks")),
    "EV16": ("Chunk done", ("request_id", "worker_id", "task_id")),
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def next_free_path(folder: Path) -> Path:
    """``tc-events-NN.txt`` with the first NN in 01..99 not taken in ``folder``."""
    for n in range(1, 100):
        path = folder / f"tc-events-{n:02d}.txt"
        if not path.exists():
            return path
    raise FileExistsError(f"tc-events-01..99.txt all exist in {folder}; pass --event-log-file")


def config_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.stem + ".config.txt")


class EventLog:
    """Append-only; each line is flushed at once so a crash loses nothing already logged.

    A line is a few hundred bytes written to the page cache: cheap enough for the event loop.
    """

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._file: TextIO | None = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write_config(self, params: dict[str, Any]) -> Path:
        path = config_path(self.path)
        path.write_text(json.dumps(params, indent=2, sort_keys=True, default=str) + "\n")
        return path

    def emit(self, code: str, **fields: Any) -> dict[str, Any]:
        description, required = EVENTS[code]
        missing = [f for f in required if f not in fields]
        if missing:
            raise ValueError(f"{code} needs {', '.join(missing)}")
        record = {"time": iso(self._clock()), "code": code, "description": description, **fields}
        line = json.dumps(record, default=str)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
