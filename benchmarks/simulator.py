"""The simulator's speed: 100,000 jobs on a 100-node data center under each naive policy.

Nodes are the reference ones (6 cores, 16 GB), workers ``small``, VM boots, as many workers
as fit (300 small ones); Poisson arrivals stretched to an offered load rho = 0.6 (the data center
busy but not overloaded: hundreds of workers alive, which is what the policy's own scan of
the view costs). Goal: <= 10 s wall per policy. Prints the simulated jobs per second, the
share of the time spent inside the policy's ``decide`` and the run's figures.

    python benchmarks/simulator.py [--jobs 100000] [--nodes 100] [--load 0.6] [--workload poisson]
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.policies.base import ClusterView, Decisions, PolicyParams, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import at_load, make_jobs, offered_load, requests_for

console = Console(width=150)
GOAL_S = 10.0


class Timed:
    """The policy, with the time spent inside ``decide`` added up."""

    def __init__(self, policy) -> None:  # type: ignore[no-untyped-def]
        self.policy, self.name, self.seconds = policy, policy.name, 0.0

    def decide(self, view: ClusterView) -> Decisions:
        t0 = time.perf_counter()
        try:
            return self.policy.decide(view)
        finally:
            self.seconds += time.perf_counter() - t0


def main(
    jobs: Annotated[int, typer.Option(min=1)] = 100_000,
    nodes: Annotated[int, typer.Option(min=1)] = 100,
    load: Annotated[float, typer.Option(help="offered load rho (0: as generated)")] = 0.6,
    workload: Annotated[str, typer.Option()] = "poisson",
    seed: Annotated[int, typer.Option()] = 1,
) -> None:
    """Simulate JOBS jobs on NODES nodes under each naive policy; print jobs per second."""
    models = Models.build("vm")
    dc = DataCenter.uniform(nodes, 6, 16.0)
    t0 = time.perf_counter()
    work = make_jobs(requests_for(workload, jobs, seed), models, seed)
    rho = offered_load(work, models, "small", dc.cpus)
    if load > 0:
        work, rho = at_load(work, rho, load), load
    console.print(
        f"{jobs} {workload} jobs at rho = {rho:.2f} on {nodes} nodes x 6 cores "
        f"(at most {dc.cpus // 2} small workers); "
        f"workload made in {time.perf_counter() - t0:.2f} s"
    )
    table = Table(title=f"simulator speed (goal <= {GOAL_S:g} s per policy)")
    for col in ("policy", "wall (s)", "jobs/s", "in decide", "policy calls", "workers",
                "delay avg (s)", "reserved core·s", "figures (s)", "goal"):  # fmt: skip
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name in ("minimize-workers", "grace-period"):
        policy = Timed(make_policy(name, PolicyParams()))
        sim = Simulation(SimConfig(algorithm=name), dc, models, work, seed, policy=policy)
        t0 = time.perf_counter()
        result = sim.run()
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        f = figures(result.run)
        fig_s = time.perf_counter() - t1
        table.add_row(
            name, f"{wall:.2f}", f"{jobs / wall:,.0f}", f"{100 * policy.seconds / wall:.0f}%",
            f"{result.stats.policy_calls:,}", f"{f.workers:,}", f"{f.delay.avg:.1f}",
            f"{f.reserved_core_seconds:,.0f}", f"{fig_s:.2f}",
            "[green]ok[/green]" if wall <= GOAL_S else "[red]missed[/red]",
        )  # fmt: skip
        console.print(f"{name}: {jobs / wall:,.0f} jobs simulated per second")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
