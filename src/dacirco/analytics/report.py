"""The report of one or several runs: the figures as a table, PNG plots and one HTML page.

``report(runs, out)`` is the entry point for any code holding ``RunData`` (the ``dacirco
report`` command, the simulator's comparisons); every number comes from
``dacirco.analytics.figures`` (definitions in docs/metrics.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from dacirco.analytics.figures import Figures, Stats, figures, reused_summary
from dacirco.analytics.html import write_html
from dacirco.analytics.plots import Plot, render
from dacirco.analytics.quality import quality_rows
from dacirco.analytics.run import RunData

HTML_NAME = "report.html"
NA = "-"  # an undefined figure (no completed job, a run of no duration)


@dataclass(frozen=True)
class ReportResult:
    out: Path  # the folder holding the plots and the page
    labels: list[str]  # one per run, unique, in the order given
    figures: list[Figures]
    rows: list[tuple[str, list[str]]]  # the table: (row name, one cell per run)
    plots: list[Plot]
    html: Path


def _num(value: float, digits: int = 2) -> str:
    return NA if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return NA if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def _pair(s: Stats, fmt: Callable[[float], str]) -> str:
    return f"{fmt(s.avg)} / {fmt(s.p95)}"


ROWS: list[tuple[str, Callable[[Figures], str]]] = [
    ("jobs", lambda f: str(f.jobs)),
    (
        "completed / failed / canceled / unfinished",
        lambda f: f"{f.completed} / {f.failed} / {f.canceled} / {f.unfinished}",
    ),
    ("reused (another job's output)", reused_summary),
    ("delay avg / p95 / max (s)", lambda f: f"{_pair(f.delay, _num)} / {_num(f.delay.max)}"),
    ("queueing avg / p95 (s)", lambda f: _pair(f.queueing, _num)),
    ("workers", lambda f: str(f.workers)),
    ("boot avg (s)", lambda f: _num(f.boot.avg)),
    ("duration (s)", lambda f: _num(f.duration, 1)),
    (
        "capacity (cores, GB)",
        lambda f: f"{_num(f.capacity_cpus, 0)}, {_num(f.capacity_memory_gb, 1)}",
    ),
    ("used CPU and RAM from", lambda f: f.used_source),
    ("CPU utilization avg / p95", lambda f: _pair(f.cpu_util, _pct)),
    ("RAM utilization avg / p95", lambda f: _pair(f.ram_util, _pct)),
    ("reserved-CPU utilization avg / p95", lambda f: _pair(f.reserved_cpu_util, _pct)),
    ("reserved core-seconds", lambda f: _num(f.reserved_core_seconds, 1)),
    ("idle core-seconds", lambda f: _num(f.idle_core_seconds, 1)),
    ("reserved GB-seconds", lambda f: _num(f.reserved_gb_seconds, 1)),
]
NODE_ROW = "node CPU avg / p95 (samples)"


def table_rows(figs: list[Figures]) -> list[tuple[str, list[str]]]:
    """The report's rows, one cell per run (the node CPU row only when a run has samples)."""
    rows = [(name, [cell(f) for f in figs]) for name, cell in ROWS]
    if any(f.node_cpu_util is not None for f in figs):
        rows.append(
            (NODE_ROW, [_pair(f.node_cpu_util, _pct) if f.node_cpu_util else NA for f in figs])
        )
    return rows


def rich_table(result: ReportResult) -> Table:
    table = Table(title="DaCirco report" if len(result.labels) > 1 else result.labels[0])
    table.add_column("figure", style="bold", no_wrap=True)
    for label in result.labels:
        table.add_column(label, justify="right")
    for name, cells in result.rows:
        table.add_row(name, *cells)
    return table


def unique_labels(runs: list[RunData]) -> list[str]:
    """The runs' labels, made unique (``label (2)``) so columns and plots can be told apart."""
    labels: list[str] = []
    for run in runs:
        label, n = run.label or "run", 2
        while label in labels:
            label, n = f"{run.label or 'run'} ({n})", n + 1
        labels.append(label)
    return labels


def slug(label: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "run"


def unique_slugs(labels: list[str]) -> list[str]:
    """File-name-safe forms of ``labels``, unique (``name-2``)."""
    slugs: list[str] = []
    for label in labels:
        name, n = slug(label), 2
        while name in slugs:
            name, n = f"{slug(label)}-{n}", n + 1
        slugs.append(name)
    return slugs


def default_out(logs: list[Path]) -> Path:
    """``X-report/`` beside the first log ``X.txt``; with several logs, ``X-vs-Y…-report/``."""
    stems = [Path(p).stem for p in logs]
    name = "-vs-".join(stems[:3]) + (f"-and-{len(stems) - 3}-more" if len(stems) > 3 else "")
    return Path(logs[0]).parent / f"{name}-report"


def report(runs: list[RunData], out: Path) -> ReportResult:
    """Compute the figures of ``runs``, draw the plots and write the page into ``out``.

    Raises ValueError with no run, OSError when ``out`` cannot be written.
    """
    if not runs:
        raise ValueError("no run to report on")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = unique_labels(runs)
    figs = [figures(r) for r in runs]
    rows = table_rows(figs) + quality_rows(runs)
    plots = render(runs, labels, unique_slugs(labels), figs, out)
    notes = [
        f"{label}: used CPU and RAM from {f.used_source}"
        + ("" if r.samples is not None else " (no samples file)")
        for label, f, r in zip(labels, figs, runs, strict=True)
    ]
    page = write_html(out / HTML_NAME, "DaCirco report", labels, rows, plots, notes)
    return ReportResult(out, labels, figs, rows, plots, page)
