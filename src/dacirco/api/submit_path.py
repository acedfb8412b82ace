"""``POST /jobs`` on a short path: the one route a catalog push calls thousands of times.

FastAPI's routing, dependencies and response validation cost about as much CPU as storing
the job itself; at a thousand submissions a second on two cores that is the difference
between keeping up and not. This ASGI middleware sits inside the request guard (the client
token and the body's size are already checked) and takes only the requests it can answer
exactly as the route would: ``POST /jobs`` without a query, a JSON body that the route's own
model (``JobCreate``) accepts. It parses the body as FastAPI does (``json.loads``, then the
model), submits through the same backend and answers the route's 201 (the job id as JSON and
its ``Location``), or the same error answer the app gives for a refused job.

Anything else (a body the model refuses, another path or method, a query string, a body that
is not declared JSON) goes to the app unchanged, with the body it sent: every error message
comes from one place, and ``tests/unit/test_submit_path.py`` checks both paths answer alike.

``ServiceApp`` (the FastAPI app of both services) sends ``POST /jobs`` through the request
guard and this short path *before* FastAPI's own middleware (its error and telemetry layers
read the environment at each request): what the short path does not take goes on to the whole
app, through the guard again. With FastAPI's own telemetry on (OpenTelemetry's environment),
every request goes the whole way, so that traces and HTTP metrics still count the submissions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dacirco.api.backend import ApiError, error_answer
from dacirco.api.guard import MAX_BODY, RequestGuard
from dacirco.api.schemas import JobCreate

_PLAIN_ID = re.compile(r"[A-Za-z0-9_.~-]+")


class SubmitPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prefixes: dict[tuple[object, ...], str] = {}

    def _location(self, scope: Scope, job_id: str) -> str:
        """``url_for("read_job")``, its prefix worked out once per way the service is reached
        (scheme, host) rather than at each request; an id that would need quoting (never one
        the service makes) goes the long way."""
        if not _PLAIN_ID.fullmatch(job_id):
            return str(Request(scope).url_for("read_job", job_id=job_id))
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        key = (scope.get("scheme"), scope.get("server"), host)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) > 64:  # clients that each name their own host
                self._prefixes.clear()
            prefix = str(Request(scope).url_for("read_job", job_id="-"))[:-1]
            self._prefixes[key] = prefix
        return prefix + job_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _candidate(scope):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        if body is None:
            return  # the client left before its body came: nothing was asked
        job = _job(body)
        if job is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            job_id = await scope["app"].state.backend.submit(job)
        except ApiError as exc:
            answer = error_answer(exc.status, exc.detail, exc.message, exc.headers)
            await answer(scope, receive, send)
            return
        # The route's answer, as its Response would send it.
        body = json.dumps(job_id).encode()
        headers = [
            (b"location", self._location(scope, job_id).encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class ServiceApp(FastAPI):
    """FastAPI behind the request guard, with ``POST /jobs`` taken by the guard and the short
    path first.
    ``short_path = False``: every request goes the whole way (what the tests compare with)."""

    short_path = True

    def __init__(self, *, max_upload: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._traced: bool | None = None  # FastAPI's telemetry on: read at the first request
        # Credentials and size checked before any body is read: on every route, and on the
        # short path with the same settings.
        guard = {"max_body": MAX_BODY, "max_upload": max_upload}
        self.add_middleware(RequestGuard, **guard)
        self._short = RequestGuard(SubmitPath(self._whole), **guard)

    async def _whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._traced is None:
            native = getattr(self, "_native_telemetry", None)  # FastAPI ≥ 0.165
            self._traced = native is not None and bool(native.enabled())
        if self.short_path and not self._traced and not self.root_path and _candidate(scope):
            scope["app"] = self  # where the guard and the short path find the app's state
            await self._short(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _candidate(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/jobs":
        return False
    if scope.get("query_string") or scope.get("root_path"):
        return False
    kind = Headers(scope=scope).get("content-type", "")
    return kind.partition(";")[0].strip().lower() == "application/json"


async def _read(receive: Receive) -> bytes | None:
    """The whole body (the guard's ``receive`` caps its size), or None if the client left."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _job(body: bytes) -> JobCreate | None:
    """The job the route would take, or None where the route would answer an error."""
    try:
        value: Any = json.loads(body)
        job = JobCreate.model_validate(value)
    except (ValueError, ValidationError, RecursionError):
        return None
    return None if job.problems() else job


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body already read, then what comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
