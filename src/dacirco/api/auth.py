"""Client API tokens: ``Authorization: Bearer <token>`` on the public job and worker routes.

Off when no token is configured (a service on the loopback only); the worker protocol and
the signed ``/files`` URLs keep their own credentials. A token is never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dacirco.api import session

REALM = 'Bearer realm="dacirco"'

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="A client API token (`--api-token`, `DACIRCO_API_TOKENS`).",
)


def clean_tokens(tokens: Iterable[str]) -> tuple[str, ...]:
    """The tokens given, stripped, empty ones dropped, duplicates once, in order."""
    return tuple(dict.fromkeys(t.strip() for t in tokens if t and t.strip()))


def _known(token: str, tokens: tuple[str, ...]) -> bool:
    # Every token compared, each in constant time: the answer's timing tells nothing.
    found = False
    for candidate in tokens:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_known(token: str, tokens: tuple[str, ...]) -> bool:
    """``token`` is one of ``tokens`` (compared in constant time)."""
    return bool(token) and _known(token, tokens)


def client_refusal(request: Request, tokens: tuple[str, ...]) -> HTTPException | None:
    """Why this request may not use a public route (401 no token, 403 a wrong one), or None;
    the request guard asks it before a body is read, the routes' dependency again. Besides
    ``Authorization: Bearer``, the dashboard's session cookie: enough to read, and to change
    anything with the page's CSRF token (``session.py``)."""
    if not tokens:
        return None
    token = bearer_token(request.headers.get("authorization"))
    if token is None and (cookie := session.cookie_token(request)) is not None:
        if not _known(cookie, tokens):
            return HTTPException(403, "this session's API token is not valid here: sign in again")
        if request.method in session.UNSAFE and not session.csrf_ok(request, cookie):
            return HTTPException(403, "a change from the dashboard needs its CSRF token")
        return None
    if token is None:
        return HTTPException(
            401,
            "an API token is required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": REALM},
        )
    if not _known(token, tokens):
        return HTTPException(
            403,
            "this API token is not valid here",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    return None


async def require_client(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    # ``credentials`` is there for the OpenAPI schema (the apiToken scheme, /docs' Authorize).
    tokens: tuple[str, ...] = getattr(request.app.state, "api_tokens", ())
    refused = client_refusal(request, tokens)
    if refused is not None:
        raise refused


def is_loopback(host: str) -> bool:
    """``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name, "0.0.0.0", "": could be reached from elsewhere


def check_auth(host: str, tokens: tuple[str, ...], insecure_no_auth: bool) -> str | None:
    """Why this listening address may not run as configured, or None: off the loopback, the
    public API needs a token unless the operator said ``--insecure-no-auth``."""
    if tokens or insecure_no_auth or is_loopback(host):
        return None
    return (
        f"--host {host or '(all addresses)'} listens beyond this machine: give an API token "
        "(--api-token, --api-token-file or DACIRCO_API_TOKENS), or --insecure-no-auth to run "
        "without authentication"
    )
