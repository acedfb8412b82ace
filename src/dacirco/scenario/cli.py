"""Command functions ``scenario`` (classic ``dacirco_scenario``) and ``wait_scenario``
(classic ``dacirco_wait_scenario``): generate, save and play scenarios against a job API.

Exit status: 0 once the scenario was played (whatever the server answered), 1 if the server
cannot be reached, 2 for bad options or a malformed scenario file (nothing is sent then).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.auth_options import ClientToken
from dacirco.scenario.generate import GENERATORS, generate
from dacirco.scenario.model import Request, ScenarioError, read_scenario, write_scenario
from dacirco.scenario.player import PlayReport, ServerUnreachable, play, play_one_by_one

PHASES = {"send": "sending", "wait": "waiting for jobs", "job": "jobs one by one"}

Target = Annotated[
    str, typer.Option("--target", "-t", help="host of the job API (or a full http:// URL)")
]
Port = Annotated[int, typer.Option("--port", "-p", help="port of the job API")]
Timeout = Annotated[
    float, typer.Option(help="seconds to wait for jobs to finish before reporting anyway")
]


def base_url(target: str, port: int) -> str:
    """The job API's URL from ``-t`` and ``-p`` (``-t`` may be a whole URL)."""
    if "://" in target:
        return target.rstrip("/")
    host = f"[{target}]" if ":" in target and not target.startswith("[") else target
    return f"http://{host}:{port}"


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def print_report(report: PlayReport, console: Console) -> None:
    """The summary table of a play, then the rejection and failure reasons."""
    table = Table(title="scenario summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("requests", str(len(report.records)))
    table.add_row("accepted", str(report.accepted))
    table.add_row("rejected", str(len(report.rejected)))
    table.add_row("failed sends", str(len(report.failed)))
    if report.scheduled:
        table.add_row("schedule lag max", _ms(report.lag_max))
        table.add_row("schedule lag p95", _ms(report.lag_p95))
    table.add_row("duration", _s(report.duration))
    if report.waited:
        for state, count in sorted(report.final_states.items()):
            table.add_row(f"final state {state}", str(count))
        if report.unfinished:
            table.add_row("unfinished (timeout)", str(report.unfinished))
        table.add_row("delay avg", _s(report.delay_avg))
        table.add_row("delay p95", _s(report.delay_p95))
        table.add_row("delay max", _s(report.delay_max))
    console.print(table)
    for title, items in (("rejected", report.rejected), ("failed", report.failed)):
        if not items:
            continue
        reasons: dict[str, list[int]] = {}
        for index, reason in items:
            reasons.setdefault(reason, []).append(index)
        console.print(f"{title}:")
        for reason, indexes in reasons.items():
            where = ", ".join(map(str, indexes[:10])) + (" ..." if len(indexes) > 10 else "")
            console.print(f"  {len(indexes)} x {reason} (requests {where})", soft_wrap=True)


def _run(player: Callable[[Callable[[str, int, int], None]], object]) -> PlayReport:
    """Run ``player(progress)`` under a rich progress bar (on stderr); exit 1 if unreachable."""
    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        try:
            return asyncio.run(player(progress))  # type: ignore[arg-type]
        except ServerUnreachable as exc:
            raise _fail(str(exc), 1) from None


def _read(path: Path) -> list[Request]:
    try:
        return read_scenario(path)
    except ScenarioError as exc:
        raise _fail(str(exc), 2) from None


def scenario(
    number: Annotated[
        int | None, typer.Option("--number", "-n", min=1, help="generate this many requests")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="replay this scenario file")
    ] = None,
    target: Target = "127.0.0.1",
    port: Port = 8000,
    seed: Annotated[
        int | None, typer.Option(help="random seed for -n (default: a fresh one, saved)")
    ] = None,
    generator: Annotated[
        str,
        typer.Option(
            help="how gaps are drawn for -n: "
            + "; ".join(f"{name}: {info.doc}" for name, info in GENERATORS.items())
        ),
    ] = "classic",
    rate: Annotated[float, typer.Option(help="poisson: requests/s")] = 0.2,
    on_rate: Annotated[float, typer.Option(help="bursty: requests/s during bursts")] = 1.0,
    off_rate: Annotated[float, typer.Option(help="bursty: requests/s between bursts")] = 0.05,
    on_seconds: Annotated[float, typer.Option(help="bursty: length of a burst (s)")] = 30.0,
    off_seconds: Annotated[float, typer.Option(help="bursty: time between bursts (s)")] = 120.0,
    mean_rate: Annotated[float, typer.Option(help="diurnal: mean requests/s")] = 0.2,
    amplitude: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="diurnal: relative swing of the rate, 0..1")
    ] = 0.8,
    period: Annotated[float, typer.Option(help="diurnal: length of one 'day' (s)")] = 600.0,
    wait: Annotated[
        bool, typer.Option("--wait", help="after sending, wait for every job to finish")
    ] = False,
    timeout: Timeout = 3600.0,
    time_scale: Annotated[
        float, typer.Option(min=0.0, help="multiply every delay (0.1 plays 10x faster)")
    ] = 1.0,
    out: Annotated[Path, typer.Option(help="where -n saves the generated scenario")] = Path(
        "last_scenario.csv"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="generate and save (or check -f) but send nothing")
    ] = False,
    reuse: Annotated[
        bool | None,
        typer.Option(
            "--reuse/--no-reuse",
            help="--no-reuse: every request is transcoded, even one identical to an earlier "
            "one (default: the service's, which reuses outputs)",
            show_default=False,
        ),
    ] = None,
    api_token: ClientToken = None,
) -> None:
    """Play a scenario: generate N requests (-n, saved to last_scenario.csv) or replay a
    file (-f), each sent at its time without waiting for the previous answer."""
    if (number is None) == (file is None):
        raise _fail("give exactly one of -n/--number and -f/--file", 2)
    console = Console()
    if file is not None:
        requests = _read(file)
        source = str(file)
    else:
        assert number is not None
        if generator not in GENERATORS:
            raise _fail(f"unknown generator {generator!r}; one of {', '.join(GENERATORS)}", 2)
        seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        params = {
            "rate": rate, "on_rate": on_rate, "off_rate": off_rate, "on_seconds": on_seconds,
            "off_seconds": off_seconds, "mean_rate": mean_rate, "amplitude": amplitude,
            "period_seconds": period,
        }  # fmt: skip
        try:
            requests = generate(generator, number, random.Random(seed), **params)
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
        used = {k: v for k, v in params.items() if k in GENERATORS[generator].params}
        header = f"dacirco scenario: generator {generator}, seed {seed}, {number} requests"
        if used:
            header += ", " + ", ".join(f"{k}={v}" for k, v in used.items())
        write_scenario(out, requests, header_comment=header)
        source = f"{out} (generator {generator}, seed {seed})"
    console.print(f"{len(requests)} requests from {source}", soft_wrap=True)
    if dry_run:
        return
    url = base_url(target, port)
    report = _run(
        lambda progress: play(
            requests,
            url,
            wait=wait,
            progress=progress,
            time_scale=time_scale,
            timeout=timeout,
            token=api_token,
            reuse=reuse,
        )
    )
    print_report(report, console)


def wait_scenario(
    file: Annotated[Path, typer.Argument(help="the scenario file to play")],
    target: Target = "127.0.0.1",
    port: Port = 8000,
    timeout: Timeout = 3600.0,
    api_token: ClientToken = None,
) -> None:
    """Play a scenario file one request at a time: each is sent once the previous job has
    finished (Completed or Error); the file's delays are ignored."""
    requests = _read(file)
    url = base_url(target, port)
    report = _run(
        lambda progress: play_one_by_one(
            requests, url, progress=progress, timeout=timeout, token=api_token
        )
    )
    print_report(report, Console())
