"""The event stream (``GET /events``, Server-Sent Events) as :class:`Event` objects, and how
both clients connect and resume it (``Last-Event-ID``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from dacirco.api.schemas import JobPublic, WorkerPublic
from dacirco.client.calls import FINAL_STATES
from dacirco.client.errors import invalid_answer, raise_for

# The server sends a keepalive comment every 15 s: a stream silent for longer is dead, and
# is resumed like a closed one.
READ_TIMEOUT = 60.0
RETRY = 1.0  # seconds before a reconnection, unless the server said otherwise (`retry:`)
MAX_RETRIES = 5  # reconnections in a row that may fail before the error is raised


@dataclass(frozen=True)
class Event:
    """One change of a job or a worker.

    ``seq`` is the event's id (what a resumed stream starts after); ``kind`` is ``job`` or
    ``worker``; ``id`` the job's or worker's id; ``previous`` is None for a new one. ``job``
    (without timings) or ``worker`` is its body at that moment, when the server sent one;
    ``data`` is the whole object as received.
    """

    seq: int
    kind: str
    id: str
    state: str
    previous: str | None = None
    detail: str | None = None
    at: str | None = None
    job: JobPublic | None = None
    worker: WorkerPublic | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def final(self) -> bool:
        """A job's event that leaves it in a final state (Completed, Error, Canceled)."""
        return self.kind == "job" and self.state in FINAL_STATES

    @property
    def deleted(self) -> bool:
        """The job or worker was deleted by the service's retention (``state`` "Deleted",
        ``previous`` its last state): it is gone from the API."""
        return self.state == "Deleted"


def _body(kind: type[JobPublic] | type[WorkerPublic], value: object) -> Any:
    if not isinstance(value, dict):
        return None
    try:
        return kind.model_validate(value)
    except ValidationError:
        return None


def parse_event(sse: ServerSentEvent) -> Event | None:
    """The :class:`Event` of one message; None for a message that is not one (no JSON
    object, no sequence number)."""
    try:
        data = json.loads(sse.data)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    raw_seq = data.get("seq", sse.id)
    try:
        seq = int(raw_seq)
    except (TypeError, ValueError):
        return None
    kind = str(data.get("kind") or sse.event)
    return Event(
        seq=seq,
        kind=kind,
        id=str(data.get("id", "")),
        state=str(data.get("state", "")),
        previous=data.get("previous"),
        detail=data.get("detail"),
        at=data.get("at"),
        job=_body(JobPublic, data.get("job")),
        worker=_body(WorkerPublic, data.get("worker")),
        data=data,
    )


def stream_args(
    job: str | None, after: int | None, last: int | None, timeout: float
) -> dict[str, Any]:
    """The request of one connection: ``?job=``, and where to start: ``?after=`` on the
    first, ``Last-Event-ID`` (the last event received) on a reconnection."""
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if job is not None:
        params["job"] = job
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    elif after is not None:
        params["after"] = after
    read = max(timeout, READ_TIMEOUT)
    return {"params": params, "headers": headers, "timeout": httpx.Timeout(timeout, read=read)}


def retry_delay(sse: ServerSentEvent, current: float) -> float:
    """The reconnection delay after ``sse``: its ``retry:`` field (ms) when it has one."""
    return sse.retry / 1000 if sse.retry is not None and sse.retry >= 0 else current


def done(event: Event, job: str | None) -> bool:
    """The stream of one job ends with that job's final state."""
    return job is not None and event.kind == "job" and event.id == job and event.final


def check_stream(resp: httpx.Response) -> None:
    """An error answer (its body read) raised typed; anything but an event stream is an
    invalid answer."""
    raise_for(resp)
    kind = resp.headers.get("content-type", "").partition(";")[0].strip()
    if resp.status_code != 200 or kind != "text/event-stream":
        raise invalid_answer(resp, f"status {resp.status_code}, {kind or 'no'} content type")
