"""Chunked encoding in the simulator: the speedup of one long job split in K chunks on K free
workers over the same job whole on one, on the reference data center, K = 2..9.

The workers are booted before the job arrives (cores free and ready: the issue's "low load"),
all of the same flavor; the chunk and merge costs are those of ``sim/split.py`` (measured by
``benchmarks/chunked.py``). Goal: speedup >= 0.8 K.

    .venv/bin/python benchmarks/chunked_sim.py [--movie bbb_9.mp4] [--speed fast] [--flavor tiny]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.policies.base import Assign, ClusterView, Decisions, Split, StartWorker
from dacirco.scenario.model import Request
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs

console = Console(width=120)
ARRIVAL = 120.0  # seconds: every worker has booted by then (VM boots take up to 53 s)


@dataclass(frozen=True)
class Chunked:
    """K workers started at once; the job split in K (whole when K = 1) once all are idle."""

    k: int
    flavor: str
    name: str = "chunked"

    def decide(self, view: ClusterView) -> Decisions:
        start = () if view.workers else tuple(StartWorker(self.flavor) for _ in range(self.k))
        idle = sorted(view.idle, key=lambda w: w.id)
        whole = [j for j in view.waiting if j.part is None]
        if whole and self.k > 1 and len(idle) >= self.k:
            return Decisions(start=start, split=(Split(whole[0].id, self.k),))
        assign = tuple(Assign(j.id, w.id) for j, w in zip(view.waiting, idle, strict=False))
        return Decisions(start=start, assign=assign, wake_at=float("inf"))


def delay(k: int, movie: str, speed: str, flavor: str, runtime: str) -> float:
    models = Models.build(runtime)
    # A short job at 0 makes the workers boot; the measured one comes when all are ready.
    warm_up = Request(0.0, "bbb_0.mp4", 1000, "ultrafast")
    jobs = make_jobs([warm_up, Request(ARRIVAL, movie, 3000, speed)], models, seed=1)
    config = SimConfig(max_workers=18, max_idle_time=1e9)
    run = Simulation(config, DataCenter.reference(), models, jobs, 1, Chunked(k, flavor)).run().run
    assert figures(run).completed == 2, f"K={k}: a job did not complete"
    measured = run.jobs[1]
    assert measured.delay is not None
    return measured.delay


def main(
    movie: Annotated[str, typer.Option(help="catalog movie")] = "bbb_9.mp4",
    speed: Annotated[str, typer.Option(help="ultrafast or fast")] = "fast",
    flavor: Annotated[str, typer.Option(help="the workers' flavor")] = "tiny",
    runtime: Annotated[str, typer.Option(help="vm, pod or local (transfer times)")] = "vm",
) -> None:
    """Print the delay and speedup of K chunks against the whole job, K = 1..9."""
    base = delay(1, movie, speed, flavor, runtime)
    table = Table(title=f"{movie} at {speed} on {flavor} workers, all ready (simulated)")
    for col in ("K", "delay (s)", "speedup", "goal 0.8 K", ""):
        table.add_column(col, justify="right")
    table.add_row("1", f"{base:.1f}", "1.00", "", "")
    for k in range(2, 10):
        d = delay(k, movie, speed, flavor, runtime)
        ok = base / d >= 0.8 * k
        table.add_row(
            str(k), f"{d:.1f}", f"{base / d:.2f}", f"{0.8 * k:.1f}",
            "[green]ok[/green]" if ok else "[red]missed[/red]",
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
