"""``dacirco monitor`` (classic ``dacirco_rest_monitor``): a live view of a service's workers
and jobs, read over the public REST API only."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.live import Live

from dacirco.auth_options import ClientToken
from dacirco.client import ApiError, AsyncClient, Unauthorized, Unreachable
from dacirco.monitor.render import render, render_unreachable
from dacirco.monitor.snapshot import DEFAULT_CONCURRENCY, Snapshot, SnapshotFetcher

__all__ = ["Snapshot", "SnapshotFetcher", "describe_error", "monitor", "render"]

REQUEST_TIMEOUT = 10.0
PLAIN_WIDTH = 160  # --once into a file or a pipe: wide enough for every column

Target = Annotated[str, typer.Option("-t", "--target", help="host of the DaCirco REST API")]
Port = Annotated[int, typer.Option("-p", "--port", help="port of the DaCirco REST API")]
RefreshInterval = Annotated[
    float, typer.Option("--refresh-interval", min=0.05, help="seconds between two refreshes")
]
Once = Annotated[bool, typer.Option("--once", help="print one snapshot as plain tables and exit")]
Limit = Annotated[
    int, typer.Option("--limit", min=0, help="jobs shown, newest first (all are counted)")
]


def base_url(target: str, port: int) -> str:
    host = f"[{target}]" if ":" in target and not target.startswith("[") else target
    return f"http://{host}:{port}"


def _status_line(status: int, path: str | None) -> str:
    hint = ""
    if status == 401:
        hint = ": this service needs an API token (--api-token or DACIRCO_API_TOKEN)"
    elif status == 403:
        hint = ": the API token was refused"
    return f"HTTP {status} from {path or '?'}{hint}"


def describe_error(exc: ApiError | httpx.HTTPError | ValueError) -> str:
    """A one-line reason for a failed read."""
    if isinstance(exc, Unreachable):
        return exc.reason
    if isinstance(exc, ApiError):
        line = _status_line(exc.status, exc.path)
        return line if isinstance(exc, Unauthorized) else f"{line}: {exc.message}"
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_line(exc.response.status_code, exc.request.url.path)
    reason = str(exc).strip() or type(exc).__name__
    return " ".join(reason.split())


def _console() -> Console:
    """The terminal's console, or a wide plain one when writing to a file or a pipe."""
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=PLAIN_WIDTH)


def _client(url: str, token: str | None = None) -> AsyncClient:
    limits = httpx.Limits(max_connections=DEFAULT_CONCURRENCY, max_keepalive_connections=10)
    return AsyncClient(url, token, timeout=REQUEST_TIMEOUT, limits=limits)


async def snapshot_once(url: str, limit: int, token: str | None = None) -> Snapshot:
    """One snapshot of the service at ``url``."""
    async with _client(url, token) as client:
        return await SnapshotFetcher(url, limit).fetch(client)


async def run_live(
    url: str, limit: int, interval: float, console: Console, token: str | None = None
) -> None:
    """Refresh the view every ``interval`` seconds until cancelled; never gives up."""
    fetcher = SnapshotFetcher(url, limit)
    async with _client(url, token) as client:
        view = render_unreachable(url, "connecting", interval, datetime.now(UTC))
        with Live(view, console=console, auto_refresh=False) as live:
            while True:
                try:
                    view = render(await fetcher.fetch(client))
                except (ApiError, ValueError) as exc:
                    reason = describe_error(exc)
                    view = render_unreachable(url, reason, interval, datetime.now(UTC))
                live.update(view, refresh=True)
                await asyncio.sleep(interval)


def monitor(
    target: Target = "127.0.0.1",
    port: Port = 8000,
    refresh_interval: RefreshInterval = 3.0,
    once: Once = False,
    limit: Limit = 30,
    api_token: ClientToken = None,
) -> None:
    """Show the workers and jobs of a DaCirco service, refreshed until Ctrl-C."""
    url = base_url(target, port)
    if once:
        try:
            snapshot = asyncio.run(snapshot_once(url, limit, api_token))
        except (ApiError, ValueError) as exc:
            reason = describe_error(exc)
            Console(stderr=True, highlight=False).print(
                f"error: cannot reach {url}: {reason}", markup=False, soft_wrap=True
            )
            raise typer.Exit(1) from None
        _console().print(render(snapshot))
        return
    # Ctrl-C (SIGINT) stops it even when it was started in the background of a shell, which
    # starts it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        asyncio.run(run_live(url, limit, refresh_interval, _console(), api_token))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
