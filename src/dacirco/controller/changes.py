"""What a step changed, as clients see it: each job or worker whose state changed (or that is
new) becomes one ``Change``, stored with the step (``changes`` table, a ``seq`` each), pushed
to the live event streams (``GET /events``) and, for jobs, to their webhooks. A job or worker
that retention deleted becomes one too, of state ``Deleted`` (``deletions``), without a body:
``GET`` answers 404 from then on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dacirco.controller.events import iso
from dacirco.core.effects import Forget
from dacirco.core.state import State
from dacirco.core.txn import Txn
from dacirco.domain import Job, Worker


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "job" or "worker"
    id: str
    at: float
    record: dict[str, Any]  # the event's data, but its seq
    urls: tuple[str, ...] = ()  # webhook targets (jobs only)

    def data(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, **self.record}

    def webhook(self, seq: int) -> dict[str, Any]:
        """A webhook's body: the event, its id and its type (``job.completed`` ...)."""
        state = str(self.record["state"]).lower()
        return {"event_id": str(seq), "type": f"{self.kind}.{state}", **self.data(seq)}


def job_record(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "id_video": job.id_video,
        "bitrate": job.bitrate,
        "speed": job.speed.value,
        "codec": job.codec.value,
        "priority": job.priority,
        "state": job.state.value,
        "attempts": job.attempts,
        "worker_id": job.worker_id,
        "progress": round(job.progress, 4),
        "output": job.output,
        "reused_from": job.reused_from,
        "error": job.error,
    }


def worker_record(worker: Worker) -> dict[str, Any]:
    return {
        "id": worker.id,
        "name": worker.name,
        "flavor": worker.flavor.name,
        "node": worker.node,
        "state": worker.state.value,
        "job_id": worker.job_id,
        "stop_reason": worker.stop_reason,
    }


def _change(kind: str, obj: Job | Worker, previous: str | None, now: float) -> dict[str, Any]:
    last = obj.history[-1] if obj.history else None
    return {
        "at": iso(last.at if last is not None else now),
        "kind": kind,
        "id": obj.id,
        "state": obj.state.value,
        "previous": previous,
        "detail": last.detail if last is not None else "",
    }


def changes_of(
    txn: Txn, st: State, now: float, webhook: str | None = None, *, loading: bool = False
) -> list[Change]:
    """The state changes of a step not sealed yet (memory holds its after state).
    ``loading``: a recovery, whose entities are not new (only what it changed counts)."""
    out: list[Change] = []
    for kind, entities, table in (
        ("worker", txn.workers.values(), st.workers),
        ("job", txn.jobs.values(), st.jobs),
    ):
        for obj in entities:
            before = txn.before(obj)
            new = not loading and txn.added(table, obj.id)
            previous = None if new or before is None else before["state"].value
            if not new and previous == obj.state.value:
                continue
            record = _change(kind, obj, previous, now)
            urls: tuple[str, ...] = ()
            if isinstance(obj, Job):
                record["job"] = job_record(obj)
                urls = tuple(dict.fromkeys(u for u in (obj.callback_url, webhook) if u))
            else:
                record["worker"] = worker_record(obj)
            out.append(Change(kind, obj.id, now, record, urls))
    return out


DELETED = "Deleted"  # the state of a deletion's change: not a state a job or worker has


def deletions(gone: Forget, now: float, webhook: str | None = None) -> list[Change]:
    """The jobs and workers retention deleted, each a change from its last state to
    ``Deleted``: a client that holds them (the dashboard, a mirror fed by webhooks) drops
    them. A job's goes to its webhooks as ``job.deleted``."""
    out: list[Change] = []
    for kind, entities in (("worker", gone.workers), ("job", gone.jobs)):
        for obj in entities:
            record = {
                "at": iso(now),
                "kind": kind,
                "id": obj.id,
                "state": DELETED,
                "previous": obj.state.value,
                "detail": "deleted by retention (ended longer ago than --retention)",
            }
            urls: tuple[str, ...] = ()
            if isinstance(obj, Job):
                urls = tuple(dict.fromkeys(u for u in (obj.callback_url, webhook) if u))
            out.append(Change(kind, obj.id, now, record, urls))
    return out


def sse(seq: int, kind: str, data: dict[str, Any] | str) -> bytes:
    """One Server-Sent Event."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"id: {seq}\nevent: {kind}\ndata: {text}\n\n".encode()


class Hub:
    """The latest changes in memory (a ring), and a wake-up for every stream when more come."""

    def __init__(self, keep: int = 10_000) -> None:
        self._ring: deque[tuple[int, Change]] = deque(maxlen=keep)
        self.last = 0  # the newest seq (set from the store at start)
        self.closed = False
        self._new = asyncio.Event()

    def publish(self, items: Iterable[tuple[int, Change]]) -> None:
        for item in items:
            self._ring.append(item)
            self.last = max(self.last, item[0])
        self._new.set()
        self._new = asyncio.Event()

    def since(self, seq: int) -> list[tuple[int, Change]] | None:
        """The changes after ``seq``; None when some of them have left the ring (read the
        store)."""
        if seq >= self.last:
            return []
        if not self._ring or self._ring[0][0] > seq + 1:
            return None
        return [item for item in self._ring if item[0] > seq]

    def close(self) -> None:
        """The service shuts down: every stream ends."""
        self.closed = True
        self._new.set()

    async def wait(self, seq: int, timeout: float) -> bool:
        """Until a change after ``seq`` is there (True) or ``timeout`` seconds (False)."""
        if self.last > seq or self.closed:
            return self.last > seq
        new = self._new
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(new.wait(), timeout)
        return self.last > seq
