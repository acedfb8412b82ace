"""Rendering a monitor snapshot as rich renderables: pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dacirco.monitor.snapshot import JobRow, Snapshot, WorkerRow

SHORT_ID = 8
ERROR_WIDTH = 40
MAX_STOPPED = 5
STATE_STYLES = {
    "Waiting": "yellow",
    "Started": "cyan",
    "Completed": "green",
    "Error": "bold red",
    "Canceled": "dim red",
    "Booting": "yellow",
    "Idle": "blue",
    "Busy": "magenta",
    "Stopped": "dim",
}


def short(value: str | None, width: int = SHORT_ID) -> str:
    """The first characters of an id ("" for none)."""
    return (value or "")[:width]


def shorten(text: str, width: int = ERROR_WIDTH) -> str:
    """One line of at most ``width`` characters, ending with an ellipsis when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def format_duration(seconds: float | None) -> str:
    """A compact duration: 12s, 3m04s, 2h05m, 3d04h ("" for none, 0s when negative)."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def since(now: datetime, then: datetime | None) -> str:
    """``now - then`` as a compact duration ("" when ``then`` is unknown)."""
    return format_duration((now - then).total_seconds()) if then else ""


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def counts_text(label: str, counts: dict[str, int], total: int | None = None) -> Text:
    """``label: [N total · ]State n · State n …`` with each state in its color."""
    text = Text(f"{label}: ", style="bold")
    if total is not None:
        text.append(f"{total} total · ")
    for i, (state, n) in enumerate(counts.items()):
        if i:
            text.append(" · ")
        text.append(f"{state} {n}", style=STATE_STYLES.get(state, ""))
    return text


def header(snapshot: Snapshot) -> Text:
    """The server, the time, and the counts by state of jobs and workers."""
    text = Text(f"DaCirco {snapshot.url}", style="bold")
    text.append(f"  {snapshot.taken_at.astimezone():%Y-%m-%d %H:%M:%S}\n")
    text.append_text(counts_text("jobs", snapshot.job_counts, snapshot.total_jobs))
    text.append("\n")
    text.append_text(counts_text("workers", snapshot.worker_counts))
    return text


def workers_table(workers: list[WorkerRow], now: datetime, max_stopped: int = MAX_STOPPED) -> Table:
    """Every live worker, then the most recently started stopped ones."""
    alive = [w for w in workers if w.state != "Stopped"]
    stopped = [w for w in workers if w.state == "Stopped"]
    hidden = max(0, len(stopped) - max_stopped)
    shown = alive + list(reversed(stopped))[:max_stopped]
    table = Table(title="Workers", title_justify="left", expand=False)
    for name, justify in [("id", "left"), ("name", "left"), ("state", "left"), ("node", "left"),
                          ("cpus", "right"), ("memory GB", "right"), ("job", "left"),
                          ("jobs done", "right"), ("idle for", "right")]:  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for w in shown:
        table.add_row(
            short(w.id),
            w.name,
            state_text(w.state),
            w.node,
            w.cpus,
            w.memory,
            short(w.job_id),
            str(w.jobs_done),
            since(now, w.idle_since) if w.state == "Idle" else "",
        )
    if not workers:
        table.caption = "no workers"
    elif hidden:
        table.caption = f"{hidden} older stopped workers not shown"
    return table


def _progress(job: JobRow) -> str:
    if job.state == "Completed":
        return "100%"
    if job.state == "Started" or job.progress:
        return f"{job.progress * 100:.0f}%"
    return ""


def _delay_or_error(job: JobRow) -> Text:
    if job.state == "Completed" and job.delay is not None:
        return Text(f"{job.delay:.1f}s")
    if job.state == "Error":
        return Text(shorten(job.error or "failed"), style="red")
    return Text("")


def jobs_table(jobs: list[JobRow], now: datetime, total: int) -> Table:
    shown = f"newest {len(jobs)} of {total}" if len(jobs) < total else f"{total}"
    table = Table(title=f"Jobs ({shown})", title_justify="left", expand=False)
    for name, justify in [("id", "left"), ("movie", "left"), ("kbit/s", "right"),
                          ("speed", "left"), ("state", "left"), ("age", "right"),
                          ("worker", "left"), ("progress", "right"),
                          ("delay / error", "left")]:  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for j in jobs:
        table.add_row(
            short(j.id),
            j.id_video,
            str(j.bitrate),
            j.speed,
            state_text(j.state),
            since(now, j.received),
            short(j.worker_id),
            _progress(j),
            _delay_or_error(j),
        )
    if not jobs:
        table.caption = "no jobs"
    return table


def render(snapshot: Snapshot) -> RenderableType:
    """The whole view: header, workers table, jobs table."""
    now = snapshot.taken_at
    return Group(
        header(snapshot),
        workers_table(snapshot.workers, now),
        jobs_table(snapshot.jobs, now, snapshot.total_jobs),
    )


def render_unreachable(url: str, reason: str, interval: float, now: datetime) -> RenderableType:
    """What the live view shows while the service cannot be read."""
    text = Text(f"DaCirco {url}", style="bold")
    text.append(f"  {now.astimezone():%Y-%m-%d %H:%M:%S}\n")
    text.append(f"cannot reach {url}: {reason}; retrying every {interval:g} s", style="bold red")
    return text
