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
from dacirco.cli_options import PolicyKnob, comma_list, option, option_for, shared_options
from dacirco.policies import knobs
from dacirco.policies.base import PolicyParams, available, make_policy
from dacirco.sim.compare import Setup, by_priority, compare, csv_rows, rows
from dacirco.sim.options import SimOptions
from dacirco.sim.oracle import ORACLE

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

PrioritiesOpt = Annotated[
    str | None,
    typer.Option(
        "--priorities",
        help="the requests' priorities, PRIORITY:SHARE,... (-50..50; e.g. 50:0.1,0:0.9: 10 %"
        " at 50, 90 % at 0), drawn per request from the seed; default: every request at 0",
    ),
]
Repeats = Annotated[
    float,
    typer.Option(
        help="share of requests (0..1) that repeat an earlier request (its movie, bitrate and "
        "speed), drawn from the seed",
    ),
]
ReuseOpt = Annotated[
    bool,
    typer.Option(
        "--reuse/--no-reuse",
        help="identical requests share one output, as in the service (reused ones are "
        "counted apart)",
    ),
]
LadderShare = Annotated[
    float,
    typer.Option(
        help="share of requests (0..1) that ask for --ladder-preset instead of one MP4, drawn "
        "from the seed",
    ),
]
LadderPreset = Annotated[
    str,
    typer.Option(
        help="the shipped preset ladder requests ask for: hls-ladder, dash-ladder, mp4-720p or "
        "audio (fitted to each movie's height, as the service does)",
    ),
]
LadderQuality = Annotated[
    bool,
    typer.Option(
        "--ladder-quality/--no-ladder-quality",
        help="ladder requests measure their quality (VMAF, PSNR, SSIM)",
    ),
]
LadderThumbnails = Annotated[
    float | None,
    typer.Option(help="ladder requests make thumbnails, one every N seconds (1..60)"),
]
PriorityAging = Annotated[
    float, typer.Option(help="seconds of waiting worth one priority level (the core's aging)")
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


# The options simulate and compare share: each fills the field of SimOptions of its name and
# defaults to that field's default; --param (KEY=NUMBER, repeatable) fills ``params``.
SIM_OPTIONS = {
    "jobs": Jobs,
    "load": Load,
    "nodes": Nodes,
    "cores": Cores,
    "memory": Memory,
    "flavor": Flavor,
    "max_workers": MaxWorkers,
    "max_idle_time": MaxIdle,
    "call_interval": CallInterval,
    "runtime": RuntimeOpt,
    "calibration": CalibrationOpt,
    "duration_scale": DurationScale,
    "max_height": MaxHeight,
    "catalog": CatalogOpt,
    "exact": Exact,
    "split": SplitOpt,
    "priorities": PrioritiesOpt,
    "priority_aging": PriorityAging,
    "repeats": Repeats,
    "reuse": ReuseOpt,
    "ladder_share": LadderShare,
    "ladder_preset": LadderPreset,
    "ladder_quality": LadderQuality,
    "ladder_thumbnails": LadderThumbnails,
    "policy_knob": PolicyKnob,
}


def _sim_options(param: list[str] | None, **values: object) -> SimOptions:
    values["policy_knob"] = tuple(values.get("policy_knob") or ())  # type: ignore[arg-type]
    return SimOptions(params=_params(param), **values)  # type: ignore[arg-type]


_PARAMETERS = [option_for(SimOptions, name, annotated) for name, annotated in SIM_OPTIONS.items()]
_PARAMETERS.insert(2, option("param", Param, None))  # after --load
# A command that declares ``options: SimOptions`` gets all of them, as one SimOptions.
sim_options = shared_options(_PARAMETERS, _sim_options, "options")


def _setup(options: SimOptions) -> Setup:
    try:
        return options.setup()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _knobs_note(setup: Setup, names: list[str]) -> str:
    """The knobs each of the policies ``names`` takes, for a table's title (empty when none
    is set)."""
    taken = [(n, knobs.of_policy(n, setup.config.policy_knobs)) for n in names]
    parts = [
        (f"{n} " if len(names) > 1 else "") + ", ".join(f"{k}={v:g}" for k, v in own)
        for n, own in taken
        if own
    ]
    return f" (knobs {'; '.join(parts)})" if parts else ""


def _check_policies(names: list[str]) -> None:
    known = [*available(), ORACLE]
    unknown = [n for n in names if n not in known]
    if unknown:
        console.print(
            f"[red]error:[/red] unknown policy {', '.join(unknown)}; one of {', '.join(known)}"
        )
        raise typer.Exit(2)


def _check_knobs(names: list[str], setup: Setup) -> None:
    """Every knob set is one of the policies' ``names``, each taking its own (its values
    checked by the policy)."""
    set_ = setup.config.policy_knobs
    if not set_:
        return
    named = [n for n in names if n != ORACLE]
    try:
        if not named:
            raise ValueError("the oracle takes no knobs")
        if len(named) == 1:  # its own message lists its knobs
            make_policy(named[0], PolicyParams(knobs=set_))
        elif lone := knobs.unclaimed(named, set_):
            raise ValueError(f"none of {', '.join(named)} has the knob {lone[0]!r}")
        for name in named:
            make_policy(name, PolicyParams(knobs=knobs.of_policy(name, set_)))
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
    table = Table(
        title=f"{policy}{_knobs_note(setup, [policy])} on {workload} (seed {seed}, rho = {rho:.2f},"
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
        f"{_knobs_note(setup, names)}"
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
                csv.writer(f).writerows(csv_rows(result, seed_list))
            console.print(f"every run: {csv_file}")
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {exc.filename}: {exc.strerror}")
        raise typer.Exit(2) from None
