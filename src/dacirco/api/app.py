"""The FastAPI applications: the controller's (public + worker + files) and the API-only one."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from dacirco import __version__
from dacirco.api import (
    agents,
    events,
    files,
    jobs,
    metrics,
    outputs,
    presets,
    worker_protocol,
    workers,
)
from dacirco.api.auth import clean_tokens, require_client
from dacirco.api.backend import ApiError, LocalBackend, error_answer, error_headers, one_line
from dacirco.api.cors import PlayerCors
from dacirco.api.deps import known_query
from dacirco.api.playback import Playback
from dacirco.api.remote import RemoteBackend
from dacirco.api.responses import AUTH, COMMON
from dacirco.api.submit_path import ServiceApp
from dacirco.controller.core import Controller
from dacirco.controller.errors import ControllerError
from dacirco.service_config import ServerOptions
from dacirco.storage.local import LocalStorage
from dacirco.storage.signing import UrlSigner

log = logging.getLogger(__name__)

DESCRIPTION = """Transcoding on demand. Submit a job with `POST /jobs`, follow it with
`GET /jobs/{id}/state`, download the result with `GET /jobs/{id}/output`.
Bitrates are in kbit/s (500..8000); speed is `ultrafast` or `fast`."""


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string"}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _error_message(err: dict[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    if kind == "json_invalid":
        # FastAPI puts the character position where a field name would be: ("body", 12).
        reason = (err.get("ctx") or {}).get("error") or "JSON decode error"
        pos = next((p for p in loc if isinstance(p, int)), None)
        where = f" at character {pos}" if pos is not None else ""
        return f"body: invalid JSON ({reason}{where})"
    if loc == ("body",) and kind == "missing":
        return "body: a JSON object with id_video, bitrate and speed is required"
    if loc == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type"):
        value = err.get("input")
        if isinstance(value, float) and not math.isfinite(value):
            return "body: not valid JSON (NaN, Infinity and numbers out of range like 1e999)"
        if isinstance(value, bytes | bytearray):  # FastAPI reads JSON only when told so
            return "body: not read as JSON: send it with 'Content-Type: application/json'"
        return f"body: must be a JSON object, not {_json_type(value)}"
    return f"{_field(loc)}: {err.get('msg', 'invalid')}"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    return one_line("; ".join(_error_message(e) for e in errors), 1000)


def _unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not parse a body (it says only "There was an error parsing the body")."""
    if isinstance(cause, RecursionError):
        return "body: cannot be read as JSON (nested too deeply)"
    if isinstance(cause, UnicodeDecodeError):
        return "body: not valid JSON (the bytes are not UTF-8, UTF-16 or UTF-32 text)"
    if cause is not None:
        return f"body: could not be read ({type(cause).__name__})"
    return "body: could not be read"


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods some route of the request's path takes (Starlette's own 405 names only the
    first route's): each asked of the routes as they are (included routers too)."""
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in app.routes):
            allowed.append(method)
    return allowed


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in raw
        ]
        return error_answer(422, errors, _validation_message(raw))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:  # every method of the path, not only its first route's
            allowed = allowed_methods(app, request)
            message = f"method {request.method} is not allowed here: {', '.join(allowed)}"
            return error_answer(405, message, message, {"Allow": ", ".join(allowed)})
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # A body FastAPI could not parse: a malformed body like any other, named as such.
            message = _unreadable_body(exc.__cause__)
            detail = [{"loc": ["body"], "msg": message, "type": "json_invalid"}]
            return error_answer(422, detail, message)
        return error_answer(exc.status_code, exc.detail, str(exc.detail), exc.headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_answer(exc.status, exc.detail, exc.message, exc.headers)

    @app.exception_handler(ControllerError)
    async def _controller_error(_: Request, exc: ControllerError) -> JSONResponse:
        return error_answer(exc.status, str(exc), str(exc), error_headers(exc))


def _base(
    title: str, lifespan: Any, api_tokens: Iterable[str] = (), max_upload: int | None = None
) -> FastAPI:
    # Every route behind the guard; POST /jobs on a short path before FastAPI's own layers.
    app = ServiceApp(
        max_upload=max_upload,
        title=title,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query)],  # an unknown query parameter is a 422
    )
    _install_handlers(app)
    # Players in other sites' pages may read the signed /play and /files URLs (outermost:
    # their preflights are answered before the guard).
    app.add_middleware(PlayerCors)
    app.state.api_tokens = tokens = clean_tokens(api_tokens)
    # With tokens, the public job and worker routes need one (401 without, 403 wrong);
    # /health, /docs, /openapi.json, the worker protocol and /files keep their own rules.
    auth: dict[str, Any] = {"responses": COMMON}
    if tokens:
        auth = {"dependencies": [Depends(require_client)], "responses": COMMON | AUTH}
    app.include_router(jobs.router, **auth)
    app.include_router(outputs.router, **auth)
    app.include_router(workers.router, **auth)
    app.include_router(events.router, **auth)
    app.include_router(presets.router, **auth)

    @app.get("/health", tags=["service"], summary="Liveness probe")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_controller_app(
    controller: Controller,
    local_storage: LocalStorage | None,
    api_tokens: Iterable[str] = (),
    max_upload: int = int(ServerOptions.max_output_gb * 10**9),
) -> FastAPI:
    """Public routes, worker protocol and (for local storage) signed file transfers of at most
    ``max_upload`` bytes; with ``api_tokens``, the public routes need one of them."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await controller.start()
        try:
            yield
        finally:
            await controller.close()

    app = _base("DaCirco", lifespan, api_tokens, max_upload)
    app.state.controller = controller
    signer = getattr(local_storage, "signer", None) or UrlSigner()
    app.state.playback = playback = Playback(
        controller.storage, signer, controller.config.controller_url, controller.clock
    )
    app.state.backend = LocalBackend(controller, playback)
    app.state.local_storage = local_storage
    app.state.upload_refusal = controller.upload_refusal  # a PUT URL works while its task is open
    app.include_router(worker_protocol.router)
    if app.state.api_tokens:  # an agent sends a client token like any client
        app.include_router(agents.router, dependencies=[Depends(require_client)], responses=AUTH)
    else:
        app.include_router(agents.router)
    app.state.metrics_registry = metrics.registry_for(controller)
    # A scraper sends a client token like any client (Prometheus: `authorization`).
    if app.state.api_tokens:
        app.include_router(metrics.router, dependencies=[Depends(require_client)], responses=AUTH)
    else:
        app.include_router(metrics.router)
    app.include_router(outputs.play_router)
    if local_storage is not None:
        app.include_router(files.router)
    _dashboard(app)
    return app


def _dashboard(app: FastAPI) -> None:
    """The web dashboard (``/ui``), its files, and ``/`` leading to it."""
    from fastapi.responses import RedirectResponse

    from dacirco.ui import routes as ui

    app.include_router(ui.router)
    app.mount("/ui/static", ui.static, name="ui-static")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)


def create_api_app(
    controller_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    api_tokens: Iterable[str] = (),
    controller_token: str | None = None,
) -> FastAPI:
    """The public routes only, forwarding to a controller that runs apart (through
    ``transport`` when given, as tests do); clients need one of ``api_tokens`` (if any), and
    ``controller_token`` is sent to the controller."""
    backend = RemoteBackend(controller_url, transport=transport, token=controller_token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backend.aclose()

    app = _base("DaCirco REST API", lifespan, api_tokens)
    app.state.backend = backend
    where = f"the dashboard is served by the controller: {controller_url.rstrip('/')}/ui"

    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/{rest:path}", include_in_schema=False)
    async def dashboard_elsewhere() -> JSONResponse:
        return error_answer(404, where, where)

    return app
