"""Routes of a streaming job's outputs: ``GET /jobs/{id}/outputs`` (the files and playlists,
for a client) and ``/play/…`` (the playlists and their files, for a player; see playback)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response

from dacirco.api.deps import BackendDep
from dacirco.api.playback import Playback
from dacirco.api.responses import NOT_READY
from dacirco.api.schemas import OutputsPublic
from dacirco.outputs.names import FILE_NAME_RE, media_type
from dacirco.storage.base import InvalidKey, StorageError

router = APIRouter(prefix="/jobs", tags=["jobs"])
play_router = APIRouter(prefix="/play", tags=["outputs"], include_in_schema=False)


@router.get(
    "/{job_id}/outputs",
    response_model=OutputsPublic,
    summary="A streaming job's files and playlists, with signed, expiring URLs",
    responses={409: NOT_READY},
)
async def read_outputs(job_id: str, backend: BackendDep) -> OutputsPublic:
    return await backend.outputs(job_id)


Folder = Annotated[str, Path(max_length=255, description="the job's output folder")]
Expires = Annotated[int, Path(description="unix time after which the URL is refused")]
Sig = Annotated[str, Path(min_length=1, max_length=128)]
Name = Annotated[str, Path(max_length=255, description="a file of the folder")]


@play_router.api_route(
    "/{folder}/{expires}/{sig}/{name}",
    methods=["GET", "HEAD"],
    summary="A playlist of a streaming job (served), or one of its files (a redirect)",
    response_class=Response,
    responses={307: {"description": "a media file: its signed, expiring storage URL"}},
)
async def play(request: Request, folder: Folder, expires: Expires, sig: Sig, name: Name):
    playback: Playback = request.app.state.playback
    if refused := playback.refusal(folder, expires, sig):
        raise HTTPException(403, refused)
    if not FILE_NAME_RE.fullmatch(name):
        raise HTTPException(404, f"no file {name[:80]!r} in these outputs")
    try:
        kind = media_type(name)
        if kind is None:
            url = await anyio.to_thread.run_sync(playback.file_url, folder, name)
            return RedirectResponse(url, status_code=307)
        body = await anyio.to_thread.run_sync(playback.read, folder, name)
    except InvalidKey:
        raise HTTPException(404, f"no output folder {folder[:80]!r}") from None
    except StorageError as exc:
        raise HTTPException(503, f"storage is unavailable: {exc}") from None
    if body is None:
        raise HTTPException(404, f"no file {name!r} in these outputs")
    return Response(body, media_type=kind, headers={"Cache-Control": "private, max-age=60"})
