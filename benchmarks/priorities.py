"""Priorities in the simulator, behind the "Priorities" section of docs/policies.md: the p95
delay of the requests at priority 50 against that of those at priority 0, for each policy, at
offered load rho = 0.9 (Poisson arrivals), on the reference data center (3 nodes x 6 cores,
VM boots), whole jobs as in the first table of that page, the same seeds for every policy.

Each seed's jobs are run without priorities (the reference), then with 10 % of them at
priority 50, at the default aging (60 s a level) and at a short one. The priorities are drawn
from a generator of their own, so the three runs have the same jobs (arrivals, movies,
noise): the reference's "priority-50 jobs" are the very jobs that get priority 50 in the
other runs, at priority 0 there. Prints the Markdown table.

    .venv/bin/python benchmarks/priorities.py [--seeds 3] [--jobs 1000]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console

from dacirco.sim.compare import Level, Setup, by_priority
from dacirco.sim.options import SimOptions
from dacirco.sim.workload import parse_priorities

console = Console(width=200)
progress = Console(stderr=True)
POLICIES = ("grace-period", "minimize-workers", "right-size")
WORKLOAD = "poisson@0.9"
MIX = "50:0.1,0:0.9"
HIGH, LOW = 50, 0
# (row label, --priorities, --priority-aging)
VARIANTS = (
    ("none (reference)", None, 60.0),
    ("10 % at 50, aging 60 s", MIX, 60.0),
    ("10 % at 50, aging 1 s", MIX, 1.0),
)


def mean(values: list[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return statistics.fmean(vals) if vals else math.nan


def delay_p95(x: Level) -> float:
    return x.delay.p95


def delay_avg(x: Level) -> float:
    return x.delay.avg


def queueing_avg(x: Level) -> float:
    return x.queueing.avg


def avg(levels: list[Level], pick: Callable[[Level], float]) -> float:
    """The mean over seeds of ``pick`` of one priority's jobs."""
    return mean([pick(x) for x in levels])


def level(levels: list[Level], priority: int) -> Level:
    return next(x for x in levels if x.priority == priority)


def main(
    seeds: Annotated[int, typer.Option(min=1, help="seeds per cell")] = 3,
    jobs: Annotated[int, typer.Option(min=10, help="requests per run")] = 1000,
) -> None:
    """Run every policy with and without priorities and print the Markdown table."""
    marked = SimOptions(jobs=jobs, split=False, priorities=MIX).setup()
    lines = [
        "| policy | priorities | delay p95, priority-50 jobs (s) | delay p95, priority-0 jobs (s) "
        "| delay avg, 50 / 0 (s) | queueing avg, 50 / 0 (s) | delay max, priority-0 jobs (s) "
        "| completed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for policy in POLICIES:
        for label, priorities, aging in VARIANTS:
            setup: Setup = SimOptions(
                jobs=jobs, split=False, priorities=priorities, priority_aging=aging
            ).setup()
            runs: list[tuple[Level, Level]] = []
            done = total = 0
            for seed in range(1, seeds + 1):
                sim_jobs, _ = setup.workload(WORKLOAD, seed)
                # The jobs as marked: the reference's are the same, every one at priority 0.
                marks, _ = marked.workload(WORKLOAD, seed)
                result = setup.run(policy, sim_jobs, seed)
                levels = by_priority(marks, result.run)
                runs.append((level(levels, HIGH), level(levels, LOW)))
                done += sum(x.completed for x in levels)
                total += sum(x.jobs for x in levels)
                progress.print(f"{policy}, {label}, seed {seed}", style="dim")
            high, low = [r[0] for r in runs], [r[1] for r in runs]
            lines.append(
                f"| {policy} | {label} "
                f"| {avg(high, delay_p95):.1f} | {avg(low, delay_p95):.1f} "
                f"| {avg(high, delay_avg):.1f} / {avg(low, delay_avg):.1f} "
                f"| {avg(high, queueing_avg):.1f} / {avg(low, queueing_avg):.1f} "
                f"| {max(x.delay.max for x in low):.1f} | {done}/{total} |"
            )
    shares = ", ".join(f"{share:.0%} at {p}" for p, share in parse_priorities(MIX))
    console.print(
        f"{WORKLOAD}, reference data center, VM boots, whole jobs, {jobs} requests x {seeds}"
        f" seeds (means over seeds; max over every run); priorities {MIX} ({shares})\n"
    )
    console.print("\n".join(lines), soft_wrap=True)


if __name__ == "__main__":
    typer.run(main)
