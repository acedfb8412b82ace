"""The dashboard's runs: the figures and plots of `dacirco report` for the run under way, or
for several runs side by side (the event logs beside this run's), drawn in a thread into a
folder of this process and served from there."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

from dacirco.controller.core import Controller

LOG_NAME = re.compile(r"^tc-events-[A-Za-z0-9_.-]+\.txt$")
PLOT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.png$")


def event_logs(c: Controller) -> list[Path]:
    """The event logs beside this run's (its own first), newest first."""
    current = c.events.path
    others = [
        p
        for p in current.parent.glob("tc-events-*.txt")
        if LOG_NAME.match(p.name) and not p.name.endswith(".config.txt") and p != current
    ]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [current, *others]


def chosen(c: Controller, names: list[str]) -> list[Path] | str:
    """The logs of ``names`` (this run's when none), or why they cannot be shown."""
    logs = {p.stem: p for p in event_logs(c)}
    if not names:
        return [c.events.path]
    unknown = [n for n in names if n not in logs]
    if unknown:
        return f"no run named {unknown[0]!r} here: one of {', '.join(logs)}"
    return [logs[n] for n in dict.fromkeys(names)]


def reports_root(state: Any) -> Path:
    root = getattr(state, "ui_reports", None)
    if root is None:
        root = state.ui_reports = Path(tempfile.mkdtemp(prefix="dacirco-ui-reports-"))
    return root


async def draw(state: Any, logs: list[Path]) -> dict[str, Any]:
    """The report of ``logs``: its rows, its plots (names under ``key``), or the error."""
    from dacirco.analytics.logs import NotAnEventLog
    from dacirco.analytics.report import report
    from dacirco.analytics.run import from_log

    key = hashlib.sha256("\n".join(str(p) for p in logs).encode()).hexdigest()[:16]
    out = reports_root(state) / key

    def build() -> Any:
        return report([from_log(p) for p in logs], out)

    lock = getattr(state, "ui_report_lock", None)
    if lock is None:  # one report drawn at a time: matplotlib is not free
        lock = state.ui_report_lock = asyncio.Lock()
    async with lock:
        try:
            result = await asyncio.to_thread(build)
        except (OSError, ValueError, NotAnEventLog) as exc:
            return {"error": f"cannot report on {', '.join(p.name for p in logs)}: {exc}"}
    return {
        "key": key,
        "labels": result.labels,
        "rows": result.rows,
        "plots": [{"title": p.title, "name": p.path.name} for p in result.plots],
    }


def plot_path(state: Any, key: str, name: str) -> Path | None:
    if not re.fullmatch(r"[0-9a-f]{16}", key) or not PLOT_NAME.match(name):
        return None
    path = reports_root(state) / key / name
    return path if path.is_file() else None
