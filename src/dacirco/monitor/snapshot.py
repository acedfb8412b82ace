"""Gathering the monitor's data over the public REST API into a plain snapshot.

Every job's state is needed for the counts by state, and the public API has no bulk
endpoint, so each job is read with ``GET /jobs/{id}`` (its details carry the state).
Completed, failed and canceled jobs never change again: their details are kept between
refreshes, so after the first pass only the jobs still waiting or running are read again.
Stopped workers are kept the same way. Requests run concurrently, at most ``concurrency`` at a
time, through :class:`dacirco.client.AsyncClient`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from dacirco.client import FINAL_STATES, AsyncClient, NotFound

JOB_STATES = ("Waiting", "Started", "Completed", "Error")
WORKER_STATES = ("Booting", "Idle", "Busy", "Stopped")
FINAL_JOB_STATES = FINAL_STATES
DEFAULT_CONCURRENCY = 20

T = TypeVar("T")


@dataclass(frozen=True)
class JobRow:
    """What the monitor shows of one job."""

    id: str
    id_video: str
    bitrate: int
    speed: str
    state: str
    worker_id: str | None = None
    progress: float = 0.0
    delay: float | None = None
    error: str | None = None
    received: datetime | None = None
    ended: datetime | None = None  # output uploaded, or last failure


@dataclass(frozen=True)
class WorkerRow:
    """What the monitor shows of one worker."""

    id: str
    name: str
    state: str
    node: str = ""
    cpus: str = ""
    memory: str = ""
    job_id: str | None = None
    jobs_done: int = 0
    created: datetime | None = None
    # The API has no idle-since field: it is derived as the latest end of a job the worker
    # ran, or the time it registered when it has run none (see ``idle_since``).
    idle_since: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """The state of a service at one moment; rendering needs nothing else."""

    url: str
    taken_at: datetime
    workers: list[WorkerRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)  # the shown ones, newest first
    job_counts: dict[str, int] = field(default_factory=dict)
    worker_counts: dict[str, int] = field(default_factory=dict)
    total_jobs: int = 0


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp from the API, as an aware datetime (UTC when unqualified)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plain(data: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return data.model_dump() if isinstance(data, BaseModel) else data


def job_row(data: BaseModel | dict[str, Any]) -> JobRow:
    """A ``JobPublic`` (or its body) as a row."""
    data = _plain(data)
    timings = data.get("timings") or {}
    ends = [
        t for t in (parse_time(timings.get("uploaded")), parse_time(timings.get("failed"))) if t
    ]
    return JobRow(
        id=str(data["id"]),
        id_video=str(data.get("id_video", "")),
        bitrate=int(data.get("bitrate", 0)),
        speed=str(data.get("speed", "")),
        state=str(data.get("state", "?")),
        worker_id=data.get("worker_id"),
        progress=float(data.get("progress") or 0.0),
        delay=data.get("delay"),
        error=data.get("error"),
        received=parse_time(timings.get("received")),
        ended=max(ends) if ends else None,
    )


def worker_row(data: dict[str, Any], idle_since: datetime | None = None) -> WorkerRow:
    """A ``WorkerPublic`` body as a row."""
    return WorkerRow(
        id=str(data["id"]),
        name=str(data.get("name", "")),
        state=str(data.get("state", "?")),
        node=str(data.get("node", "")),
        cpus=str(data.get("cpus", "")),
        memory=str(data.get("memory", "")),
        job_id=data.get("job_id"),
        jobs_done=int(data.get("jobs_done") or 0),
        created=parse_time(data.get("created_at")),
        idle_since=idle_since,
    )


def idle_since(worker: dict[str, Any], jobs: list[JobRow]) -> datetime | None:
    """When an idle worker became idle: its last job's end, else its registration."""
    if worker.get("state") != "Idle":
        return None
    candidates = [j.ended for j in jobs if j.worker_id == worker.get("id") and j.ended]
    registered = parse_time(worker.get("registered_at")) or parse_time(worker.get("created_at"))
    if registered:
        candidates.append(registered)
    return max(candidates) if candidates else None


def count(states: list[str], known: tuple[str, ...]) -> dict[str, int]:
    """Counts by state: every known state (zero included) first, then any other."""
    counts = dict.fromkeys(known, 0)
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts


class SnapshotFetcher:
    """Reads a service's workers and jobs; keeps finished jobs and stopped workers cached."""

    def __init__(self, url: str, limit: int, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.url = url
        self.limit = limit
        self.concurrency = concurrency
        self._final_jobs: dict[str, JobRow] = {}
        self._stopped_workers: dict[str, dict[str, Any]] = {}

    async def fetch(self, client: AsyncClient) -> Snapshot:
        """One snapshot; raises ``dacirco.client.ApiError`` (``Unreachable`` included) when
        the service cannot be read."""
        sem = asyncio.Semaphore(self.concurrency)
        worker_ids, job_ids = await asyncio.gather(
            _ids(client.iter_workers()), _ids(client.iter_jobs())
        )

        async def job(job_id: str) -> JobRow | None:
            cached = self._final_jobs.get(job_id)
            if cached is not None:
                return cached
            data = await _get(sem, client.job(job_id))
            if data is None:
                return None
            row = job_row(data)
            if row.state in FINAL_JOB_STATES:
                self._final_jobs[job_id] = row
            return row

        async def worker(worker_id: str) -> dict[str, Any] | None:
            cached = self._stopped_workers.get(worker_id)
            if cached is not None:
                return cached
            data = await _get(sem, client.worker(worker_id))
            if data is not None and data.get("state") == "Stopped":
                self._stopped_workers[worker_id] = data
            return data

        job_results, worker_results = await asyncio.gather(
            _all(job, job_ids), _all(worker, worker_ids)
        )
        jobs = [j for j in job_results if j is not None]
        workers = [worker_row(w, idle_since(w, jobs)) for w in worker_results if w is not None]
        return Snapshot(
            url=self.url,
            taken_at=datetime.now(UTC),
            workers=workers,
            jobs=list(reversed(jobs[-self.limit :])) if self.limit > 0 else [],
            job_counts=count([j.state for j in jobs], JOB_STATES),
            worker_counts=count([w.state for w in workers], WORKER_STATES),
            total_jobs=len(jobs),
        )


async def _all(fn: Callable[[str], Awaitable[T]], ids: list[str]) -> list[T]:
    return list(await asyncio.gather(*(fn(i) for i in ids)))


async def _ids(listing: AsyncIterator[str]) -> list[str]:
    """Every id of a listing (the client follows the pages when the service splits it)."""
    return [item async for item in listing]


async def _get(
    sem: asyncio.Semaphore, read: Coroutine[Any, Any, BaseModel]
) -> dict[str, Any] | None:
    """A body, or None when the item vanished between the listing and the read."""
    try:
        async with sem:
            return (await read).model_dump()
    except NotFound:
        return None
