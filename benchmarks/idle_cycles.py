"""Idle cycles in the simulator: the reference data center and office machines (a node agent
each) whose owners work office hours, over a day of requests whose rate follows the day.

For grace-period and adaptive, with and without the office machines, over three seeds:
the share of the work done on otherwise idle cycles, the preemptions (pilots stopped by
their owner, and those with a task under way) and the core-seconds they threw away, the
jobs' delay (average, p95) and the core-seconds reserved on our own nodes.

    .venv/bin/python benchmarks/idle_cycles.py [--desks 6] [--rate 0.05] [--seeds 3]
        [--plot docs/img/idle-cycles.png]
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.domain import Node
from dacirco.sim.cluster import DataCenter
from dacirco.sim.idle import DAY, IdleCyclesSimulation, OwnerTrace
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import make_jobs, requests_for

console = Console(width=140)


def simulate(algorithm: str, desks: int, rate: float, seed: int) -> IdleCyclesSimulation:
    models = Models.build("vm")
    n = int(DAY * rate)
    requests = requests_for("diurnal", n, seed, mean_rate=rate, amplitude=0.8, period_seconds=DAY)
    jobs = make_jobs(requests, models, seed)
    nodes = [Node(f"desk{i + 1}", 4, 8.0) for i in range(desks)]
    traces = {n.name: OwnerTrace.office_hours(seed * 100 + i) for i, n in enumerate(nodes)}
    config = SimConfig(algorithm=algorithm, flavor="tiny", max_workers=18 + 4 * desks)
    return IdleCyclesSimulation(
        config, DataCenter.reference(), models, jobs, seed, idle_nodes=nodes, traces=traces
    )


def one(algorithm: str, desks: int, rate: float, seed: int) -> dict[str, float]:
    sim = simulate(algorithm, desks, rate, seed)
    traces = sim.traces
    result = sim.run()
    fig, idle = figures(result.run), sim.idle_figures()
    ours = sum(
        w.cpus * ((w.destroyed or result.run.end) - w.created)
        for w in result.run.workers
        if w.node not in traces
    )
    return {
        "completed": fig.completed + fig.reused,  # reused: an identical job's output
        "lost": fig.failed + fig.unfinished,
        "share": idle.share,
        "preemptions": idle.preemptions,
        "under way": idle.tasks_preempted,
        "lost core-s": idle.lost_core_s,
        "delay avg": fig.delay.avg,
        "delay p95": fig.delay.p95,
        "our core-h": ours / 3600,
    }


def main(
    desks: Annotated[int, typer.Option(help="office machines, 4 cores each")] = 6,
    rate: Annotated[float, typer.Option(help="mean requests per second over the day")] = 0.05,
    seeds: Annotated[int, typer.Option(help="seeds (the same for every case)")] = 3,
    plot: Annotated[
        Path | None, typer.Option(help="also draw adaptive's day, hour by hour (a PNG)")
    ] = None,
) -> None:
    """Print the figures of each policy with and without the office machines."""
    cols = ("completed", "lost", "share", "preemptions", "under way", "lost core-s",
            "delay avg", "delay p95", "our core-h")  # fmt: skip
    table = Table(title=f"a day at {rate:g} req/s (diurnal), reference data center "
                  f"+ {desks} office machines (mean over {seeds} seeds, min-max)")  # fmt: skip
    table.add_column("policy")
    table.add_column("desks")
    for c in cols:
        table.add_column(c, justify="right")
    cases = [(a, d) for a in ("grace-period", "adaptive") for d in (0, desks)]
    runs_of: dict[tuple[str, int], list[dict[str, float]]] = {}
    for algorithm, d, seed in track(
        [(a, d, s) for a, d in cases for s in range(1, seeds + 1)],
        description="simulated days",
        console=console,
    ):
        runs_of.setdefault((algorithm, d), []).append(one(algorithm, d, rate, seed))
    for algorithm, d in cases:
        runs = runs_of[(algorithm, d)]
        cells = []
        for c in cols:
            xs = [r[c] for r in runs]
            fmt = "{:.1%}" if c == "share" else "{:.0f}" if c != "delay avg" else "{:.1f}"
            spread = f" ({fmt.format(min(xs))}-{fmt.format(max(xs))})" if seeds > 1 else ""
            cells.append(fmt.format(statistics.fmean(xs)) + spread)
        table.add_row(algorithm, str(d), *cells)
    console.print(table)
    if plot is not None:
        sim = simulate("adaptive", desks, rate, 1)
        sim.run()
        draw(sim, plot, f"adaptive, a day at {rate:g} req/s, {desks} office machines (seed 1)")
        console.print(f"plot: {plot}")


def draw(sim: IdleCyclesSimulation, out: Path, title: str) -> None:
    """Core-hours per hour on our nodes and on the idle machines, and the owners there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, idle, owners = sim.work_by_hour()
    hours = range(len(ours))
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    ax.bar(hours, ours, color="tab:blue", label="work on our nodes")
    ax.bar(hours, idle, bottom=ours, color="tab:green", label="work on idle office machines")
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("core-hours of completed tasks")
    ax.set_xticks(range(0, len(ours) + 1, 3))
    twin = ax.twinx()
    twin.step(hours, owners, where="mid", color="tab:red", label="owners at their machine")
    twin.set_ylabel(f"owners at their machine (of {len(sim.idle_nodes)})")
    twin.set_ylim(0, max(1, len(sim.idle_nodes)))
    handles = [*ax.get_legend_handles_labels()[0], *twin.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize="small")
    ax.set_title(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    typer.run(main)
