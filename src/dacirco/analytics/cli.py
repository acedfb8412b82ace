"""Command function ``process_logs`` (``dacirco process-logs``, classic ``dacirco_process_logs``).

Exit status: 0 once both CSV files are written, 1 if they cannot be written, 2 if the log is
missing, unreadable or not an event log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.analytics.csvs import write_csvs
from dacirco.analytics.logs import NotAnEventLog, ParsedLog, parse_log

LogArg = Annotated[
    Path,
    typer.Argument(
        metavar="LOG",
        show_default=False,
        help="event log to convert (JSON Lines, e.g. tc-events-01.txt)",
    ),
]
OutDir = Annotated[
    Path | None,
    typer.Option("--out-dir", help="folder for the two CSV files (default: the log's folder)"),
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def summary(parsed: ParsedLog, paths: tuple[Path, Path]) -> Table:
    """The short report printed after a conversion."""
    table = Table(title=f"{parsed.path.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    lost = sum(1 for w in parsed.workers.values() if w.lost_reason is not None)
    table.add_row("workers", f"{len(parsed.workers)}" + (f" ({lost} lost)" if lost else ""))
    table.add_row("ok requests", str(len(parsed.ok_requests)))
    by_state = parsed.incomplete_by_state()
    detail = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
    incomplete = len(parsed.incomplete_requests)
    table.add_row("incomplete requests", f"{incomplete}" + (f" ({detail})" if detail else ""))
    stats = parsed.stats
    skipped = f"{stats.skipped}"
    if stats.skipped:
        skipped += f" ({stats.truncated} truncated, {stats.malformed} malformed)"
    table.add_row("events", str(stats.events))
    table.add_row("skipped lines", skipped)
    table.add_row("workers CSV", str(paths[0]))
    table.add_row("ok requests CSV", str(paths[1]))
    return table


def process_logs(log: LogArg, out_dir: OutDir = None) -> None:
    """Convert an event log to tc-events-NN-workers.csv and tc-events-NN-ok-requests.csv.

    Times stay the log's ISO strings; every timediff_* is in seconds.
    A request is ok once an attempt uploaded its output (EV7); its row shows
    that attempt. Other requests are only counted here, by their last state.
    """
    if not log.exists():
        raise _fail(f"{log}: no such file", 2)
    if not log.is_file():
        raise _fail(f"{log} is not a file", 2)
    try:
        parsed = parse_log(log)
    except NotAnEventLog as exc:
        raise _fail(str(exc), 2) from None
    except OSError as exc:
        raise _fail(f"cannot read {log}: {exc.strerror or exc}", 2) from None
    try:
        paths = write_csvs(parsed, out_dir)
    except OSError as exc:
        raise _fail(f"cannot write the CSV files: {exc}", 1) from None
    Console().print(summary(parsed, paths))
    if parsed.stats.truncated:
        typer.secho(
            "warning: the last line was cut short (did the run crash?); it was skipped",
            err=True,
            fg="yellow",
        )
