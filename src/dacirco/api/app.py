"""The FastAPI applications: the controller's (public + worker + files) and the API-only one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dacirco import __version__
from dacirco.api import files, jobs, worker_protocol, workers
from dacirco.api.backend import ApiError, LocalBackend, RemoteBackend
from dacirco.controller.core import Controller
from dacirco.controller.errors import ControllerError
from dacirco.storage.local import LocalStorage

log = logging.getLogger(__name__)

DESCRIPTION = """Transcoding on demand. Submit a job with `POST /jobs`, follow it with
`GET /jobs/{id}/state`, download the result with `GET /jobs/{id}/output`.
Bitrates are in kbit/s (500..8000); speed is `ultrafast` or `fast`."""


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc == ("body",) and err.get("type") == "missing":
            out.append("body: a JSON object with id_video, bitrate and speed is required")
        else:
            out.append(f"{_field(loc)}: {err.get('msg', 'invalid')}")
    return "; ".join(out)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={"detail": errors, "message": _validation_message(errors)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # Undecodable bytes: a malformed body like any other, named as such.
            message = "body: not valid JSON (the bytes could not be decoded)"
            return JSONResponse(
                status_code=422,
                content={
                    "detail": [{"loc": ["body"], "msg": message, "type": "json_invalid"}],
                    "message": message,
                },
            )
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
        )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail})

    @app.exception_handler(ControllerError)
    async def _controller_error(_: Request, exc: ControllerError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})


def _base(title: str, lifespan: Any) -> FastAPI:
    app = FastAPI(title=title, version=__version__, description=DESCRIPTION, lifespan=lifespan)
    _install_handlers(app)
    app.include_router(jobs.router)
    app.include_router(workers.router)

    @app.get("/health", tags=["service"], summary="Liveness probe")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_controller_app(controller: Controller, local_storage: LocalStorage | None) -> FastAPI:
    """Public routes, worker protocol and (for local storage) signed file transfers."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await controller.start()
        try:
            yield
        finally:
            await controller.close()

    app = _base("DaCirco", lifespan)
    app.state.controller = controller
    app.state.backend = LocalBackend(controller)
    app.state.local_storage = local_storage
    app.include_router(worker_protocol.router)
    if local_storage is not None:
        app.include_router(files.router)
    return app


def create_api_app(controller_url: str) -> FastAPI:
    """The public routes only, forwarding to a controller that runs apart."""
    backend = RemoteBackend(controller_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backend.aclose()

    app = _base("DaCirco REST API", lifespan)
    app.state.backend = backend
    return app
