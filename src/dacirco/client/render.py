"""How ``dacirco jobs`` shows jobs and events: rich tables and lines, or JSON. Pure."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from dacirco.api.schemas import JobPublic, OutputsPublic
from dacirco.client.errors import ApiError, Unauthorized, WaitTimeout
from dacirco.client.sse import Event
from dacirco.monitor.render import state_text


def dumps(value: Any) -> str:
    """One line of JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def jobs_table(jobs: list[JobPublic], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("id", "movie", "kbit/s", "speed", "codec", "state", "progress", "delay"):
        table.add_column(name, justify="right" if name in ("kbit/s", "progress") else "left")
    for job in jobs:
        table.add_row(
            job.id,
            job.id_video,
            str(job.bitrate),
            job.speed,
            job.codec,
            state_text(job.state),
            f"{job.progress:.0%}",
            _seconds(job.delay),
        )
    return table


def job_table(job: JobPublic) -> Table:
    """Every field of one job, one a row."""
    table = Table(show_header=False, title=f"job {job.id}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in job.model_dump(exclude={"timings"}).items():
        if value in (None, [], ""):
            continue
        if name == "state":
            shown: Text | str = state_text(str(value))
        elif name == "errors":
            shown = "\n".join(str(v) for v in value)
        else:
            shown = str(value)
        table.add_row(name, shown)
    for name, value in job.timings.model_dump().items():
        if value:
            table.add_row(f"timings.{name}", value)
    return table


def outputs_table(found: OutputsPublic) -> Table:
    """A streaming job's playlists and thumbnails (their URLs), then its files."""
    table = Table(
        title=f"job {found.job}: {len(found.files)} files in {found.folder} "
        f"(URLs valid {found.expires_in:.0f} s)"
    )
    table.add_column("what")
    table.add_column("size or URL", overflow="fold")
    for kind, where in sorted(found.playlists.items()):
        table.add_row(f"{kind} playlist", where)
    for kind, where in sorted(found.thumbnails.items()):
        table.add_row(f"thumbnails {kind}", where)
    for f in found.files:
        table.add_row(f.name, f"{f.size:,} B")
    return table


def job_line(job: JobPublic) -> str:
    """A finished (or last seen) job in one line."""
    line = f"job {job.id}: {job.state}"
    if job.state == "Completed" and job.delay is not None:
        line += f" in {job.delay:.1f} s"
    if job.output:
        line += f", output {job.output}"
    if job.reused_from:
        line += f" (reused from job {job.reused_from})"
    if job.error:
        line += f": {job.error}"
    return line


def event_line(event: Event) -> str:
    """``#42 10:00:01 job 1b2c… Started -> Completed (done by w…)``"""
    at = (event.at or "")[11:19] or "-"
    change = f"{event.previous} -> {event.state}" if event.previous else f"new, {event.state}"
    line = f"#{event.seq} {at} {event.kind} {event.id} {change}"
    return f"{line} ({event.detail})" if event.detail else line


def error_text(exc: ApiError | WaitTimeout) -> str:
    """The one line said for a failed command."""
    if isinstance(exc, WaitTimeout):
        return str(exc)
    message = exc.message
    if isinstance(exc, Unauthorized):
        hint = "needs an API token" if exc.status == 401 else "refused the API token"
        message += f" (the service {hint}: --api-token or DACIRCO_API_TOKEN)"
    return message


def error_json(exc: ApiError | WaitTimeout) -> str:
    if isinstance(exc, WaitTimeout):
        job = exc.job.model_dump(mode="json") if isinstance(exc.job, JobPublic) else None
        return dumps({"status": None, "message": str(exc), "job": job})
    return dumps({"status": exc.status, "message": error_text(exc), "detail": exc.detail})
