"""The dashboard's pages: sign in, the live overview, a job's page. Changes (submit, cancel)
go through the public API from the page's script, with the session cookie and the CSRF
header (``session.py``); the pages themselves only read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from dacirco.api import session
from dacirco.api.auth import token_known
from dacirco.controller.core import Controller
from dacirco.ui import runs, views

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")
router = APIRouter(prefix="/ui", include_in_schema=False)

Page = Annotated[int, Query(ge=0, le=1_000_000, description="page of jobs, newest first")]
RunNames = Annotated[list[str] | None, Query(max_length=200, description="runs to compare")]


def _controller(request: Request) -> Controller:
    return request.app.state.controller


def _signed_in(request: Request) -> str | None:
    """The session's token ("" on the loopback without tokens); None: not signed in."""
    tokens = request.app.state.api_tokens
    if not tokens:
        return ""
    token = session.cookie_token(request)
    return token if token is not None and token_known(token, tokens) else None


def _page(
    request: Request, name: str, token: str, status_code: int = 200, **context: Any
) -> Response:
    context |= {"csrf": session.csrf_token(request, token), "tokens_on": bool(token)}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, page: Page = 0) -> Response:
    token = _signed_in(request)
    if token is None:
        return RedirectResponse("/ui/login", status_code=303)
    c = _controller(request)
    paged = views.paging(c, page)
    shown = await c.newest_jobs(paged[2] * views.PAGE, views.PAGE)
    data = views.overview(c, paged, c.clock(), shown)
    state = request.app.state
    if getattr(state, "ui_cache", None) is None:
        state.ui_cache = {}
    data["movies"] = await asyncio.to_thread(views.movies, c, state.ui_cache)
    return _page(request, "overview.html", token, **data)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str) -> Response:
    token = _signed_in(request)
    if token is None:
        return RedirectResponse("/ui/login", status_code=303)
    backend = request.app.state.backend
    try:
        job = await backend.job(job_id)
    except Exception as exc:  # ApiError 404 and the like: a page that says so
        status = getattr(exc, "status", 500)
        message = getattr(exc, "message", "this job cannot be shown")
        return _page(request, "missing.html", token, message=message, status_code=status)
    return _page(request, "job.html", token, job=job, timeline=views.timeline(job))


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, run: RunNames = None) -> Response:
    token = _signed_in(request)
    if token is None:
        return RedirectResponse("/ui/login", status_code=303)
    c = _controller(request)
    logs = runs.event_logs(c)
    picked = runs.chosen(c, run or [])
    if isinstance(picked, str):
        return _page(request, "missing.html", token, message=picked, status_code=404)
    drawn = await runs.draw(request.app.state, picked)
    names = [p.stem for p in logs]
    selected = {p.stem for p in picked}
    return _page(request, "runs.html", token, names=names, selected=selected, **drawn)


@router.get("/runs/plots/{key}/{name}")
async def run_plot(request: Request, key: str, name: str) -> Response:
    if _signed_in(request) is None:
        return Response("sign in first", status_code=401)
    path = runs.plot_path(request.app.state, key, name)
    if path is None:
        return Response("no such plot", status_code=404)
    return FileResponse(path, media_type="image/png")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if not request.app.state.api_tokens:
        return RedirectResponse("/ui", status_code=303)
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    tokens = request.app.state.api_tokens
    if not tokens:
        return RedirectResponse("/ui", status_code=303)
    body = (await request.body())[:4096].decode("utf-8", "replace")
    token = (parse_qs(body).get("token") or [""])[0].strip()
    if not token_known(token, tokens):
        await asyncio.sleep(0.5)  # a guess costs time
        context = {"error": "this API token is not valid here"}
        return templates.TemplateResponse(request, "login.html", context, status_code=403)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        session.COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        max_age=12 * 3600,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    token = _signed_in(request)
    if token and not session.csrf_ok(request, token):
        return Response("missing or wrong CSRF token", status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(session.COOKIE, path="/")
    return response
