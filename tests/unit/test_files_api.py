"""Signed file transfers in process: HEAD with a GET signature, and an upload whose client goes
away midway (one warning line, no traceback, no partial file left). The app's
``upload_refusal`` stands in for the controller: task "t1" is open."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from dacirco.api import files
from dacirco.storage.local import LocalStorage

BASE = "http://files.test"
KEY = "output-videos/out.mp4"
TASK = "t1"


@pytest.fixture
def storage(fast_tmp: Path) -> LocalStorage:
    return LocalStorage(fast_tmp / "videos", base_url=BASE)


@pytest.fixture
def app(storage: LocalStorage) -> FastAPI:
    app = FastAPI()
    app.include_router(files.router)
    app.state.local_storage = storage
    app.state.upload_refusal = lambda task, key: None if task == TASK else "no longer open"
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def test_head_is_granted_by_the_get_signature(app, storage):
    storage.path(KEY).write_bytes(b"x" * 1234)
    async with _client(app) as c:
        head = await c.head(storage.get_url(KEY, 60))
        with_put_sig = await c.head(storage.put_url(KEY, 60, TASK))
        missing = await c.head(storage.get_url("output-videos/none.mp4", 60))
    assert head.status_code == 200, head.text
    assert head.headers["content-length"] == "1234" and head.content == b""
    assert with_put_sig.status_code == 403
    assert missing.status_code == 404


async def _put_then_disconnect(app: FastAPI, url: str, sent: bytes) -> list[dict]:
    """An upload announcing more than it sends, whose client then goes away."""
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "root_path": "",
        "query_string": parts.query.encode(),
        "headers": [(b"host", b"files.test"), (b"content-length", b"1000000")],
        "client": ("127.0.0.1", 5555),
        "server": ("files.test", 80),
    }
    messages = [
        {"type": "http.request", "body": sent, "more_body": True},
        {"type": "http.disconnect"},
    ]
    answers: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        answers.append(message)

    await app(scope, receive, send)  # raised ClientDisconnect into the server before the fix
    return answers


async def test_an_upload_cut_short_leaves_a_warning_and_no_partial_file(app, storage, caplog):
    caplog.set_level(logging.WARNING)
    await _put_then_disconnect(app, storage.put_url(KEY, 60, TASK), b"y" * 4096)
    folder = storage.path(KEY).parent
    assert list(folder.iterdir()) == []  # neither the output nor its .part
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"upload of {KEY} abandoned: the client disconnected after 4096 bytes"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_complete_upload_still_lands(app, storage):
    async with _client(app) as c:
        resp = await c.put(storage.put_url(KEY, 60, TASK), content=b"z" * 100)
    assert resp.status_code == 201 and resp.json() == {"key": KEY, "size": 100}
    assert storage.path(KEY).read_bytes() == b"z" * 100
    assert [p.name for p in storage.path(KEY).parent.iterdir()] == ["out.mp4"]


async def _chunks(total: int, size: int = 1000):
    for _ in range(total // size):
        yield b"c" * size


@pytest.mark.parametrize("announced", [True, False])
async def test_an_upload_past_the_cap_is_refused_and_leaves_nothing(app, storage, announced):
    """413 from the request guard (``--max-output-gb``), with or without a Content-Length
    saying it up front; no file, no partial file."""
    from dacirco.api.guard import RequestGuard

    app.add_middleware(RequestGuard, max_upload=5000)
    body = b"x" * 6000 if announced else _chunks(6000)
    async with _client(app) as c:
        resp = await c.put(storage.put_url(KEY, 60, TASK), content=body)
        fits = await c.put(storage.put_url(KEY, 60, TASK), content=_chunks(5000))
    assert resp.status_code == 413, resp.text
    assert "larger than 5000 bytes" in resp.json()["detail"]
    assert fits.status_code == 201 and storage.path(KEY).stat().st_size == 5000
    assert [p.name for p in storage.path(KEY).parent.iterdir()] == ["out.mp4"]
