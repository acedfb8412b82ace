"""Who is signed in to the dashboard, and the proof that a change comes from its own pages.

With client tokens on, signing in puts the token in an HttpOnly, SameSite=Strict cookie: the
browser sends it, scripts cannot read it. A request carrying only that cookie may read
(GET); to change anything (POST, DELETE) it must also send ``X-CSRF-Token``, an HMAC of the
token that only the service's own pages hold: another site can neither read it nor make a
browser send a custom header without a CORS preflight, which the service never grants. On
the loopback without tokens, the dashboard just opens, and the CSRF token is still asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

COOKIE = "dacirco_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _secret(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "ui_secret", None) is None:
        state.ui_secret = secrets.token_bytes(32)  # per process: a restart signs anew
    return state.ui_secret


def csrf_token(request: Request, token: str) -> str:
    return hmac.new(_secret(request), token.encode(), hashlib.sha256).hexdigest()


def cookie_token(request: Request) -> str | None:
    """The client token the dashboard's cookie carries, if any."""
    value = request.cookies.get(COOKIE)
    return value or None


def csrf_ok(request: Request, token: str) -> bool:
    """A change (POST, DELETE) made on the strength of the cookie comes from our pages."""
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), csrf_token(request, token).encode())
