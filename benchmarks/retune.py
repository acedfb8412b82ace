"""adaptive re-tuned online, in the simulator: every ``--every`` seconds the arrivals of the
last ``--window`` seconds are replayed through the simulator with each of a handful of knob
settings, and the one with the lowest cost is adopted until the next replay. The cost weighs
the two figures the targets read, each against the defaults' on the same replay:

    reserved core-seconds / the defaults' + weight x p95 delay / the defaults'

(``--weight``: 1 balanced, higher faster, lower leaner). Each retuned run is printed beside
the same settings held fixed over the whole run, on the same seeds, against the cell's
targets: whether choosing the knobs from the recent traffic reaches a point that no fixed
setting does.

    .venv/bin/python benchmarks/retune.py [--cell "short diurnal"] [--first-seed 11]
        [--seeds 5] [--jobs 1000] [--every 300] [--window 600] [--weight 1 --weight 4]
        [--markdown]

The replay is given the requests of the window with their true work, the ones still
running included: a controller would know only the finished ones'. It starts from an
empty data center, where the run had a warm pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import ClusterView, Decisions
from dacirco.sim.compare import Setup
from dacirco.sim.workload import SimJob
from default_policy import GRACE, MINIMIZE, NEW, Cell
from frontier import (
    CellOption,
    FirstSeedOption,
    JobsOption,
    Point,
    SeedsOption,
    find_cell,
    frontier,
    label,
)

console = Console(width=160)
# The settings a replay chooses among: the spare pool's margin and the idle workers' linger,
# the two knobs that move the p95 most (benchmarks/frontier.py); the defaults are the first.
CANDIDATES: tuple[tuple[tuple[str, float], ...], ...] = (
    (),
    (("wait_share", 0.05),),
    (("wait_share", 1.0),),
    (("linger_boots", 3.0),),
    (("wait_share", 0.05), ("linger_boots", 3.0)),
    (("wait_share", 1.0), ("linger_boots", 3.0)),
)
MIN_REPLAYED = 20  # fewer requests in the window: the knobs are kept


def adaptive(setting: Sequence[tuple[str, float]]) -> Adaptive:
    return Adaptive(**dict(setting))


@dataclass
class Retuned:
    """adaptive whose knobs are chosen again every ``every`` seconds by replaying the last
    ``window`` seconds of ``jobs`` (those arrived by then) with each of ``CANDIDATES``."""

    setup: Setup
    jobs: Sequence[SimJob]
    weight: float
    every: float
    window: float
    name: str = NEW
    current: Adaptive = field(default_factory=Adaptive)
    chosen: list[int] = field(default_factory=list)  # the candidate each replay chose
    _next: float = 0.0

    def decide(self, view: ClusterView) -> Decisions:
        if view.now >= self._next:
            self._next = view.now + self.every
            self.retune(view.now)
        return self.current.decide(view)

    def retune(self, now: float) -> None:
        lo = now - self.window
        recent = [replace(j, arrival=j.arrival - lo) for j in self.jobs if lo <= j.arrival < now]
        if len(recent) < MIN_REPLAYED:
            return
        costs = []
        for setting in CANDIDATES:
            f = figures(self.setup.run(NEW, recent, 1, policy=adaptive(setting)).run)
            costs.append((f.reserved_core_seconds, f.delay.p95))
        res0, p950 = costs[0]
        best = min(
            range(len(costs)),
            key=lambda i: (
                costs[i][0] / max(res0, 1e-9) + self.weight * costs[i][1] / max(p950, 1e-9)
            ),
        )
        self.chosen.append(best)
        self.current = adaptive(CANDIDATES[best])


Task = tuple[Cell, str, int, int, tuple[float, float, float]]


def run_one(task: Task) -> tuple[float, float, float, list[int]]:
    """(avg, p95, reserved core-seconds, the candidates chosen) of one run: ``kind`` is a
    baseline policy's name, ``fixed:I`` adaptive with candidate I, ``retuned`` adaptive
    retuned with (weight, every, window)."""
    cell, kind, seed, jobs, (weight, every, window) = task
    setup = cell.setup(jobs)
    work, _ = setup.workload(cell.workload, seed)
    chosen: list[int] = []
    if kind == "retuned":
        policy = Retuned(setup, work, weight, every, window)
        result = setup.run(NEW, work, seed, policy=policy)
        chosen = policy.chosen
    elif kind.startswith("fixed:"):
        result = setup.run(NEW, work, seed, policy=adaptive(CANDIDATES[int(kind[6:])]))
    else:
        result = setup.run(kind, work, seed)
    f = figures(result.run)
    return f.delay.avg, f.delay.p95, f.reserved_core_seconds, chosen


def main(
    cell: CellOption = "short diurnal",
    first_seed: FirstSeedOption = 1,
    seeds: SeedsOption = 5,
    jobs: JobsOption = 1000,
    every: Annotated[float, typer.Option(min=1.0, help="seconds between two replays")] = 300.0,
    window: Annotated[float, typer.Option(min=10.0, help="seconds of arrivals replayed")] = 600.0,
    weight: Annotated[
        list[float] | None,
        typer.Option(min=0.0, help="the p95's weight in the cost, 1 balanced (repeatable)"),
    ] = None,
    procs: Annotated[int, typer.Option(min=1, help="processes")] = 2,
    markdown: Annotated[bool, typer.Option(help="also print the table in Markdown")] = False,
) -> None:
    """Run adaptive retuned online on one cell, beside the settings it chooses among held
    fixed, and print each against the cell's targets."""
    target = find_cell(cell)
    weights = weight or [1.0, 4.0]
    seed_range = range(first_seed, first_seed + seeds)
    kinds = [(GRACE, 0.0), (MINIMIZE, 0.0)] + [(f"fixed:{i}", 0.0) for i in range(len(CANDIDATES))]
    kinds += [("retuned", w) for w in weights]
    tasks: list[Task] = [
        (target, k, s, jobs, (w, every, window)) for k, w in kinds for s in seed_range
    ]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    results: dict[tuple[str, float], list[tuple[float, float, float, list[int]]]] = {}
    with (
        Progress(*columns, console=console, transient=True) as bar,
        ProcessPoolExecutor(procs) as pool,
    ):
        progress = bar.add_task(f"{cell}: simulating", total=len(tasks))
        for t, got in zip(tasks, pool.map(run_one, tasks), strict=True):
            key = (t[1], t[4][0] if t[1] == "retuned" else 0.0)
            results.setdefault(key, []).append(got)
            bar.advance(progress)

    def point(key: tuple[str, float], name: tuple[tuple[str, float], ...]) -> Point:
        return Point.of(name, results[key], results[(GRACE, 0.0)], results[(MINIMIZE, 0.0)])

    rows: list[tuple[str, Point, str]] = []
    for i, setting in enumerate(CANDIDATES):
        rows.append((f"fixed: {label(setting)}", point((f"fixed:{i}", 0.0), setting), ""))
    for w in weights:
        picks = [c for r in results[("retuned", w)] for c in r[3]]
        share = " ".join(f"{picks.count(i)}" for i in range(len(CANDIDATES)))
        name = (("retuned weight", w),)
        rows.append((f"retuned, weight {w:g}", point(("retuned", w), name), share))
    on = frontier([p for _, p, _ in rows])
    which = f"seeds {first_seed}-{first_seed + seeds - 1}"
    title = (
        f"adaptive retuned every {every:g} s on {window:g} s of arrivals, "
        f"on {cell} ({which} x {jobs} requests)"
    )
    heads = ("run", "avg / grace", f"p95 / grace ({target.p95_target})",
             "reserved / min-workers", "on the frontier", "all three targets",
             "replays choosing each fixed setting")  # fmt: skip
    table = Table(title=title)
    for h in heads:
        table.add_column(h, justify="left" if h == "run" else "right")
    lines = []
    for run, p, share in rows:
        marks = ["yes" if p.setting in on else "", "yes" if p.meets(target) else "no"]
        row = [run, f"{p.avg:.3f}", f"{p.p95:.3f}", f"{p.reserved:.3f}", *marks, share]
        table.add_row(*row)
        lines.append(row)
    console.print(table)
    if markdown:
        for line in (list(heads), ["---"] * len(heads), *lines):
            print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    typer.run(main)
