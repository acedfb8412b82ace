"""The two CSV files of SPEC §6, ``X-workers.csv`` and ``X-ok-requests.csv`` beside ``X.txt``.

``time_*`` cells keep the log's ISO strings; ``timediff_*`` cells are seconds, 3 decimals.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dacirco.analytics.logs import STEPS, ParsedLog, RequestRecord, WorkerRecord, parse_time

WORKER_COLUMNS: tuple[str, ...] = (
    "worker_id",
    "time_created",
    "time_registered",
    "time_destroyed",
    "name",
    "node",
    "cpus",
    "memory",
    "timediff_registered",
    "timediff_destroyed",
)
REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id",
    "time_received",
    *(f"time_{step}" for step in STEPS),
    "input_video",
    "bitrate",
    "speed",
    "worker_id",
    "task_id",
    *(f"timediff_{step}" for step in STEPS),
)


def output_paths(log: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """``(workers_csv, ok_requests_csv)`` for ``log``: ``X.txt`` gives ``X-workers.csv`` and
    ``X-ok-requests.csv``, in ``out_dir`` or else beside the log."""
    folder = Path(out_dir) if out_dir is not None else Path(log).parent
    stem = Path(log).stem
    return folder / f"{stem}-workers.csv", folder / f"{stem}-ok-requests.csv"


def _ms(value: str | None) -> int | None:
    """Milliseconds since the epoch, rounded, of an ISO time."""
    return None if value is None else round(parse_time(value).timestamp() * 1000)


def timediff(later: str | None, earlier: str | None) -> float | None:
    """``later - earlier`` in seconds, None if either is unknown.

    Both times are first rounded to the millisecond, so consecutive differences add up exactly
    to the difference of the ends (within the 1 ms of that rounding).
    """
    a, b = _ms(later), _ms(earlier)
    return None if a is None or b is None else round((a - b) / 1000, 3)


def worker_row(w: WorkerRecord) -> dict[str, object]:
    """One row of the workers CSV.

    ``timediff_registered`` = registered - created (boot time); ``timediff_destroyed`` =
    destroyed - registered, or destroyed - created for a worker that never registered.
    """
    since = w.time_registered if w.time_registered is not None else w.time_created
    return {
        "worker_id": w.worker_id,
        "time_created": w.time_created,
        "time_registered": w.time_registered,
        "time_destroyed": w.time_destroyed,
        "name": w.name,
        "node": w.node,
        "cpus": w.cpus,
        "memory": w.memory,
        "timediff_registered": timediff(w.time_registered, w.time_created),
        "timediff_destroyed": timediff(w.time_destroyed, since),
    }


def request_row(r: RequestRecord) -> dict[str, object]:
    """One row of the ok-requests CSV, from the request's last attempt that reached EV7.

    Each ``timediff_<step>`` is that step minus the previous one (``timediff_assigned`` =
    received → assigned, the queueing, which includes any earlier failed attempts).
    """
    attempt = r.ok_attempt
    if attempt is None:
        raise ValueError(f"request {r.request_id} never reached EV7")
    times = [r.time_received, *(attempt.times.get(step) for step in STEPS)]
    row: dict[str, object] = {"request_id": r.request_id, "time_received": r.time_received}
    row.update({f"time_{step}": attempt.times.get(step) for step in STEPS})
    row.update(
        input_video=r.input_video,
        bitrate=r.bitrate,
        speed=r.speed,
        worker_id=attempt.worker_id,
        task_id=attempt.task_id,
    )
    for i, step in enumerate(STEPS, start=1):
        row[f"timediff_{step}"] = timediff(times[i], times[i - 1])
    return row


def _format(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return value


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format(row[k]) for k in columns})


def write_csvs(parsed: ParsedLog, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write both CSV files for ``parsed`` (creating ``out_dir``) and return their paths."""
    workers_csv, requests_csv = output_paths(parsed.path, out_dir)
    workers_csv.parent.mkdir(parents=True, exist_ok=True)
    _write(workers_csv, WORKER_COLUMNS, [worker_row(w) for w in parsed.workers.values()])
    _write(requests_csv, REQUEST_COLUMNS, [request_row(r) for r in parsed.ok_requests])
    return workers_csv, requests_csv
