"""Read an event log (JSON Lines, SPEC §6) tolerantly and rebuild its workers and requests.

A requeued request has several attempts; only an attempt that reached EV7 makes it "ok".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Steps of one attempt, in order, after EV1 (request received).
STEP_CODES: dict[str, str] = {
    "EV3": "assigned",
    "EV4": "started",
    "EV5": "file_downloaded",
    "EV6": "transcoding_done",
    "EV7": "file_uploaded",
}
STEPS: tuple[str, ...] = tuple(STEP_CODES.values())
WORKER_CODES = frozenset({"EV2", "EV8", "EV11", "EV12", "EV20"})

WAITING, STARTED, COMPLETED, ERROR = "Waiting", "Started", "Completed", "Error"
CANCELED = "Canceled"


class NotAnEventLog(ValueError):
    """The file holds no event at all (not JSON Lines, or empty)."""


@dataclass
class ReadStats:
    """What was read: events kept, and lines skipped by kind."""

    events: int = 0
    blank: int = 0
    truncated: int = 0  # the last line did not parse: the run stopped while writing it
    malformed: int = 0  # not JSON, not an object, or no usable ``time``/``code``

    @property
    def skipped(self) -> int:
        return self.truncated + self.malformed

    @property
    def warnings(self) -> int:
        return self.blank + self.truncated + self.malformed


@dataclass
class WorkerRecord:
    worker_id: str
    name: str | None = None
    node: Any = None
    cpus: Any = None
    memory: Any = None
    time_created: str | None = None
    time_registered: str | None = None
    time_destroyed: str | None = None
    lost_reason: str | None = None
    flavor: str | None = None  # from EV2 (logs of older versions do not have it)


@dataclass
class Attempt:
    """One task of a request: from EV3 (assigned) to EV7 (uploaded) on one worker."""

    task_id: str
    worker_id: str | None
    times: dict[str, str] = field(default_factory=dict)  # step -> ISO time
    ended: str | None = None  # when it ended without EV7 (error, requeue, failure)

    @property
    def completed(self) -> bool:
        return "file_uploaded" in self.times


@dataclass
class RequestRecord:
    request_id: str
    input_video: Any = None
    bitrate: Any = None
    speed: Any = None
    time_received: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    state: str = WAITING
    error_message: str | None = None
    chunks: int = 0  # split in this many chunks (EV15); its ok attempt is the merge
    reused_from: str | None = None  # served with this request's output (EV19): no work
    time_reused: str | None = None
    quality: list[dict[str, Any]] = field(default_factory=list)  # EV21 lines of one task

    @property
    def ok_attempt(self) -> Attempt | None:
        """The last attempt that reached EV7, if any."""
        done = [a for a in self.attempts if a.completed]
        return done[-1] if done else None

    def attempt(self, task_id: str) -> Attempt | None:
        for a in reversed(self.attempts):
            if a.task_id == task_id:
                return a
        return None


@dataclass
class ParsedLog:
    path: Path
    workers: dict[str, WorkerRecord]
    requests: dict[str, RequestRecord]
    stats: ReadStats
    first_time: str | None = None
    last_time: str | None = None

    @property
    def ok_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests.values() if r.ok_attempt is not None]

    @property
    def incomplete_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests.values() if r.ok_attempt is None and not r.reused_from]

    @property
    def reused_requests(self) -> list[RequestRecord]:
        """Requests served with an identical request's output (EV19): counted apart."""
        return [r for r in self.requests.values() if r.reused_from and r.ok_attempt is None]

    def incomplete_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.incomplete_requests:
            counts[r.state] = counts.get(r.state, 0) + 1
        return counts


def parse_time(value: str) -> datetime:
    """An ISO 8601 time of the log, as an aware datetime (a time without offset is UTC)."""
    t = datetime.fromisoformat(value)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _as_event(line: str) -> dict[str, Any] | None:
    """The event on ``line``, or None when it is JSON but not an event. Raises on bad JSON."""
    record = json.loads(line)
    if not isinstance(record, dict):
        return None
    time, code = record.get("time"), record.get("code")
    if not isinstance(time, str) or not isinstance(code, str) or not code:
        return None
    try:
        parse_time(time)
    except ValueError:
        return None
    return record


def _quality_key(event: dict[str, Any]) -> tuple[Any, Any, Any]:
    """What an EV21 line measured: an output's rendition (over one span in time, for a job
    split in spans)."""
    return (event.get("output"), event.get("rendition"), event.get("span"))


def piece_path(log_path: Path, n: int) -> Path:
    """Piece ``n`` (1, 2 …) of a log cut by size: ``X.txt``, then ``X.txt.002``, ``X.txt.003``
    … (three digits at least, so that a shell's ``X.txt*`` lists them in order)."""
    return log_path if n <= 1 else log_path.with_name(f"{log_path.name}.{n:03d}")


def log_pieces(log_path: Path) -> list[Path]:
    """The pieces of the run whose log is ``log_path``, in order: itself, then each next one
    that exists (the first missing number ends the run)."""
    pieces = [log_path]
    while (nxt := piece_path(log_path, len(pieces) + 1)).exists():
        pieces.append(nxt)
    return pieces


def read_events(path: Path) -> tuple[list[dict[str, Any]], ReadStats]:
    """Every event of the log at ``path`` (and of its next pieces, ``X.txt.002`` …, when it
    was cut by size), in file order, and what was skipped.

    Raises OSError if the file cannot be read, NotAnEventLog if no line is an event.
    """
    path = Path(path)
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in log_pieces(path))
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    stats = ReadStats()
    events: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            stats.blank += 1
            continue
        try:
            event = _as_event(line)
        except json.JSONDecodeError:
            if i == last:
                stats.truncated += 1
            else:
                stats.malformed += 1
            continue
        if event is None:
            stats.malformed += 1
            continue
        events.append(event)
    stats.events = len(events)
    if not events:
        what = "it is empty" if not text.strip() else "no line is a JSON event with time and code"
        raise NotAnEventLog(f"{path} is not an event log: {what}")
    return events, stats


def _worker(workers: dict[str, WorkerRecord], worker_id: str) -> WorkerRecord:
    if worker_id not in workers:
        workers[worker_id] = WorkerRecord(worker_id=worker_id)
    return workers[worker_id]


def _request(requests: dict[str, RequestRecord], request_id: str) -> RequestRecord:
    if request_id not in requests:
        requests[request_id] = RequestRecord(request_id=request_id)
    return requests[request_id]


def _on_worker_event(workers: dict[str, WorkerRecord], event: dict[str, Any]) -> None:
    worker_id = event.get("worker_id")
    if worker_id is None:
        return
    w = _worker(workers, str(worker_id))
    code, time = event["code"], event["time"]
    if event.get("name") is not None:
        w.name = event["name"]
    if code == "EV2":
        w.time_created = w.time_created or time
        if event.get("flavor") is not None:
            w.flavor = str(event["flavor"])
    elif code == "EV11":
        w.time_registered = w.time_registered or time
        w.node, w.cpus, w.memory = event.get("node"), event.get("cpus"), event.get("memory")
    elif code == "EV8":
        w.time_destroyed = w.time_destroyed or time
    elif code == "EV12":
        w.lost_reason = str(event.get("reason", ""))
    elif code == "EV20":
        w.lost_reason = "preempted: " + str(event.get("reason", ""))


def _on_request_event(
    requests: dict[str, RequestRecord], tasks: dict[str, str], event: dict[str, Any]
) -> None:
    code, time = event["code"], event["time"]
    if code in ("EV9", "EV10"):  # no request_id: found through the task
        request_id = tasks.get(str(event.get("task_id")))
        if request_id is not None:
            requests[request_id].error_message = event.get("error_message")
            failed = requests[request_id].attempt(str(event.get("task_id")))
            if failed is not None and failed.ended is None:
                failed.ended = time
        return
    if event.get("request_id") is None:
        return
    r = _request(requests, str(event["request_id"]))
    final = r.state in (COMPLETED, ERROR, CANCELED)
    if code == "EV1":
        if r.time_received is None:
            r.time_received = time
            r.input_video, r.bitrate = event.get("input_video"), event.get("bitrate")
            r.speed = event.get("speed")
    elif code == "EV15":
        try:
            r.chunks = int(event.get("chunks") or 0)
        except (TypeError, ValueError):
            r.chunks = 0
    elif code == "EV19":  # served with another request's output, without a task of its own
        r.reused_from, r.time_reused = str(event.get("source") or "?"), time
        r.state = COMPLETED
    elif code == "EV21":  # a rendition's (or a span's of it) quality; a later attempt's wins
        key = _quality_key(event)
        r.quality = [q for q in r.quality if _quality_key(q) != key]
        r.quality.append(event)
    elif code == "EV16":  # a chunk is done: its attempt ends there, the request goes on
        chunk = r.attempt(str(event.get("task_id")))
        if chunk is not None and chunk.ended is None:
            chunk.ended = time
    elif code in ("EV13", "EV14", "EV17"):
        for attempt in r.attempts:
            if not attempt.completed and attempt.ended is None:
                attempt.ended = time
        if code == "EV13":
            r.state = ERROR
            r.error_message = event.get("error_message")
        elif code == "EV17":
            r.state = CANCELED
        elif not final:
            r.state = WAITING
    elif code in STEP_CODES:
        task_id = str(event.get("task_id"))
        attempt = r.attempt(task_id)
        if attempt is None or (code == "EV3" and "assigned" in attempt.times):
            attempt = Attempt(task_id=task_id, worker_id=event.get("worker_id"))
            r.attempts.append(attempt)
            tasks[task_id] = r.request_id
        attempt.times.setdefault(STEP_CODES[code], time)
        if code == "EV7":
            r.state = COMPLETED
        elif not final:
            r.state = STARTED


def build(events: list[dict[str, Any]]) -> tuple[dict[str, WorkerRecord], dict[str, RequestRecord]]:
    """Workers and requests, each in order of first appearance in ``events``."""
    workers: dict[str, WorkerRecord] = {}
    requests: dict[str, RequestRecord] = {}
    tasks: dict[str, str] = {}  # task_id -> request_id
    for event in events:
        if event["code"] in WORKER_CODES:
            _on_worker_event(workers, event)
        else:
            _on_request_event(requests, tasks, event)
    return workers, requests


def parse_log(path: Path) -> ParsedLog:
    """Read and rebuild the log at ``path`` (raises OSError, NotAnEventLog)."""
    events, stats = read_events(path)
    workers, requests = build(events)
    by_time = sorted((parse_time(e["time"]), e["time"]) for e in events)
    return ParsedLog(
        path=Path(path),
        workers=workers,
        requests=requests,
        stats=stats,
        first_time=by_time[0][1],
        last_time=by_time[-1][1],
    )
