"""Command functions ``report`` (``dacirco report``) and ``node_stats`` (``dacirco node-stats``,
classic ``dacirco_get_node_stats``).

Exit status: 0 once everything is written, 1 if an output cannot be written, 2 if an input is
missing, unreadable or not what it should be (one line naming the file, no traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dacirco.analytics.logs import NotAnEventLog, parse_log
from dacirco.analytics.nodestats import NodeStatsError, node_stats
from dacirco.analytics.quality import rendition_table
from dacirco.analytics.report import default_out, report, rich_table
from dacirco.analytics.run import RunData, from_parsed, read_config

Runs = Annotated[
    list[Path],
    typer.Argument(
        metavar="RUN...",
        show_default=False,
        help="event logs of the runs (tc-events-NN.txt); their .config.txt and "
        ".samples.jsonl are read from beside them when present",
    ),
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="folder for the PNG plots and report.html "
        "(default: X-report/ beside the first log X.txt, X-vs-Y-report/ with several)",
    ),
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def _warn(message: str) -> None:
    typer.secho(f"warning: {message}", err=True, fg="yellow")


def _first_line(path: Path) -> str | None:
    """The first non-blank line of ``path``, cut to 60 characters (None if there is none)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, start=1):
                if line.strip():
                    text = line.strip()
                    return f"line {n}: {text[:60]!r}" + ("…" if len(text) > 60 else "")
    except OSError:
        return None
    return None


def load_run(log: Path) -> RunData:
    """The run of ``log``, or a typer.Exit(2) after one line naming the file."""
    if not log.exists():
        raise _fail(f"{log}: no such file", 2)
    if not log.is_file():
        raise _fail(f"{log} is not a file", 2)
    try:
        parsed = parse_log(log)
    except NotAnEventLog as exc:
        first = _first_line(log)
        raise _fail(str(exc) + (f" (first bad {first})" if first else ""), 2) from None
    except OSError as exc:
        raise _fail(f"cannot read {log}: {exc.strerror or exc}", 2) from None
    run = from_parsed(parsed, read_config(log))
    if parsed.stats.truncated:
        _warn(f"{log}: the last line was cut short (did the run crash?); it was skipped")
    if parsed.stats.malformed:
        _warn(f"{log}: {parsed.stats.malformed} line(s) are not events; skipped")
    return run


def report_command(runs: Runs, out: Out = None) -> None:
    """Report on one or several runs: delay, queueing, boot, utilization and cost figures.

    Prints one table (a column per run), and writes PNG plots (delay CDF, Gantt timeline of
    workers and jobs, utilization over time, comparisons) and one self-contained report.html.
    Definitions: docs/metrics.md.
    """
    data = [load_run(Path(log)) for log in runs]
    folder = out if out is not None else default_out(list(runs))
    try:
        result = report(data, folder)
    except OSError as exc:
        raise _fail(f"cannot write the report into {folder}: {exc.strerror or exc}", 1) from None
    console = Console(width=max(100, 46 + 26 * len(data)))
    console.print(rich_table(result))
    for run, label in zip(data, result.labels, strict=True):
        if (renditions := rendition_table(run, label)) is not None:
            console.print(renditions)
    for run, fig in zip(data, result.figures, strict=True):
        if fig.unfinished:
            _warn(f"{run.label}: {fig.unfinished} job(s) unfinished when the log ends")
    console.print(f"plots: {len(result.plots)} PNG files in {result.out}")
    console.print(f"page: {result.html}")


CsvArg = Annotated[
    Path,
    typer.Argument(
        metavar="CSV",
        show_default=False,
        help="an ok-requests CSV of process-logs (tc-events-NN-ok-requests.csv)",
    ),
]
LogOpt = Annotated[
    Path | None,
    typer.Option("--log", help="the run's event log (default: X.txt for X-ok-requests.csv)"),
]
SamplesOpt = Annotated[
    Path | None,
    typer.Option("--samples", help="the run's samples (default: X.samples.jsonl beside the log)"),
]
CsvOut = Annotated[
    Path | None,
    typer.Option("--out", help="output CSV (default: X-ok-requests-node-stats.csv beside CSV)"),
]


def node_stats_command(
    csv_file: CsvArg, log: LogOpt = None, samples: SamplesOpt = None, out: CsvOut = None
) -> None:
    """Add per-job node statistics to an ok-requests CSV: host, load_min, load_avg, load_max.

    host is the node the job's worker ran on (EV11); load_* are the min, average and max CPU %
    of that node while the job was transcoding (file downloaded -> transcoding done), from the
    run's samples; with no sample inside, from the nearest ones around it. Writes
    X-ok-requests-node-stats.csv.
    """
    for path in (csv_file, log, samples):
        if path is not None and not path.is_file():
            raise _fail(
                f"{path}: no such file" if not path.exists() else f"{path} is not a file", 2
            )
    try:
        result = node_stats(csv_file, log=log, samples=samples, out=out)
    except (NodeStatsError, NotAnEventLog) as exc:
        raise _fail(str(exc), 2) from None
    except OSError as exc:
        name = exc.filename or csv_file
        raise _fail(f"{name}: {exc.strerror or exc}", 1 if name == out else 2) from None
    for warning in result.warnings:
        _warn(warning)
    with_load = sum(1 for r in result.rows if r["load_avg"])
    typer.echo(f"{len(result.rows)} jobs, {with_load} with a load: {result.out}")
