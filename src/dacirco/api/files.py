"""Objects of the local storage, reachable only through signed, expiring URLs (GET and PUT).

A PUT URL names its task: it is taken only while that task is open (``upload_refusal``, the
controller's), checked before the first byte is read and again before the upload replaces
anything, so a retried upload of an open task lands and a URL seen once opens nothing later.
Its size is capped by the request guard (``--max-output-gb``).
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.requests import ClientDisconnect

from dacirco.storage.base import InvalidKey, check_key, part_path
from dacirco.storage.local import LocalStorage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
router = APIRouter(prefix="/files", tags=["files"], include_in_schema=False)

Expires = Annotated[int, Query(description="unix time after which the URL is refused")]
Sig = Annotated[str, Query(min_length=1, max_length=128)]
Task = Annotated[str | None, Query(max_length=128, description="PUT: the task of the upload")]


def _storage(request: Request) -> LocalStorage:
    return request.app.state.local_storage


def _checked(
    request: Request, method: str, key: str, expires: int, sig: str, task: str | None = None
) -> LocalStorage:
    storage = _storage(request)
    try:
        check_key(key)
    except InvalidKey as exc:
        raise HTTPException(400, str(exc)) from exc
    refused = storage.check(method, key, expires, sig, task)
    if refused:
        raise HTTPException(403, refused)
    return storage


def _still_open(request: Request, task: str, key: str) -> None:
    """403 unless ``task`` is open and uploads ``key`` (no controller: no upload at all)."""
    refusal = getattr(request.app.state, "upload_refusal", None)
    reason = "this service takes no uploads" if refusal is None else refusal(task, key)
    if reason:
        raise HTTPException(403, reason)


@router.api_route("/{key:path}", methods=["GET", "HEAD"])
async def download(request: Request, key: str, expires: Expires, sig: Sig) -> FileResponse:
    # HEAD is a GET without the body: the GET signature grants it.
    storage = _checked(request, "GET", key, expires, sig)
    path = storage.path(key)
    if not await anyio.Path(path).is_file():
        raise HTTPException(404, f"object {key} not found")
    return _BigChunks(path, media_type="video/mp4", filename=path.name)


class _BigChunks(FileResponse):
    # Each chunk is a hop to a worker thread: 1 MiB chunks, not 64 KiB, keep a local transfer
    # at disk speed.
    chunk_size = CHUNK


@router.put("/{key:path}", status_code=201)
async def upload(request: Request, key: str, expires: Expires, sig: Sig, task: Task = None) -> dict:
    storage = _checked(request, "PUT", key, expires, sig, task)  # refused without its task
    task = task or ""
    _still_open(request, task, key)
    dest = await anyio.to_thread.run_sync(storage.folder_for, key)
    tmp = part_path(dest)
    size = 0
    try:
        async with await anyio.open_file(tmp, "wb") as out:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in request.stream():
                size += len(chunk)
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK:  # one thread hop per MiB, not per network read
                    await out.write(b"".join(pending))
                    pending, buffered = [], 0
            if pending:
                await out.write(b"".join(pending))
        # The output replaces nothing until it is complete, and not once its task has ended
        # (canceled, lost) while the bytes came.
        _still_open(request, task, key)
        await anyio.to_thread.run_sync(os.replace, tmp, dest)
    except ClientDisconnect:
        await anyio.Path(tmp).unlink(missing_ok=True)
        log.warning("upload of %s abandoned: the client disconnected after %d bytes", key, size)
        # Nobody will read this answer; it only ends the request cleanly.
        raise HTTPException(400, f"upload of {key} interrupted: client disconnected") from None
    except BaseException:
        await anyio.Path(tmp).unlink(missing_ok=True)
        raise
    return {"key": key, "size": size}
