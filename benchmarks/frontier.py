"""A policy's frontier on one cell (adaptive's unless ``--policy`` names another): its knobs
moved one at a time away from their defaults, each setting's p95 delay against grace-period's
and its reserved core-seconds against minimize-workers', on the same seeds. Where a cell
misses a target, this says whether some setting of the knobs meets both (a tuning question)
or every setting trades one for the other along the same curve (the policy's own frontier).
For a policy other than adaptive, adaptive's defaults are run beside it on the same seeds:
whether some setting of a published peer's knobs beats DaCirco's default policy there.

    .venv/bin/python benchmarks/frontier.py [--cell "short diurnal"] [--policy adaptive]
        [--first-seed 11] [--seeds 5] [--jobs 1000] [--knob wait_share=0.05,0.1]
        [--knob linger_boots=2,3] [--plot docs/img/frontier.png] [--markdown]

Without ``--knob`` it sweeps adaptive's ``wait_share``, ``linger_boots``, ``max_chunks``
and ``piece_share``, and another policy's knobs each at half and at twice its default
(within its range; a knob that is 0 by default only with ``--knob``). A setting is on the
frontier when no other one has both a lower p95 and fewer core-seconds; the service and
``dacirco simulate`` run one with ``--policy-knob NAME=VALUE`` (``policies/knobs.py``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import default_policy
from dacirco.policies import knobs
from dacirco.policies.base import available, make_policy
from default_policy import GRACE, GRIDS, MINIMIZE, NEW, Cell

console = Console(width=160)
SWEEP = (
    "wait_share=0.05,0.1,0.15,0.4",
    "linger_boots=2,3",
    "max_chunks=4,6",
    "piece_share=0.5,1",
)
DEFAULTS = "defaults"

Setting = tuple[tuple[str, float], ...]  # the knobs moved: () is the defaults
Runs = Sequence[Sequence[float]]  # runs' (avg, p95, reserved core-seconds, ...)


def parse_knob(text: str, policy: str = NEW) -> list[Setting]:
    """``NAME=V1,V2``: one setting per value of ``policy``'s knob, every other one at its
    default."""
    name, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise typer.BadParameter(f"{text!r}: expected NAME=V1,V2 (e.g. wait_share=0.1,0.2)")
    out: list[Setting] = []
    for v in values.split(","):
        try:
            setting = knobs.parse([f"{name.strip()}={v}"])
            knobs.apply(make_policy(policy), setting, policy)  # the policy's own checks
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        out.append(setting)
    return out


def default_sweep(policy: str) -> list[str]:
    """The knobs swept when none is given: adaptive's ``SWEEP``; another policy's knobs each
    at half and twice its default, within its range (whole ones rounded), but those at 0."""
    if policy == NEW:
        return list(SWEEP)
    obj = make_policy(policy)
    out = []
    for name, knob in sorted(knobs.knobs_of(obj).items()):
        default = float(getattr(obj, name))
        values = []
        for v in (default / 2, default * 2):
            v = min(knob.high, max(knob.low, round(v) if knob.whole else v))
            if default and v != default and v not in values:
                values.append(v)
        if values:
            out.append(f"{name}=" + ",".join(f"{v:g}" for v in values))
    return out


def find_policy(name: str) -> str:
    """``name`` if it is a registered policy with knobs, else a ``BadParameter`` naming those
    that have some."""
    tunable = [p for p in available() if knobs.knobs_of(make_policy(p))]
    if name not in tunable:
        raise typer.BadParameter(
            f"{name!r} is not a policy with knobs: one of {', '.join(tunable)}",
            param_hint="--policy",
        )
    return name


def label(setting: Setting) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in setting) or DEFAULTS


def run_one(task: tuple[Cell, str, Setting, int, int]) -> tuple[float, float, float]:
    """(avg, p95, reserved core-seconds) of ``policy`` on the cell's workload of ``seed``,
    with the knobs of ``setting``."""
    cell, policy, setting, seed, jobs = task
    _, _, avg, p95, reserved = default_policy.run_one((cell, policy, seed, jobs, setting))
    return avg, p95, reserved


@dataclass(frozen=True)
class Point:
    setting: Setting
    avg: float  # x grace-period's
    p95: float  # x grace-period's
    reserved: float  # x minimize-workers'

    def meets(self, cell: Cell) -> bool:
        return self.avg <= 1 and self.p95 <= cell.p95_target and self.reserved <= 1

    @classmethod
    def of(cls, setting: Setting, runs: Runs, grace: Runs, minimize: Runs) -> Point:
        """``setting``'s point from its runs' (avg, p95, reserved), each figure's mean over
        the same seeds' mean of grace-period's (delays) or minimize-workers' (core-seconds)."""

        def mean(rows: Runs, i: int) -> float:
            return statistics.fmean(r[i] for r in rows)

        return cls(
            setting,
            mean(runs, 0) / mean(grace, 0),
            mean(runs, 1) / mean(grace, 1),
            mean(runs, 2) / mean(minimize, 2),
        )


def frontier(points: list[Point]) -> set[Setting]:
    """The settings no other one beats on both p95 and reserved core-seconds."""
    return {
        p.setting
        for p in points
        if not any(q.p95 < p.p95 and q.reserved < p.reserved for q in points)
    }


def find_cell(name: str) -> Cell:
    cells = {c.label: c for grid in GRIDS.values() for c in grid()}
    if name not in cells:
        raise typer.BadParameter(f"unknown cell {name!r}: one of {'; '.join(cells)}")
    return cells[name]


def plot(
    points: list[Point],
    cell: Cell,
    on: set[Setting],
    title: str,
    out: Path,
    ours: Point | None = None,
) -> None:
    """The settings on the p95 / core-seconds plane, the frontier's in blue, the defaults in
    red, adaptive's defaults (``ours``, beside another policy's) as a black star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in points:
        color = "tab:red" if not p.setting else "tab:blue" if p.setting in on else "tab:gray"
        ax.scatter(p.p95, p.reserved, color=color, zorder=3)
        ax.annotate(label(p.setting), (p.p95, p.reserved), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    if ours is not None:
        ax.scatter(ours.p95, ours.reserved, color="k", marker="*", s=120, zorder=4,
                   label=f"{NEW} (defaults)")  # fmt: skip
        points = [*points, ours]
    ax.axvline(cell.p95_target, color="k", lw=0.8, ls="--")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.fill_between([0, cell.p95_target], 0, 1.0, color="tab:green", alpha=0.08,
                    label="both targets")  # fmt: skip
    xs = [p.p95 for p in points] + [cell.p95_target]
    ys = [p.reserved for p in points] + [1.0]
    ax.set_xlim(min(xs) - 0.02, max(xs) + 0.04)
    ax.set_ylim(min(ys) - 0.02, max(ys) + 0.02)
    ax.set_xlabel("p95 delay / grace-period's")
    ax.set_ylabel("reserved core-seconds / minimize-workers'")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


# The options of a run on one cell (retune.py takes them too).
CellOption = Annotated[str, typer.Option(help="a cell of default_policy.py's grids, by label")]
FirstSeedOption = Annotated[int, typer.Option(min=0, help="the first seed")]
SeedsOption = Annotated[int, typer.Option(min=1, help="seeds per setting")]
JobsOption = Annotated[int, typer.Option(min=10, help="requests per run")]


def main(
    cell: CellOption = "short diurnal",
    first_seed: FirstSeedOption = 1,
    seeds: SeedsOption = 5,
    jobs: JobsOption = 1000,
    policy: Annotated[str, typer.Option(help="the policy whose knobs are swept")] = NEW,
    knob: Annotated[
        list[str] | None,
        typer.Option(help="NAME=V1,V2: the policy with that knob at each value (repeatable)"),
    ] = None,
    procs: Annotated[int, typer.Option(min=1, help="processes")] = 2,
    plot_to: Annotated[
        Path | None, typer.Option("--plot", help="write the frontier's plot (PNG) there")
    ] = None,
    markdown: Annotated[bool, typer.Option(help="also print the table in Markdown")] = False,
) -> None:
    """Sweep a policy's knobs on one cell and print each setting against the cell's targets."""
    target = find_cell(cell)
    find_policy(policy)
    settings: list[Setting] = [()]
    for text in knob or default_sweep(policy):
        settings += [s for s in parse_knob(text, policy) if s not in settings]
    seed_range = range(first_seed, first_seed + seeds)
    beside = (GRACE, MINIMIZE) + ((NEW,) if policy != NEW else ())
    tasks = [(target, p, (), s, jobs) for p in beside for s in seed_range]
    tasks += [(target, policy, st, s, jobs) for st in settings for s in seed_range]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    results: dict[tuple[str, Setting], list[tuple[float, float, float]]] = {}
    with (
        Progress(*columns, console=console, transient=True) as bar,
        ProcessPoolExecutor(procs) as pool,
    ):
        task = bar.add_task(f"{cell}: simulating", total=len(tasks))
        for t, got in zip(tasks, pool.map(run_one, tasks), strict=True):
            results.setdefault((t[1], t[2]), []).append(got)
            bar.advance(task)

    def point(name: str, st: Setting) -> Point:
        return Point.of(st, results[(name, st)], results[(GRACE, ())], results[(MINIMIZE, ())])

    points = [point(policy, st) for st in settings]
    on = frontier(points)
    ours = point(NEW, ()) if policy != NEW else None
    which = f"seeds {first_seed}-{first_seed + seeds - 1}"
    title = f"{policy}'s knobs on {cell} ({which} x {jobs} requests)"
    table = Table(title=title)
    heads = ("setting", "avg / grace", f"p95 / grace ({target.p95_target})",
             "reserved / min-workers", "on the frontier", "all three targets")  # fmt: skip
    for h in heads:
        table.add_column(h, justify="left" if h == "setting" else "right")
    rows = []
    for p in sorted(points, key=lambda p: p.reserved):
        row = [label(p.setting), f"{p.avg:.3f}", f"{p.p95:.3f}", f"{p.reserved:.3f}",
               "yes" if p.setting in on else "", "yes" if p.meets(target) else "no"]  # fmt: skip
        table.add_row(*row)
        rows.append(row)
    if ours is not None:  # DaCirco's default policy, beside the peer's settings
        row = [f"{NEW} (defaults)", f"{ours.avg:.3f}", f"{ours.p95:.3f}",
               f"{ours.reserved:.3f}", "", "yes" if ours.meets(target) else "no"]  # fmt: skip
        table.add_row(*row)
        rows.append(row)
        better = [p for p in points if p.p95 <= ours.p95 and p.reserved <= ours.reserved]
        console.print(
            f"{len(better)} of {len(points)} settings of {policy} are as fast and as lean "
            f"as {NEW}'s defaults"
        )
    console.print(table)
    met = sum(p.meets(target) for p in points)
    console.print(f"{met} of {len(points)} settings meet all three targets")
    if markdown:
        for line in (list(heads), ["---"] * len(heads), *rows):
            print("| " + " | ".join(line) + " |")
    if plot_to is not None:
        plot(points, target, on, title, plot_to, ours)
        console.print(f"plot written to {plot_to}")


if __name__ == "__main__":
    typer.run(main)
