"""The whole ``dacirco simulate`` command at scale, start-up included, as a user runs it.

Poisson arrivals stretched to an offered load rho = 0.6 on N nodes of the reference size (6
cores, 16 GB; 3 small workers each at most), VM boots, grace-period: 100,000 jobs on 100
nodes (goal: <= 10 s) and, with ``--million``, 1,000,000 jobs on 1,000 nodes (goal:
<= 60 s). Each size runs as a subprocess, ``--repeats`` times; prints the wall time (median
and each run's), the CPU seconds of the process, its peak memory and the simulator's own
line (policy calls, jobs per second). It prints the figures; it does not judge them.

    python benchmarks/sim_scale.py [--million] [--repeats 3] [--jobs 100000 --nodes 100]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(width=150)


def run_once(jobs: int, nodes: int, policy: str) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak MB, the simulator's summary line) of one command."""
    cmd = [
        sys.executable, "-m", "dacirco.cli", "simulate", "--policy", policy,
        "--workload", "poisson", "--load", "0.6", "-n", str(jobs), "--nodes", str(nodes),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"dacirco simulate failed: {out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_mb = after.ru_maxrss / 1024  # the largest child so far (kB on Linux)
    summary = next((ln for ln in out.stdout.splitlines() if "policy calls" in ln), "")
    return wall, cpu, peak_mb, summary.strip()


def main(
    million: Annotated[
        bool, typer.Option(help="also 1,000,000 jobs on 1,000 nodes (goal 60 s)")
    ] = False,
    repeats: Annotated[int, typer.Option(min=1, help="runs of each size")] = 3,
    jobs: Annotated[int, typer.Option(min=1, help="jobs of the first size")] = 100_000,
    nodes: Annotated[int, typer.Option(min=1, help="nodes of the first size")] = 100,
    goal: Annotated[float, typer.Option(help="seconds, goal of the first size")] = 10.0,
    policy: Annotated[str, typer.Option()] = "grace-period",
) -> None:
    """Time `dacirco simulate` end to end at 100k jobs (and 1M with --million)."""
    sizes = [(jobs, nodes, goal)]
    if million:
        sizes.append((1_000_000, 1_000, 60.0))
    console.print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    table = Table(title=f"dacirco simulate --policy {policy} --workload poisson --load 0.6")
    for col in ("jobs", "nodes", "median wall (s)", "walls (s)", "CPU (s)", "peak MB", "goal (s)"):
        table.add_column(col, justify="right")
    lines = []
    for n, k, target in sizes:
        runs = [run_once(n, k, policy) for _ in range(repeats)]
        walls = [r[0] for r in runs]
        table.add_row(
            f"{n:,}",
            f"{k:,}",
            f"{statistics.median(walls):.1f}",
            " ".join(f"{w:.1f}" for w in walls),
            f"{statistics.median(r[1] for r in runs):.1f}",
            f"{max(r[2] for r in runs):.0f}",
            f"{target:g}",
        )
        lines.append(f"{n:,} jobs: {runs[-1][3]}")
    console.print(table)
    for line in lines:
        console.print(line)
    console.print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    typer.run(main)
