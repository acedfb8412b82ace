"""The error answers of the public routes, as the OpenAPI schema shows them: every one has
``detail`` and a one-line ``message`` (see app._error)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from dacirco.api.guard import MAX_BODY


class ErrorBody(BaseModel):
    detail: Any = Field(
        description="a list of {loc, msg, type} for invalid fields (422), else a string"
    )
    message: str = Field(description="what is wrong, on one line")


def error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, **extra}


# On every public job and worker route.
COMMON: dict[int | str, dict[str, Any]] = {
    404: error("no such job or worker (or `after` names none)"),
    413: error(f"the body is larger than {MAX_BODY >> 20} MiB, the most a route takes (unread)"),
    422: error("an invalid field, body or parameter, named in `message`"),
    502: error("split mode: the controller gave an answer that makes no sense"),
    503: error("storage or (split mode) the controller is unreachable"),
}
AUTH: dict[int | str, dict[str, Any]] = {
    401: error("no API token (tokens are on)"),
    403: error("a wrong API token"),
}
QUEUE_FULL = error(
    "the queue is full (`--max-queue`): nothing was stored; retry later",
    headers={
        "Retry-After": {
            "description": "seconds after which a new try may be accepted",
            "schema": {"type": "integer"},
        }
    },
)
NOT_READY = error("the job has no output (yet): it is not Completed")
CANNOT_CANCEL = error("the job is Completed or in Error: there is nothing to cancel")


def error_fields(body: object, text: str) -> tuple[Any, str | None]:
    """An error answer's ``detail`` and ``message`` from its JSON ``body`` (``text``, the raw
    body, when it has no ``detail``)."""
    if not isinstance(body, dict) or "detail" not in body:
        return text, None
    message = body.get("message")
    return body["detail"], message if isinstance(message, str) else None


# On every worker protocol route (a worker's own token, not a client's).
WORKER: dict[int | str, dict[str, Any]] = {
    401: error("no worker token, or one this controller did not give (or revoked)"),
    409: error("the task is not this worker's, or no longer open (a late report)"),
    410: error("this worker was stopped: it must exit"),
    422: error("an invalid field, body or parameter, named in `message`"),
    503: error("the report could not be stored now: retry it (`Retry-After`)"),
}
