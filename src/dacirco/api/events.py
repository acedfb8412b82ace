"""``GET /events``: the job and worker changes as Server-Sent Events (docs/api.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from dacirco.api.deps import BackendDep

router = APIRouter(tags=["events"])

MAX_ID = 10**18 - 1  # event ids are SQLite row ids
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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
        int | None,
        Query(ge=0, le=MAX_ID, description="start after this event id (as Last-Event-ID)"),
    ] = None,
    follow: Annotated[
        bool, Query(description="false: the events there are now, then the stream ends")
    ] = True,
    # A header is a string or absent (never null): said so in the schema.
    last_event_id: Annotated[  # type: ignore[assignment]
        str,  # noqa: RUF013
        Header(pattern=r"^[0-9]{1,18}$", description="the last event received (its id)"),
    ] = None,
) -> StreamingResponse:
    start = int(last_event_id) if last_event_id is not None else after
    stream = await backend.events(job, start, follow)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
