"""``dacirco simulate`` and ``dacirco compare``: the simulator from the command line.

(``dacirco calibrate`` measures this machine with real ffmpeg, so it lives apart, in
``dacirco.calibration``.)
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.domain import FLAVORS
from dacirco.policies.base import available
from dacirco.sim.bound import lower_bound
from dacirco.sim.calibrate import Calibration
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup, compare, csv_rows, rows
from dacirco.sim.models import Models, check_runtime
from dacirco.sim.pareto import pareto_plot
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape

# A comparison table is wide: do not squeeze it to 80 columns when piped to a file.
console = Console(width=None if sys.stdout.isatty() else 180)

Nodes = Annotated[int | None, typer.Option(help="nodes (default: the reference, 3)")]
Cores = Annotated[int, typer.Option(help="cores per node")]
Memory = Annotated[float, typer.Option(help="GB of memory per node")]
Flavor = Annotated[str, typer.Option(help="worker flavor: tiny, small, medium")]
MaxWorkers = Annotated[
    int | None,
    typer.Option(help="most workers at once (default: one per core, so capacity binds first)"),
]
MaxIdle = Annotated[float, typer.Option(help="grace-period: seconds an idle worker is kept")]
CallInterval = Annotated[float, typer.Option(help="seconds between two policy ticks")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", help="vm, pod or local (boot times)")]
CalibrationOpt = Annotated[Path | None, typer.Option(help="calibration file (dacirco calibrate)")]
Jobs = Annotated[int, typer.Option("--jobs", "-n", min=1, help="requests per run")]
Load = Annotated[float | None, typer.Option(help="stretch arrivals to this offered load rho")]
Param = Annotated[
    list[str] | None, typer.Option("--param", help="generator parameter, KEY=VALUE (repeatable)")
]
DurationScale = Annotated[float, typer.Option(help="catalog: --duration-scale it was seeded with")]
MaxHeight = Annotated[int | None, typer.Option(help="catalog: --max-height it was seeded with")]
CatalogOpt = Annotated[
    str,
    typer.Option(
        "--catalog",
        help="default (movies of 4-60 s) or short (clips of 5-15 s, as long as a VM boot)",
    ),
]
Exact = Annotated[bool, typer.Option(help="call the policy on every tick (no shortcut)")]
SplitOpt = Annotated[
    bool,
    typer.Option(
        "--split/--no-split",
        help="let policies split jobs in chunks encoded on several workers, then merged",
    ),
]


def _params(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected KEY=NUMBER", param_hint="--param")
    return out


def _setup(
    nodes: int | None,
    cores: int,
    memory: float,
    flavor: str,
    max_workers: int | None,
    max_idle_time: float,
    call_interval: float,
    runtime: str,
    calibration: Path | None,
    jobs: int,
    load: float | None,
    param: list[str] | None,
    duration_scale: float,
    max_height: int | None,
    exact: bool,
    catalog: str = "default",
    split: bool = True,
) -> Setup:
    try:
        check_runtime(runtime)
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; one of {', '.join(FLAVORS)}")
        dc = DataCenter.reference() if nodes is None else DataCenter.uniform(nodes, cores, memory)
        if dc.holds(FLAVORS[flavor]) < 1:
            raise ValueError(f"no node can hold a {flavor} worker")
        cal = Calibration.load(calibration) if calibration is not None else None
        if call_interval <= 0:
            raise ValueError("call_interval must be > 0")
        shape = CatalogShape.named(catalog, duration_scale, max_height)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    config = SimConfig(
        flavor=flavor,
        max_workers=max_workers,
        max_idle_time=max_idle_time,
        call_interval=call_interval,
        runtime=runtime,
        exact=exact,
        split=split,
    )
    return Setup(
        datacenter=dc,
        config=config,
        models=Models.build(runtime, cal),
        jobs=jobs,
        catalog=shape,
        load=load,
        params=_params(param),
    )


def _check_policies(names: list[str]) -> None:
    unknown = [n for n in names if n not in available()]
    if unknown:
        console.print(
            f"[red]error:[/red] unknown policy {', '.join(unknown)};"
            f" one of {', '.join(available())}"
        )
        raise typer.Exit(2)


def simulate(
    policy: Annotated[
        str, typer.Option("--policy", "--algorithm", help="policy name")
    ] = "grace-period",
    workload: Annotated[
        str, typer.Option(help="classic, poisson, bursty, diurnal or a scenario file")
    ] = "classic",
    seed: Annotated[int, typer.Option(help="random seed (workload and draws)")] = 1,
    jobs: Jobs = 500,
    load: Load = None,
    param: Param = None,
    nodes: Nodes = None,
    cores: Cores = 6,
    memory: Memory = 16.0,
    flavor: Flavor = "small",
    max_workers: MaxWorkers = None,
    max_idle_time: MaxIdle = 60.0,
    call_interval: CallInterval = 1.0,
    runtime: RuntimeOpt = "vm",
    calibration: CalibrationOpt = None,
    duration_scale: DurationScale = 1.0,
    max_height: MaxHeight = None,
    catalog: CatalogOpt = "default",
    exact: Exact = False,
    split: SplitOpt = True,
    event_log: Annotated[
        Path | None, typer.Option(help="write the run's event log here (and its .config.txt)")
    ] = None,
) -> None:
    """Simulate one policy on one workload, on the reference data center by default."""
    _check_policies([policy])
    setup = _setup(
        nodes,
        cores,
        memory,
        flavor,
        max_workers,
        max_idle_time,
        call_interval,
        runtime,
        calibration,
        jobs,
        load,
        param,
        duration_scale,
        max_height,
        exact,
        catalog,
        split,
    )
    try:
        sim_jobs, rho = setup.workload(workload, seed)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    meta = {
        "workload": workload,
        "jobs": len(sim_jobs),
        "rho": rho,
        "calibration": str(calibration) if calibration else None,
        "workload_params": setup.params,
    }
    t0 = time.perf_counter()
    result = setup.run(policy, sim_jobs, seed, log=event_log is not None, meta=meta)
    wall = time.perf_counter() - t0
    f = figures(result.run)
    bound = lower_bound(sim_jobs, setup.models, setup.datacenter, setup.config.split)
    table = Table(
        title=f"{policy} on {workload} (seed {seed}, rho = {rho:.2f},"
        f" {setup.datacenter.cpus} cores)"
    )
    table.add_column("figure")
    table.add_column("simulated", justify="right")
    table.add_column("lower bound", justify="right")
    lines = [
        ("jobs completed", f"{f.completed}/{f.jobs}", ""),
        (
            "delay avg / p95 / max (s)",
            f"{f.delay.avg:.1f} / {f.delay.p95:.1f} / {f.delay.max:.1f}",
            f"{bound.delay_avg:.1f} / {bound.delay_p95:.1f}",
        ),
        ("queueing avg / p95 (s)", f"{f.queueing.avg:.1f} / {f.queueing.p95:.1f}", "0 / 0"),
        ("workers started, boot avg (s)", f"{f.workers}, {f.boot.avg:.1f}", ""),
        (
            "reserved core·s",
            f"{f.reserved_core_seconds:.0f}",
            f"{bound.reserved_core_seconds:.0f}",
        ),
        ("idle core·s", f"{f.idle_core_seconds:.0f}", "0"),
        ("CPU util avg / p95", f"{100 * f.cpu_util.avg:.1f}% / {100 * f.cpu_util.p95:.1f}%", ""),
        ("RAM util avg / p95", f"{100 * f.ram_util.avg:.1f}% / {100 * f.ram_util.p95:.1f}%", ""),
        (
            "reserved CPU avg / p95",
            f"{100 * f.reserved_cpu_util.avg:.1f}% / {100 * f.reserved_cpu_util.p95:.1f}%",
            "",
        ),
        ("simulated time (s)", f"{f.duration:.0f}", ""),
    ]
    for line in lines:
        table.add_row(*line)
    console.print(table)
    stats = result.stats
    refused = ", ".join(f"{k}: {v}" for k, v in stats.refused.items()) or "none"
    console.print(
        f"{policy}: {stats.policy_calls} policy calls ({stats.ticks} ticks), refused"
        f" decisions: {refused}; {wall:.2f} s wall, {len(sim_jobs) / max(wall, 1e-9):.0f} jobs/s"
    )
    if stats.cut:
        console.print(f"[yellow]run cut short ({stats.cut})[/yellow]")
    if event_log is not None and result.log is not None:
        path = result.log.write(event_log, {**result.run.meta, "algorithm": policy})
        console.print(f"event log: {path}")


def compare_command(
    policies: Annotated[
        str, typer.Option(help="comma-separated policy names")
    ] = "minimize-workers,grace-period",
    workloads: Annotated[
        str,
        typer.Option(
            help="comma-separated workloads; NAME@RHO stretches that one to offered load RHO"
            " (e.g. poisson@0.3,poisson@0.9,bursty)"
        ),
    ] = "classic,poisson,bursty,diurnal",
    seeds: Annotated[
        int, typer.Option(min=1, help="seeds per cell (1..N, the same for every policy)")
    ] = 5,
    jobs: Jobs = 500,
    load: Load = None,
    param: Param = None,
    nodes: Nodes = None,
    cores: Cores = 6,
    memory: Memory = 16.0,
    flavor: Flavor = "small",
    max_workers: MaxWorkers = None,
    max_idle_time: MaxIdle = 60.0,
    call_interval: CallInterval = 1.0,
    runtime: RuntimeOpt = "vm",
    calibration: CalibrationOpt = None,
    duration_scale: DurationScale = 1.0,
    max_height: MaxHeight = None,
    catalog: CatalogOpt = "default",
    exact: Exact = False,
    split: SplitOpt = True,
    plot: Annotated[Path, typer.Option(help="the Pareto plot (PNG)")] = Path("sim-pareto.png"),
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="every run's figures, one per line")
    ] = None,
) -> None:
    """Compare policies on workloads over several seeds: a table with the spread over seeds and
    the lower bound, and a Pareto plot (p95 delay against reserved core-seconds)."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    kinds = [w.strip() for w in workloads.split(",") if w.strip()]
    _check_policies(names)
    setup = _setup(
        nodes,
        cores,
        memory,
        flavor,
        max_workers,
        max_idle_time,
        call_interval,
        runtime,
        calibration,
        jobs,
        load,
        param,
        duration_scale,
        max_height,
        exact,
        catalog,
        split,
    )
    seed_list = list(range(1, seeds + 1))
    total = len(names) * len(kinds) * len(seed_list)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("simulating", total=total)
            result = compare(
                setup,
                names,
                kinds,
                seed_list,
                lambda what: bar.update(task, advance=1, description=what),
            )
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    table_rows = rows(result)
    dc = setup.datacenter
    title = (
        f"{len(dc.nodes)} nodes x {dc.nodes[0].cpus} cores, {flavor} workers,"
        f" {setup.config.runtime} boots, {jobs} jobs x {seeds} seeds (mean ± sd)"
    )
    table = Table(title=title)
    for i, name in enumerate(table_rows[0]):
        table.add_column(name, justify="left" if i in (0, 2) else "right")
    for row in table_rows[1:]:
        table.add_row(*row, style="dim" if row[2] == "lower bound" else None)
    console.print(table)
    console.print(f"Pareto plot: {pareto_plot(result, plot, title)}")
    if csv_file is not None:
        with csv_file.open("w", newline="") as f:
            csv.writer(f).writerows(csv_rows(result, seed_list))
        console.print(f"every run: {csv_file}")
