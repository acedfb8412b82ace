"""The resource sampler (psutil): node CPU and memory, and a process tree's CPU and RSS.

The controller samples its node and itself every second; each worker samples its node and
its own process tree (ffmpeg included) and sends the samples to the controller, which writes
every sample to ``tc-events-NN.samples.jsonl`` beside the event log. One JSON object a line:

- ``{"time", "kind": "node", "host", "cpus", "cpu_percent", "memory_used_gb",
  "memory_total_gb"}``: the whole machine (``cpu_percent`` of all its cores, 0-100);
- ``{"time", "kind": "process", "role": "controller"|"worker", "worker_id", "host",
  "cpu_cores", "rss_gb"}``: one process tree (``cpu_cores`` = 1.0 when it keeps one core busy).

``time`` is ISO 8601 UTC like the event log's. See docs/metrics.md.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil

from dacirco.analytics.logs import piece_path
from dacirco.analytics.samples import sample_pieces

log = logging.getLogger(__name__)

GB = 2**30


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


class NodeProbe:
    """CPU % of the whole machine since the previous call, and its memory."""

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.cpus = psutil.cpu_count() or 1
        psutil.cpu_percent(interval=None)  # the first call only sets the reference point

    def sample(self, now: float) -> dict[str, Any]:
        mem = psutil.virtual_memory()
        return {
            "time": _iso(now),
            "kind": "node",
            "host": self.host,
            "cpus": self.cpus,
            "cpu_percent": round(psutil.cpu_percent(interval=None), 1),
            "memory_used_gb": round((mem.total - mem.available) / GB, 3),
            "memory_total_gb": round(mem.total / GB, 3),
        }


class TreeProbe:
    """CPU (in cores) and RSS of a process and all its descendants since the previous call.

    A process born since the previous call counts from its start; one that ended in between
    is missed for its last part (at most one interval of it).
    """

    def __init__(
        self, pid: int, role: str, worker_id: str | None = None, children: bool = True
    ) -> None:
        self.root = psutil.Process(pid)
        self.children = children
        self.role, self.worker_id = role, worker_id
        self.host = socket.gethostname()
        self._last_time = time.time()
        self._cpu: dict[int, tuple[psutil.Process, float]] = {}
        for proc in self._tree():
            try:
                self._cpu[proc.pid] = (proc, self._total(proc))
            except psutil.Error:
                continue

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *(self.root.children(recursive=True) if self.children else ())]
        except psutil.Error:
            return []

    @staticmethod
    def _total(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    def sample(self, now: float) -> dict[str, Any]:
        procs = self._tree()
        used, rss, seen = 0.0, 0, {}
        for proc in procs:
            try:
                known = self._cpu.get(proc.pid)
                if known is not None and known[0].create_time() != proc.create_time():
                    known = None  # the pid was reused
                total = self._total(proc)
                born_since = proc.create_time() >= self._last_time
                before = known[1] if known else (0.0 if born_since else total)
                used += max(0.0, total - before)
                rss += proc.memory_info().rss
                seen[proc.pid] = (known[0] if known else proc, total)
            except psutil.Error:
                continue  # it ended while being looked at
        elapsed = max(1e-3, now - self._last_time)
        self._cpu, self._last_time = seen, now
        record: dict[str, Any] = {
            "time": _iso(now),
            "kind": "process",
            "role": self.role,
            "host": self.host,
            "cpu_cores": round(used / elapsed, 3),
            "rss_gb": round(rss / GB, 4),
        }
        if self.worker_id is not None:
            record["worker_id"] = self.worker_id
        return record


class SampleFile:
    """Appends samples as JSON Lines, each line flushed (thread-safe). The file is created
    with the first sample: a run without samples leaves none.

    ``max_bytes`` (0: never): once a piece has reached it, the next write starts the next
    piece (``X.samples.jsonl.002`` …, as the event log's), so that old pieces can be
    deleted (``--retention``); ``current`` is the piece written to, and a file reopened goes
    on in its last piece."""

    def __init__(self, path: Path, max_bytes: int = 0) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        pieces = sample_pieces(self.path)
        self._number = pieces[-1][0] if pieces else 1
        self._file: TextIO | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def current(self) -> Path:
        return piece_path(self.path, self._number)

    def write(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r) + "\n" for r in records)
        with self._lock:
            if self._closed or not text:
                return
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.current.open("a", encoding="utf-8")
            elif self.max_bytes and self._file.tell() >= self.max_bytes:
                self._file.close()
                self._number += 1
                self._file = self.current.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None


class Sampler:
    """A daemon thread that calls ``probes`` every ``interval`` seconds and hands the records
    to ``sink``. It measures its own CPU time (``cost``) so the docs can state what it costs."""

    def __init__(
        self,
        probes: list[NodeProbe | TreeProbe],
        sink: Callable[[list[dict[str, Any]]], None],
        interval: float = 1.0,
    ) -> None:
        self.probes, self.sink, self.interval = probes, sink, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dacirco-sampler", daemon=True)
        self.cpu_seconds = 0.0  # spent by the sampler itself
        self.started_at: float | None = None
        self.count = 0

    def start(self) -> Sampler:
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            begin = time.thread_time()
            try:
                now = time.time()
                self.sink([p.sample(now) for p in self.probes])
                self.count += 1
            except Exception:
                log.exception("sampling failed; going on")
            self.cpu_seconds += time.thread_time() - begin

    @property
    def cost(self) -> float:
        """Fraction of one core the sampler used since it started."""
        if self.started_at is None:
            return 0.0
        return self.cpu_seconds / max(1e-9, time.monotonic() - self.started_at)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def own_tree(role: str, worker_id: str | None = None, children: bool = True) -> TreeProbe:
    """This process (and, with ``children``, its descendants)."""
    return TreeProbe(os.getpid(), role, worker_id, children)
