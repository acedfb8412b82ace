"""The event log: JSON Lines ``tc-events-NN.txt`` and its ``.config.txt`` (SPEC §6).

Every line has ``time`` (ISO 8601, UTC), ``code``, ``description`` and the code's fields; no
line holds a credential (``redact``: a worker's or a runtime's words may quote a URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dacirco.analytics.logs import log_pieces, piece_path
from dacirco.redact import redact

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
    # Split jobs: EV15 when a request is split in chunks; each chunk's task has EV3-EV6 then
    # EV16; the merge's task EV3-EV7 (EV7: the request's).
    "EV15": ("Request split", ("request_id", "chunks")),
    "EV16": ("Chunk done", ("request_id", "worker_id", "task_id")),
    # A client canceled the request (DELETE /jobs/{id}): it is final.
    "EV17": ("Request canceled", ("request_id", "reason")),
    # Output reuse: a request identical to a job in progress waits for that job's output
    # (EV18, ``source``: that job); EV19 when it is served with another job's output, at
    # once (the source had completed) or when its source completes. No worker worked for it.
    "EV18": ("Request attached", ("request_id", "source")),
    "EV19": ("Request reused", ("request_id", "source", "output")),
    # A pilot on an opportunistic node stopped because its host's owner needed the machine
    # back; then EV8. Its task waits again without counting an attempt (EV14).
    "EV20": ("Runner preempted", ("name", "worker_id", "reason")),
    # A request that asked for its quality ("quality": true): one line per video rendition
    # of its output, after its EV6 (core/quality.py).
    "EV21": (
        "Quality measured",
        ("request_id", "worker_id", "task_id", "output", "rendition", "vmaf", "psnr", "ssim"),
    ),
}


def event_record(code: str, at: float, fields: dict[str, Any]) -> dict[str, Any]:
    """One line of the log as a dict; a code without its required fields is a bug."""
    description, required = EVENTS[code]
    missing = [f for f in required if f not in fields]
    if missing:
        raise ValueError(f"{code} needs {', '.join(missing)}")
    clean = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
    return {"time": iso(at), "code": code, "description": description, **clean}


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
    """Append-only, written straight to the file (no buffer): a crash loses nothing already
    logged, and a write that fails (a full disk) leaves no partial line behind.

    A line is a few hundred bytes written to the page cache: cheap enough for the event loop.

    ``max_bytes`` (0: never): once a piece has reached it, the next write starts the next
    piece (``piece_path``), so that a piece holds whole lines and whole steps. ``path`` stays
    the run's name (its first piece); ``current`` is the piece being written.
    """

    def __init__(self, path: Path, clock: Callable[[], float], max_bytes: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self.max_bytes = max_bytes
        self.current = log_pieces(self.path)[-1]  # an existing log goes on where it ended
        self._fd: int | None = self._open(self.current)
        self._lock = threading.Lock()

    @staticmethod
    def _open(path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _next_piece(self, fd: int) -> int:
        """The current piece is full: the next one is opened (the full one closed)."""
        n = len(log_pieces(self.path)) + 1
        path = piece_path(self.path, n)
        new = self._open(path)
        os.close(fd)
        self._fd, self.current = new, path
        return new

    def write_config(self, params: dict[str, Any]) -> Path:
        path = config_path(self.path)
        # A webhook URL may carry its receiver's key in its query.
        text = redact(json.dumps(params, indent=2, sort_keys=True, default=str))
        path.write_text(text + "\n")
        return path

    def emit(self, code: str, **fields: Any) -> dict[str, Any]:
        record = event_record(code, self._clock(), fields)
        self.write_lines([json.dumps(record, default=str)])
        return record

    def write_lines(self, lines: list[str]) -> int:
        """Append whole lines; returns the file's size before them. On a failure none of
        them stays (the file is cut back) and the error goes to the caller."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise ValueError(f"the event log {self.path} is closed")
            start = os.fstat(fd).st_size
            if self.max_bytes and start >= self.max_bytes:
                fd, start = self._next_piece(fd), 0
            data = "".join(line + "\n" for line in lines).encode()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                self._cut_back(fd, start)
                raise
            return start

    def cut_back(self, size: int) -> None:
        """Drop what was written past ``size`` (a step whose SQLite commit then failed)."""
        with self._lock:
            if self._fd is not None:
                self._cut_back(self._fd, size)

    @staticmethod
    def _cut_back(fd: int, size: int) -> None:
        with contextlib.suppress(OSError):  # not a regular file (/dev/full): nothing was kept
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
