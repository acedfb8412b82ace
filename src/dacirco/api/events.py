"""``GET /events``: the job and worker changes as Server-Sent Events (docs/api.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from dacirco.api.backend import ApiError
from dacirco.api.deps import BackendDep

router = APIRouter(tags=["events"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _event_id(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(422, f"{name}: {value!r} is not an event id (an integer)") from None
    if number < 0:
        raise ApiError(422, f"{name}: {number} is not an event id (0 or more)")
    return number


@router.get(
    "/events",
    summary="Job and worker changes as Server-Sent Events; resumable with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the stream"}},
)
async def events(
    backend: BackendDep,
    job: Annotated[str | None, Query(description="only this job's changes")] = None,
    after: Annotated[
        str | None, Query(description="start after this event id (as Last-Event-ID)")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="the last event received")] = None,
) -> StreamingResponse:
    start = _event_id(last_event_id, "Last-Event-ID")
    if start is None:
        start = _event_id(after, "after")
    stream = await backend.events(job, start)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
