"""CORS for the URLs a browser player fetches: ``/play/…`` (a streaming job's playlists, and
the redirects to its segments) and ``/files/…`` (those segments on local storage).

hls.js and dash.js run in a page of the provider's own site and fetch with XHR, which a
browser allows across origins only when the answer says so. These URLs are capabilities
(signed and expiring: whoever holds one may read that file, whatever page it is in), so they
are open to any origin, for reading only (``GET``, ``HEAD``, a ``Range``), without cookies.
Every other route stays closed to other origins: a page elsewhere cannot call the API with
the dashboard's session (``session.py``), and preflights there are never granted.

Starlette's ``CORSMiddleware`` does the work (preflights answered before the request guard,
the headers added to every answer, errors included); this only picks the paths.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PLAYER_PATHS = ("/play/", "/files/")


class PlayerCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "HEAD"],
            allow_headers=["Range"],
            expose_headers=["Content-Length", "Content-Range", "Accept-Ranges"],
            max_age=3600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PLAYER_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
