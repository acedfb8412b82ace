"""Credentials and size, checked before a body is read: an ASGI middleware in front of every
route of both apps.

FastAPI reads and parses a route's whole body before it runs the route's dependencies, where
the token is checked: without this guard, a client without any token could make the service
hold whatever it sends until the 401 (a 150 MB ``POST /jobs`` took it from 131 to 537 MB).
Here, before the app sees a request: the credentials its path needs, then the size its body
declares (``Content-Length``), then, while the app reads, the bytes that really come (a
chunked body declares none). What each path needs:

- ``/health``, the API documentation, and the dashboard's pages (``/ui``, which check its
  session themselves): nothing;
- ``/worker/...``, the worker protocol: a worker's token, asked of the controller;
- ``/play/<folder>/<expires>/<sig>/<file>``, a streaming job's playlists and files: that
  signature, valid;
- ``/files/...``, signed transfers: a signature in the query (the route checks it in full and
  asks whether the upload's task is still open, before it reads a byte); a ``PUT`` carries an
  output, up to ``max_upload`` bytes;
- anything else: a client token, when tokens are on.

Every other body is capped at ``MAX_BODY``. Refusals carry the ``detail`` + ``message`` of
every error answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dacirco.api.auth import bearer_token, client_refusal
from dacirco.core.errors import ControllerError

# The largest JSON body a route takes: a job is under 1 KB, a worker's samples at most ~0.5 MB.
MAX_BODY = 1 << 20
OPEN_PATHS = frozenset(
    {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
# The dashboard's pages check its session themselves (a sign-in form must reach them).
OPEN_PREFIXES = ("/ui/",)


class BodyTooLarge(HTTPException):
    """Raised into the app when a body passes its cap as it is read. A Starlette
    ``HTTPException``: FastAPI's body reading lets it through, and it is answered as any error."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "message": message}, status, headers=headers)


class RequestGuard:
    """Pure ASGI (no body buffering, streams and long-polls untouched); the tokens, the
    controller and the local storage are read from the app's state at each request."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY, max_upload: int | None = None):
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, what = self._limit(scope)
        refused = self._credentials(scope, headers) or self._declared(headers, limit, what)
        if refused is not None:
            if "content-length" in headers or "transfer-encoding" in headers:
                refused.headers["Connection"] = "close"  # its body was never read
            await refused(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(_too_large(limit, what))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await refusal(413, str(exc.detail), {"Connection": "close"})(scope, receive, send)

    def _limit(self, scope: Scope) -> tuple[int, str]:
        upload = scope["method"] == "PUT" and scope["path"].startswith("/files/")
        if upload and self.max_upload is not None:
            return self.max_upload, "an upload (--max-output-gb)"
        return self.max_body, "this route"

    def _credentials(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        path: str = scope["path"]
        if path in OPEN_PATHS or path == "/ui" or path.startswith(OPEN_PREFIXES):
            return None
        refused = self._refusal(scope, headers, path)
        if refused is not None and _wrong_method(scope):
            return None  # the app answers 405 with its Allow, at routing, reading no body
        return refused

    @staticmethod
    def _refusal(scope: Scope, headers: Headers, path: str) -> JSONResponse | None:
        state = scope["app"].state
        if path.startswith("/files/") and getattr(state, "local_storage", None) is not None:
            query = QueryParams(scope.get("query_string", b""))
            if query.get("sig") and query.get("expires"):
                return None
            return refusal(401, "a signed URL is required: this one has no 'expires' and 'sig'")
        playback = getattr(state, "playback", None)
        if path.startswith("/play/") and playback is not None:
            return _play_refusal(playback, path)
        controller = getattr(state, "controller", None)
        if path.startswith("/worker/") and controller is not None:
            token = bearer_token(headers.get("authorization"))
            if token is None:
                return refusal(401, "missing 'Authorization: Bearer <worker token>' header")
            try:
                controller.authenticate(token)
            except ControllerError as exc:
                return refusal(exc.status, str(exc))
            return None
        tokens = getattr(state, "api_tokens", ())
        if not tokens:
            return None
        refused = client_refusal(Request(scope), tokens)
        if refused is None:
            return None
        return refusal(refused.status_code, str(refused.detail), refused.headers)

    @staticmethod
    def _declared(headers: Headers, limit: int, what: str) -> JSONResponse | None:
        length = headers.get("content-length")
        if length is None:
            return None
        if not length.strip().isdigit():
            return refusal(400, "Content-Length is not a number of bytes")
        if int(length) > limit:
            return refusal(413, _too_large(limit, what))
        return None


def _wrong_method(scope: Scope) -> bool:
    """The path is a route's, but not with this method (a 405 is the truthful answer, and it
    reveals nothing a 401 would hide: the schema is public). Asked only of a request about to
    be refused: the routes are scanned off the path of every accepted request."""
    matches = [route.matches(scope)[0] for route in scope["app"].routes]
    return Match.FULL not in matches and Match.PARTIAL in matches


def _too_large(limit: int, what: str) -> str:
    return f"the request body is larger than {limit} bytes, the most {what} takes"


def _play_refusal(playback: Any, path: str) -> JSONResponse | None:
    """A play URL opens its folder until it expires: 401 if the path is not one, 403 if its
    signature is wrong or old."""
    parts = path.split("/")
    if len(parts) != 6 or not parts[3].isdigit() or not parts[4]:
        return refusal(401, "a signed play URL is required: /play/<folder>/<expires>/<sig>/<file>")
    refused = playback.refusal(unquote(parts[2]), int(parts[3]), parts[4])
    return refusal(403, refused) if refused else None
