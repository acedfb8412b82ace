"""Objects of the local storage, reachable only through signed, expiring URLs (GET and PUT)."""

from __future__ import annotations

import logging
import os
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.requests import ClientDisconnect

from dacirco.storage.base import InvalidKey, check_key, part_path
from dacirco.storage.local import LocalStorage

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# The most bytes one upload may write, so that a worker cannot fill the disk with one PUT:
# 18 hours at the highest bitrate. The app may set its own (``app.state.max_upload_bytes``).
MAX_UPLOAD_BYTES = 64 << 30
router = APIRouter(prefix="/files", tags=["files"], include_in_schema=False)

Expires = Annotated[int, Query(description="unix time after which the URL is refused")]
Sig = Annotated[str, Query(min_length=1, max_length=128)]


def _storage(request: Request) -> LocalStorage:
    return request.app.state.local_storage


def _checked(request: Request, method: str, key: str, expires: int, sig: str) -> LocalStorage:
    storage = _storage(request)
    try:
        check_key(key)
    except InvalidKey as exc:
        raise HTTPException(400, str(exc)) from exc
    refused = storage.signer.check(method, key, expires, sig, time.time())
    if refused:
        raise HTTPException(403, refused)
    return storage


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
async def upload(request: Request, key: str, expires: Expires, sig: Sig) -> dict:
    storage = _checked(request, "PUT", key, expires, sig)
    cap = getattr(request.app.state, "max_upload_bytes", None) or MAX_UPLOAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HTTPException(413, f"upload of {key}: {declared} bytes, more than the {cap} allowed")
    dest = storage.path(key)
    tmp = part_path(dest)
    size = 0
    try:
        async with await anyio.open_file(tmp, "wb") as out:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:  # a body longer than it said, or one that did not say
                    raise HTTPException(413, f"upload of {key}: more than the {cap} bytes allowed")
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK:  # one thread hop per MiB, not per network read
                    await out.write(b"".join(pending))
                    pending, buffered = [], 0
            if pending:
                await out.write(b"".join(pending))
        # The output replaces nothing until it is complete.
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
