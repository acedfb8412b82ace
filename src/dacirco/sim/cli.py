"""``dacirco simulate`` and ``dacirco compare``: the simulator from the command line.

(``dacirco calibrate`` measures this machine with real ffmpeg, so it lives apart, in
``dacirco.calibration``.)
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.analytics.figures import figures, reused_summary
from dacirco.cli_options import comma_list
from dacirco.policies import knobs
from dacirco.policies.base import available
from dacirco.sim.cli_options import sim_options
from dacirco.sim.compare import Setup, by_priority, compare, csv_rows, rows
from dacirco.sim.options import SimOptions
from dacirco.sim.oracle import ORACLE

# A comparison table is wide: do not squeeze it to 80 columns when piped to a file.
console = Console(width=None if sys.stdout.isatty() else 180)


def _setup(options: SimOptions) -> Setup:
    try:
        return options.setup()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _check_policies(names: list[str]) -> None:
    known = [*available(), ORACLE]
    unknown = [n for n in names if n not in known]
    if unknown:
        console.print(
            f"[red]error:[/red] unknown policy {', '.join(unknown)}; one of {', '.join(known)}"
        )
        raise typer.Exit(2)


def _check_knobs(names: list[str], setup: Setup) -> None:
    """Every knob set is one of the policies' ``names``, each taking its own."""
    set_ = setup.config.policy_knobs
    named = [n for n in names if n != ORACLE]
    try:
        if set_ and not named:
            raise ValueError("the oracle takes no knobs")
        knobs.check(named, set_)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --policy-knob {exc}")
        raise typer.Exit(2) from None


@sim_options
def simulate(
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            "--algorithm",
            help="policy name (the service's default is adaptive; this command's stays the "
            "classic grace-period, which it simulates fastest)",
        ),
    ] = "grace-period",
    workload: Annotated[
        str, typer.Option(help="classic, poisson, bursty, diurnal or a scenario file")
    ] = "classic",
    seed: Annotated[int, typer.Option(help="random seed (workload and draws)")] = 1,
    options: SimOptions = SimOptions(),
    event_log: Annotated[
        Path | None, typer.Option(help="write the run's event log here (and its .config.txt)")
    ] = None,
) -> None:
    """Simulate one policy on one workload, on the reference data center by default."""
    # The command makes millions of objects that live until it ends (the workload, the run,
    # its figures) and no reference cycle worth finding: the cyclic collector would only
    # rescan them, again and again.
    gc.disable()
    _check_policies([policy])
    setup = _setup(options)
    _check_knobs([policy], setup)
    try:
        sim_jobs, rho = setup.workload(workload, seed)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    meta = {
        "workload": workload,
        "jobs": len(sim_jobs),
        "rho": rho,
        "calibration": str(options.calibration) if options.calibration else None,
        "workload_params": setup.params,
    }
    if options.priorities is not None:
        meta["priorities"] = options.priorities
    if options.repeats:
        meta["repeats"] = options.repeats
    if setup.config.policy_knobs:
        meta["policy_knobs"] = dict(setup.config.policy_knobs)
    if setup.ladder is not None:
        meta["ladder"] = asdict(setup.ladder)
    t0 = time.perf_counter()
    result = setup.run(policy, sim_jobs, seed, log=event_log is not None, meta=meta)
    wall = time.perf_counter() - t0
    f = figures(result.run)
    bound = setup.bound(sim_jobs)
    tuned = knobs.note([policy], setup.config.policy_knobs)
    table = Table(
        title=f"{policy}{tuned} on {workload} (seed {seed}, rho = {rho:.2f},"
        f" {setup.datacenter.cpus} cores)"
    )
    table.add_column("figure")
    table.add_column("simulated", justify="right")
    table.add_column("lower bound", justify="right")
    lines = [
        ("jobs completed", f"{f.completed}/{f.jobs}", ""),
        ("jobs reused (not in the figures)", reused_summary(f), ""),
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
    # One level (every request at the same priority): no table, nothing to break down.
    several = len({j.priority for j in sim_jobs}) > 1
    levels = by_priority(sim_jobs, result.run) if several else []
    if len(levels) > 1:
        by_level = Table(title=f"delay by priority (aging {setup.config.priority_aging:g} s)")
        names = ("priority", "jobs", "completed", "delay avg / p95 / max (s)", "queueing avg (s)")
        for name in names:
            by_level.add_column(name, justify="right")
        for level in levels:
            d = level.delay
            by_level.add_row(
                str(level.priority),
                str(level.jobs),
                str(level.completed),
                f"{d.avg:.1f} / {d.p95:.1f} / {d.max:.1f}",
                f"{level.queueing.avg:.1f}",
            )
        console.print(by_level)
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


@sim_options
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
    options: SimOptions = SimOptions(),
    plot: Annotated[Path, typer.Option(help="the Pareto plot (PNG)")] = Path("sim-pareto.png"),
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="every run's figures, one per line")
    ] = None,
    oracle: Annotated[
        bool,
        typer.Option(help="add the oracle (a clairvoyant policy, the simulator's reference)"),
    ] = True,
) -> None:
    """Compare policies on workloads over several seeds: a table with the spread over seeds,
    the oracle and the lower bound, and a Pareto plot (p95 delay against reserved
    core-seconds)."""
    names = comma_list(policies, "--policies")  # each once: a repeated name adds nothing
    if oracle and ORACLE not in names:
        names.append(ORACLE)
    kinds = comma_list(workloads, "--workloads")
    _check_policies(names)
    setup = _setup(options)
    _check_knobs(names, setup)
    import csv

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dacirco.sim.pareto import pareto_plot

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
        f"{len(dc.nodes)} nodes x {dc.nodes[0].cpus} cores, {options.flavor} workers,"
        f" {setup.config.runtime} boots, {options.jobs} jobs x {seeds} seeds (mean ± sd)"
        f"{knobs.note(names, setup.config.policy_knobs)}"
    )
    table = Table(title=title)
    for i, name in enumerate(table_rows[0]):
        table.add_column(name, justify="left" if i in (0, 2) else "right")
    for row in table_rows[1:]:
        table.add_row(*row, style="dim" if row[2] == "lower bound" else None)
    console.print(table)
    try:
        console.print(f"Pareto plot: {pareto_plot(result, plot, title)}")
        if csv_file is not None:
            with csv_file.open("w", newline="") as f:
                csv.writer(f).writerows(csv_rows(result, seed_list, setup.config.policy_knobs))
            console.print(f"every run: {csv_file}")
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {exc.filename}: {exc.strerror}")
        raise typer.Exit(2) from None
