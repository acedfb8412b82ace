"""The targets of the adaptive policy, cell by cell: its average and p95 delay against
grace-period's, its reserved core-seconds against minimize-workers', both against the oracle,
and (``--peers``) against the best published peer of each cell (every shipped policy but
DaCirco's own: the classic two, right-size and adaptive).

    .venv/bin/python benchmarks/default_policy.py [--grid reference|general|beyond] [--seeds 5]
        [--first-seed 1] [--jobs 1000] [--peers] [--no-oracle] [--runs FILE [--again adaptive]]
        [--markdown] [--policy-knob NAME=VALUE]

``reference`` is the 10-cell grid of docs/policies.md (reference data center, VM boots, jobs
split; default and short catalogs x poisson@0.3/0.6/0.9, bursty, diurnal). ``general`` holds
cells the policy was not tuned on: more and larger nodes, pod boots, stronger and longer
bursts, a heavy-tailed catalog, a wide daily swing. The same seeds for every policy; the
figures are means over seeds. Runs go on every core (``--procs``). With ``--runs FILE`` each
run is kept, and a later call simulates only what is not there yet (``--again NAME``: that
policy's runs again, after a change to it). ``--policy-knob`` runs adaptive with that knob
away from its default (``policies/knobs.py``): another point of its frontier, over a grid.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.policies import knobs
from dacirco.policies.base import available, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.oracle import ORACLE
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape

console = Console(width=180)
NEW, GRACE, MINIMIZE = "adaptive", "grace-period", "minimize-workers"
CLASSIC = (NEW, GRACE, MINIMIZE)
# DaCirco's own policies; every other shipped one is a published peer (docs/peers/).
OWN = (*CLASSIC, "right-size")
# Movies of 5 s to 5 min, most of them short: a heavy tail of long ones.
HEAVY_TAIL = (5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 40.0, 90.0, 300.0)


@dataclass(frozen=True)
class Cell:
    label: str
    workload: str
    catalog: str = "default"  # "default", "short" or "heavy"
    nodes: int = 0  # 0: the reference data center
    cores: int = 6
    memory_gb: float = 16.0
    runtime: str = "vm"
    params: tuple[tuple[str, float], ...] = ()
    p95_target: float = 0.7  # x grace-period's

    def setup(self, jobs: int) -> Setup:
        dc = (
            DataCenter.reference()
            if not self.nodes
            else DataCenter.uniform(self.nodes, self.cores, self.memory_gb)
        )
        catalog = (
            CatalogShape(durations=HEAVY_TAIL)
            if self.catalog == "heavy"
            else CatalogShape.named(self.catalog)
        )
        return Setup(
            dc,
            SimConfig(split=True),
            Models.build(self.runtime),
            jobs=jobs,
            catalog=catalog,
            params=dict(self.params),
        )


def reference_grid() -> list[Cell]:
    out = []
    for catalog in ("default", "short"):
        for w in ("poisson@0.3", "poisson@0.6", "poisson@0.9", "bursty", "diurnal"):
            strict = catalog == "default" and w in ("poisson@0.3", "poisson@0.6")
            out.append(Cell(f"{catalog} {w}", w, catalog, p95_target=0.5 if strict else 0.7))
    return out


def general_grid() -> list[Cell]:
    return [
        Cell("6 x 8 cores, default poisson@0.3", "poisson@0.3", nodes=6, cores=8, memory_gb=32),
        Cell("6 x 8 cores, short poisson@0.6", "poisson@0.6", "short", 6, 8, 32.0),
        Cell("pod boots, default poisson@0.3", "poisson@0.3", runtime="pod"),
        Cell("pod boots, short bursty", "bursty", "short", runtime="pod"),
        Cell(
            "bursts x2 rate x2 length, default",
            "bursty",
            params=(("on_rate", 2.0), ("on_seconds", 60.0)),
        ),
        Cell("heavy-tailed catalog poisson@0.3", "poisson@0.3", "heavy"),
        Cell("heavy-tailed catalog poisson@0.6", "poisson@0.6", "heavy"),
        Cell(
            "10x daily swing, short",
            "diurnal",
            "short",
            params=(("amplitude", 0.82), ("period_seconds", 1800.0)),
        ),
    ]


def beyond_grid() -> list[Cell]:
    """Cells in neither grid, checked after the policy was tuned: other data centers, boots,
    catalogs and burst shapes (docs/policies.md says which it meets)."""
    return [
        Cell("pod boots, short poisson@0.6", "poisson@0.6", "short", runtime="pod"),
        Cell("heavy-tailed catalog diurnal", "diurnal", "heavy"),
        Cell("6 x 8 cores, short diurnal", "diurnal", "short", 6, 8, 32.0),
        Cell("6 x 8 cores, default poisson@0.9", "poisson@0.9", nodes=6, cores=8, memory_gb=32),
        Cell("short poisson@0.45", "poisson@0.45", "short"),
        Cell("6 x 8 cores, short bursty", "bursty", "short", 6, 8, 32.0),
        Cell("heavy-tailed catalog bursty", "bursty", "heavy"),
        Cell("pod boots, default bursty", "bursty", runtime="pod"),
        Cell("short bursts x2 rate", "bursty", "short", params=(("on_rate", 2.0),)),
        Cell("short bursts 5 min apart", "bursty", "short", params=(("off_seconds", 300.0),)),
        Cell(
            "short bursts x3 rate, 10 s long",
            "bursty",
            "short",
            params=(("on_rate", 3.0), ("on_seconds", 10.0)),
        ),
        Cell(
            "short bursts x3 rate, 60 s long",
            "bursty",
            "short",
            params=(("on_rate", 3.0), ("on_seconds", 60.0)),
        ),
        Cell("default bursts 5 min apart", "bursty", params=(("off_seconds", 300.0),)),
        Cell(
            "heavy-tailed bursts 5 min apart", "bursty", "heavy", params=(("off_seconds", 300.0),)
        ),
    ]


GRIDS = {"reference": reference_grid, "general": general_grid, "beyond": beyond_grid}


def run_one(
    task: tuple[Cell, str, int, int] | tuple[Cell, str, int, int, knobs.Knobs],
) -> tuple[str, str, float, float, float]:
    """A run's (cell, policy, avg, p95, reserved core-seconds); the policy with the knobs the
    task's fifth item sets, if it has one (as ``dacirco simulate --policy-knob`` sets them)."""
    cell, policy, seed, jobs, *rest = task
    setup = cell.setup(jobs)
    if rest and rest[0]:
        setup = replace(setup, config=replace(setup.config, policy_knobs=rest[0]))
    work, _ = setup.workload(cell.workload, seed)
    f = figures(setup.run(policy, work, seed).run)
    return cell.label, policy, f.delay.avg, f.delay.p95, f.reserved_core_seconds


Task = tuple[Cell, str, int, int, knobs.Knobs]


def tasks_for(
    cells: list[Cell], policies: list[str], seeds: range, jobs: int, set_: knobs.Knobs
) -> list[Task]:
    """Every run of the grid: each cell, policy and seed, adaptive with the knobs ``set_``
    (``--policy-knob``) and every other policy with its defaults, though it may have a knob
    of the same name (cvss's ``max_chunks``)."""
    return [
        (c, p, s, jobs, set_ if p == NEW else ()) for c in cells for p in policies for s in seeds
    ]


@dataclass
class Means:
    runs: dict[tuple[str, str], list[tuple[float, float, float]]] = field(default_factory=dict)

    def add(self, label: str, policy: str, avg: float, p95: float, reserved: float) -> None:
        self.runs.setdefault((label, policy), []).append((avg, p95, reserved))

    def get(self, label: str, policy: str) -> tuple[float, float, float]:
        rows = self.runs[(label, policy)]
        return tuple(statistics.fmean(r[i] for r in rows) for i in range(3))  # type: ignore[return-value]

    def policies(self, label: str) -> Iterator[str]:
        return (p for (lbl, p) in self.runs if lbl == label)


def load_runs(
    path: Path | None, again: set[str], jobs: int
) -> dict[tuple[str, str, int], tuple[float, float, float]]:
    """(cell, policy, seed) -> (avg, p95, reserved) of the runs stored in ``path`` with as
    many requests as asked, but those of the policies in ``again`` (the last one stored of
    each wins)."""
    out: dict[tuple[str, str, int], tuple[float, float, float]] = {}
    if path is None or not path.exists():
        return out
    for line in path.read_text().splitlines():
        label, policy, seed, n, avg, p95, reserved = json.loads(line)
        if n == jobs and policy not in again:
            out[(label, policy, seed)] = (avg, p95, reserved)
    return out


def main(
    grid: Annotated[
        str, typer.Option(help="reference (the 10 cells), general or beyond (neither)")
    ] = "reference",
    seeds: Annotated[int, typer.Option(min=1, help="seeds per cell")] = 5,
    first_seed: Annotated[
        int, typer.Option(min=0, help="the first seed (1 to 5 met the grids; others check them)")
    ] = 1,
    jobs: Annotated[int, typer.Option(min=10, help="requests per run")] = 1000,
    peers: Annotated[
        bool, typer.Option(help="also run right-size and every published peer")
    ] = False,
    oracle: Annotated[bool, typer.Option(help="also run the oracle (slower)")] = True,
    procs: Annotated[int, typer.Option(min=1, help="processes")] = 2,
    runs: Annotated[
        Path | None,
        typer.Option(
            help="a file of runs (JSON lines): runs found there are not simulated again, new "
            "ones are added; delete it, or name the policy with --again, when a policy changes"
        ),
    ] = None,
    again: Annotated[
        list[str] | None, typer.Option(help="simulate this policy's runs again (repeatable)")
    ] = None,
    markdown: Annotated[
        bool, typer.Option(help="also print the table in Markdown (as docs/policies.md has it)")
    ] = False,
    policy_knob: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=VALUE",
            help="run adaptive with this knob away from its default (repeatable; its runs are "
            "stored apart in --runs)",
        ),
    ] = None,
) -> None:
    """Run the cells of GRID and print, per cell, the adaptive policy's ratios to its targets."""
    if grid not in GRIDS:
        raise typer.BadParameter(f"unknown grid {grid!r}: one of {', '.join(GRIDS)}")
    cells = GRIDS[grid]()
    try:
        set_ = knobs.parse(policy_knob or ())
        knobs.apply(make_policy(NEW), set_, NEW)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy-knob") from None
    # adaptive's runs with knobs are stored under a name of their own.
    tuned = NEW + "".join(f" {k}={v:g}" for k, v in set_)
    policies = list(CLASSIC) + ([ORACLE] if oracle else [])
    if peers:
        policies += [p for p in available() if p not in policies]
    seed_range = range(first_seed, first_seed + seeds)
    tasks = tasks_for(cells, policies, seed_range, jobs, set_)
    means = Means()
    redo = {tuned if p == NEW else p for p in again or ()}
    stored = load_runs(runs, redo, jobs)

    def name(p: str) -> str:  # a policy's name in the runs file
        return tuned if p == NEW else p

    kept = [t for t in tasks if (t[0].label, name(t[1]), t[2]) in stored]
    for c, p, s, *_ in kept:
        means.add(c.label, p, *stored[(c.label, name(p), s)])
    tasks = [t for t in tasks if (t[0].label, name(t[1]), t[2]) not in stored]
    if kept:
        console.print(f"{len(kept)} runs read from {runs}, {len(tasks)} to simulate")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        Progress(*columns, console=console, transient=True) as bar,
        ProcessPoolExecutor(procs) as pool,
    ):
        task = bar.add_task(f"{grid}: simulating", total=len(tasks))
        for t, (label, policy, avg, p95, reserved) in zip(
            tasks, pool.map(run_one, tasks), strict=True
        ):
            means.add(label, policy, avg, p95, reserved)
            if runs is not None:
                with runs.open("a") as out:
                    row = [label, name(policy), t[2], jobs, avg, p95, reserved]
                    out.write(json.dumps(row) + "\n")
            bar.advance(task)
    which = f"seeds {first_seed}-{first_seed + seeds - 1}" if first_seed != 1 else f"{seeds} seeds"
    title = f"{tuned} against its targets ({grid}, {which} x {jobs} requests)"
    table = Table(title=title)
    for name in ("cell", "avg / grace", "p95 / grace (target)", "reserved / min-workers"):
        table.add_column(name, justify="left" if name == "cell" else "right")
    if oracle:
        table.add_column("p95 / oracle", justify="right")
        table.add_column("reserved / oracle", justify="right")
    if peers:
        table.add_column("best published peer on p95: adaptive / it", justify="left")
        table.add_column("best published peer on reserved: adaptive / it", justify="left")
    table.add_column("all three targets", justify="center")
    met, rows = 0, []
    for c in cells:
        a, p, r = means.get(c.label, NEW)
        ga, gp, _ = means.get(c.label, GRACE)
        mr = means.get(c.label, MINIMIZE)[2]
        ok = a <= ga and p <= c.p95_target * gp and r <= mr
        met += ok
        row = [c.label, f"{a / ga:.2f}", f"{p / gp:.2f} ({c.p95_target})", f"{r / mr:.2f}"]
        if oracle:
            _, op, orr = means.get(c.label, ORACLE)
            row += [f"{p / op:.2f}", f"{r / orr:.2f}"]
        if peers:
            others = [q for q in means.policies(c.label) if q not in (*OWN, ORACLE)]
            by_p95 = min(others, key=lambda q: means.get(c.label, q)[1])
            by_res = min(others, key=lambda q: means.get(c.label, q)[2])
            row.append(f"{by_p95}: {p / means.get(c.label, by_p95)[1]:.2f}")
            row.append(f"{by_res}: {r / means.get(c.label, by_res)[2]:.2f}")
        row.append("yes" if ok else "no")
        table.add_row(*row)
        rows.append(row)
    console.print(table)
    console.print(f"all three targets met in {met} of {len(cells)} cells")
    if markdown:
        heads = [str(col.header) for col in table.columns]
        for line in (heads, ["---"] * len(heads), *rows):
            print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    typer.run(main)
