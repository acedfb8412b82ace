"""Bodies are refused before they are read: on EVERY route of both apps, a request without its
credentials (401) or with a body over the cap (413) is answered without the app taking a
single byte of its body; a chunked body is counted as it comes and cut at the cap."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import fastapi.routing
import pytest
from fastapi import FastAPI

from dacirco.api.app import create_api_app, create_controller_app
from dacirco.api.guard import MAX_BODY
from tests.unit.api_stub import CONTROLLER_URL
from tests.unit.conftest import Make

TOKEN = "guard-client-token"
MAX_UPLOAD = 4 << 20  # the test app's cap on /files uploads
OPEN = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(path, method) of every route of ``app``, included routers flattened (recent FastAPI
    keeps them as lazy ``_IncludedRouter`` entries in ``app.routes``)."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(flatten(app.routes) if flatten else app.routes)
    found = [(r.path, m) for r in routes if r.path for m in sorted(r.methods or ()) if m != "HEAD"]
    assert len(found) >= 10, found
    return found


def concrete(path: str) -> str:
    """A path that the route matches: each parameter given a plausible value."""
    path = re.sub(r"\{key:path\}", "output-videos/out.mp4", path)
    return re.sub(r"\{[^}]+\}", "x0", path)


class Body:
    """An ASGI ``receive`` serving a body of ``size`` bytes in 64 KiB pieces, counting what the
    app took of it."""

    def __init__(self, size: int | None) -> None:
        self.left = size if size is not None else 1 << 40  # chunked: as long as it is read
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        piece = min(self.left, 1 << 16)
        self.left -= piece
        self.read += piece
        return {"type": "http.request", "body": b"x" * piece, "more_body": self.left > 0}


async def call(
    app: FastAPI, method: str, path: str, headers: dict[str, str], body: Body, length: int | None
) -> tuple[int, dict]:
    """One request straight through ASGI; its status and JSON body."""
    path, _, query = path.partition("?")
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"content-type", b"application/json")]
    if length is not None:
        raw.append((b"content-length", str(length).encode()))
    else:
        raw.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": raw, "client": ("127.0.0.1", 5555),
        "server": ("api.test", 80),
    }  # fmt: skip
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, body, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    import json

    return start["status"], json.loads(content) if content.startswith(b"{") else {}


async def _apps(make: Make) -> list[tuple[FastAPI, dict[str, dict[str, str]], str]]:
    """The service's app (worker and file routes included) and the split `rest-api` app,
    each with the credentials that open each kind of route, and a signed upload URL."""
    h = make()
    job = await h.submit()
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    task = await h.poll(worker)
    assert task is not None and task.job_id == job.id
    storage = h.controller.storage
    service = create_controller_app(h.controller, storage, (TOKEN,), max_upload=MAX_UPLOAD)
    upload = (await h.controller.upload_url(worker, task.task_id)).url
    credentials = {
        "client": {"Authorization": f"Bearer {TOKEN}"},
        "worker": {"Authorization": f"Bearer {h.token(worker.id)}"},
    }
    split = create_api_app(CONTROLLER_URL, api_tokens=(TOKEN,))
    return [
        (service, credentials, upload.removeprefix("http://127.0.0.1:1")),
        (split, credentials, ""),
    ]


def _kind(path: str) -> str:
    if path in OPEN or path == "/" or path == "/ui" or path.startswith("/ui/"):
        return "open"  # the dashboard's pages check its session themselves
    if path.startswith("/worker/"):
        return "worker"
    if path.startswith("/play/"):
        return "play"
    return "files" if path.startswith("/files/") else "client"


async def test_every_route_refuses_a_body_without_credentials_before_reading_it(make: Make):
    for app, _, _ in await _apps(make):
        for path, method in every_route(app):
            body = Body(1000)
            status, answer = await call(app, method, concrete(path), {}, body, 1000)
            if _kind(path) == "open":
                assert status < 500, (method, path, status)
                continue
            assert body.read == 0, (method, path, status)
            assert status == 401, (method, path, status, answer)
            assert answer["detail"] and answer["message"], (method, path)


async def test_every_route_refuses_an_oversized_body_before_reading_it(make: Make):
    for app, credentials, upload in await _apps(make):
        for path, method in every_route(app):
            kind = _kind(path)
            target = concrete(path)
            if kind == "files":
                target = upload  # a real signed URL: the cap, not the signature, refuses it
            if kind == "play":  # likewise, a real play URL
                target = urlsplit(app.state.playback.play_url("f", "master.m3u8")).path
            headers = credentials.get(kind, {})
            size = (MAX_UPLOAD if kind == "files" and method == "PUT" else MAX_BODY) + 1
            body = Body(size)
            status, answer = await call(app, method, target, headers, body, size)
            assert body.read == 0, (method, path, status)
            assert status == 413, (method, path, status, answer)
            assert "larger than" in answer["message"] and answer["detail"], (method, path)


@pytest.mark.parametrize(
    ("path", "kind"), [("/jobs", "client"), ("/worker/register", "worker"), ("files", "files")]
)
async def test_a_chunked_body_is_cut_at_the_cap(make: Make, path: str, kind: str):
    app, credentials, upload = (await _apps(make))[0]
    limit = MAX_UPLOAD if kind == "files" else MAX_BODY
    body = Body(None)
    method = "PUT" if kind == "files" else "POST"
    target = upload if kind == "files" else path
    status, answer = await call(app, method, target, credentials.get(kind, {}), body, None)
    assert status == 413, answer
    assert "larger than" in answer["message"]
    assert body.read <= limit + (1 << 16)  # at most one piece past the cap


async def test_a_method_a_path_does_not_take_is_a_405_not_a_401(make: Make):
    """The truthful answer for an undeclared method, with or without credentials, and no
    body read either way."""
    for app, _, _ in await _apps(make):
        for path in ("/worker/task", "/worker/register", "/jobs", "/jobs/x0"):
            if not any(p == path or re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), path)
                       for p, _ in every_route(app)):  # fmt: skip
                continue  # not a route of this app (the rest-api has no worker protocol)
            body = Body(1000)
            status, answer = await call(app, "TRACE", path, {}, body, 1000)
            assert (status, body.read) == (405, 0), (path, answer)
            assert "not allowed here" in answer["message"]
