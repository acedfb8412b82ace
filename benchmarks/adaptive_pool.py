"""The adaptive policy's warm pool against the traffic, in the simulator (reference data
center, VM boots, jobs split): a day whose arrival rate swings tenfold, and a step from a
quiet spell to a burst. Plots the arrival rate and the pool (workers idle, busy or booting)
against time, and prints the burst's first delays beside grace-period's and
minimize-workers' (same jobs, same seed) and the pool in the day's busiest and quietest tenths.

    .venv/bin/python benchmarks/adaptive_pool.py [--seed 1] [--period 3600] [--periods 2]
        [--out docs/img/adaptive-pool.png]
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dacirco.analytics.figures import figures
from dacirco.analytics.run import RunData
from dacirco.scenario.generate import diurnal_rate, draw_request, generate
from dacirco.scenario.model import Request
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import CatalogShape, SimJob, make_jobs

console = Console(width=160)
ADAPTIVE = "adaptive"
POLICIES = (ADAPTIVE, "grace-period", "minimize-workers")
FIRST = 10  # the burst's first requests whose delays are printed
ROOT = Path(__file__).resolve().parents[1]

# A step function of time: the times at which it changes and its value from each on.
Curve = tuple[list[float], list[float]]


@dataclass(frozen=True)
class Phase:
    seconds: float
    rate: float  # requests/s (Poisson)


def step_requests(phases: Sequence[Phase], rng: random.Random) -> list[Request]:
    """Poisson arrivals at each phase's rate, phase after phase; the first at 0."""
    times, start = [0.0], 0.0
    for p in phases:
        t = start
        while p.rate > 0:
            t += rng.expovariate(p.rate)
            if t >= start + p.seconds:
                break
            times.append(t)
        start += p.seconds
    return [draw_request(rng, b - a) for a, b in zip([0.0, *times], times, strict=False)]


def simulate(policy: str, jobs: list[SimJob], seed: int) -> RunData:
    config = SimConfig(algorithm=policy, split=True)
    sim = Simulation(config, DataCenter.reference(), Models.build("vm"), jobs, seed)
    return sim.run().run


def pool_curve(run: RunData) -> Curve:
    """The cores of the workers alive (booting, idle or busy) over time, from the run's
    worker spans: adaptive's workers have one core each, the others' flavor may have more."""
    return step_curve(
        (w.created, run.end if w.destroyed is None else w.destroyed, w.cpus) for w in run.workers
    )


def busy_curve(run: RunData) -> Curve:
    """The cores of the workers with a task over time."""
    return step_curve((a, b, w.cpus) for w in run.workers for a, b in w.busy)


def step_curve(spans: Iterable[tuple[float, float, float]]) -> Curve:
    """The sum over time of ``(start, end, value)`` spans, as a step curve from 0."""
    changes: dict[float, float] = {}
    for start, end, value in spans:
        changes[start] = changes.get(start, 0) + value
        changes[end] = changes.get(end, 0) - value
    times, values, n = [0.0], [0.0], 0.0
    for t in sorted(changes):
        n += changes[t]
        times.append(t)
        values.append(n)
    return times, values


def mean_over(curve: Curve, spans: Sequence[tuple[float, float]]) -> float:
    """The time average of ``curve`` over the union of ``spans`` (disjoint)."""
    times, values = curve
    total = length = 0.0
    for a, b in spans:
        length += b - a
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            nxt = times[i + 1] if i + 1 < len(times) else math.inf
            lo, hi = max(a, t), min(b, nxt)
            if hi > lo:
                total += v * (hi - lo)
    return total / length if length else math.nan


def value_at(curve: Curve, at: float) -> float:
    times, values = curve
    return next((v for t, v in zip(reversed(times), reversed(values), strict=True) if t <= at), 0.0)


def windowed_rate(
    arrivals: Sequence[float], window: float, end: float
) -> tuple[list[float], list[float]]:
    """Arrivals per second in consecutive windows of ``window`` s: the windows' middles and
    rates."""
    n = max(1, math.ceil(end / window))
    counts = [0] * n
    for a in arrivals:
        counts[min(n - 1, int(a // window))] += 1
    return [(i + 0.5) * window for i in range(n)], [c / window for c in counts]


def count_in(arrivals: Sequence[float], spans: Sequence[tuple[float, float]]) -> int:
    return sum(1 for t in arrivals for a, b in spans if a <= t < b)


def plot(
    out: Path,
    panels: Sequence[tuple[str, Sequence[float], float, Curve, list[float], list[float], float]],
) -> None:
    """One panel per run: the arrival rate (windows, and the generator's) and the pool."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 6.4))
    for ax, (title, arrivals, window, pool, ts, rate, end) in zip(axes, panels, strict=True):
        mids, rates = windowed_rate(arrivals, window, end)
        ax.step(mids, rates, where="mid", color="tab:blue", lw=1.2,
                label=f"arrivals / s ({window:g} s windows)")  # fmt: skip
        ax.plot(ts, rate, color="tab:blue", lw=0.8, ls="--", alpha=0.7, label="generator's rate")
        ax.set_ylabel("requests / s", color="tab:blue")
        ax.set_xlabel("time (s)")
        ax.set_xlim(0, end)
        ax.set_ylim(0, 1.45 * max([*rates, *rate]))  # headroom for the legend
        ax.set_title(title, fontsize=10)
        right = ax.twinx()
        right.step(pool[0], pool[1], where="post", color="tab:orange", lw=1.4,
                   label="adaptive: workers alive")  # fmt: skip
        right.set_ylabel("workers (1 core each)", color="tab:orange")
        right.set_ylim(0, 1.45 * max(pool[1]))
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(
    seed: Annotated[int, typer.Option(help="seed of the requests, the jobs' draws, the boots")] = 1,
    mean_rate: Annotated[float, typer.Option(help="day: mean requests/s")] = 0.2,
    amplitude: Annotated[float, typer.Option(help="day: rate swing (0.82: max/min = 10)")] = 0.82,
    period: Annotated[float, typer.Option(help="day: its length (s)")] = 3600.0,
    periods: Annotated[float, typer.Option(help="day: how many days are played")] = 2.0,
    day_window: Annotated[float, typer.Option(help="day: rate window (s)")] = 120.0,
    quiet_rate: Annotated[float, typer.Option(help="step: quiet requests/s")] = 0.02,
    quiet_seconds: Annotated[float, typer.Option(help="step: quiet spell before (s)")] = 600.0,
    burst_rate: Annotated[float, typer.Option(help="step: burst requests/s")] = 0.5,
    burst_seconds: Annotated[float, typer.Option(help="step: burst length (s)")] = 120.0,
    after_seconds: Annotated[float, typer.Option(help="step: quiet spell after (s)")] = 600.0,
    step_window: Annotated[float, typer.Option(help="step: rate window (s)")] = 30.0,
    out: Annotated[Path, typer.Option(help="the plot")] = ROOT / "docs/img/adaptive-pool.png",
) -> None:
    """Simulate a tenfold daily swing and a quiet-to-burst step; plot adaptive's pool."""
    models = Models.build("vm")
    n_day = max(2, round(mean_rate * period * periods))
    day = make_jobs(
        generate("diurnal", n_day, random.Random(seed), mean_rate=mean_rate,
                 amplitude=amplitude, period_seconds=period),
        models, seed, CatalogShape(),
    )  # fmt: skip
    phases = [
        Phase(quiet_seconds, quiet_rate),
        Phase(burst_seconds, burst_rate),
        Phase(after_seconds, quiet_rate),
    ]
    step = make_jobs(step_requests(phases, random.Random(seed)), models, seed, CatalogShape())
    burst = [j for j in step if quiet_seconds <= j.arrival < quiet_seconds + burst_seconds]
    runs = [("day", p) for p in POLICIES] + [("step", p) for p in POLICIES]
    results: dict[tuple[str, str], RunData] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("simulating", total=len(runs))
        for which, policy in runs:
            bar.update(task, description=f"{which}: {policy}")
            results[(which, policy)] = simulate(policy, day if which == "day" else step, seed)
            bar.advance(task)

    # ---- the day: the busiest and the quietest tenth ------------------------------------------
    arrivals = [j.arrival for j in day]
    last = arrivals[-1]
    tenth = period / 10
    full = [k for k in range(math.ceil(last / tenth)) if (k + 1) * tenth <= last]
    by_phase: dict[int, list[tuple[float, float]]] = {}
    for k in full:
        by_phase.setdefault(k % 10, []).append((k * tenth, (k + 1) * tenth))

    def rate_of(spans: list[tuple[float, float]]) -> float:
        return count_in(arrivals, spans) / sum(b - a for a, b in spans)

    busiest = max(by_phase, key=lambda p: rate_of(by_phase[p]))
    quietest = min(by_phase, key=lambda p: rate_of(by_phase[p]))
    table = Table(
        title=f"day: {len(day)} requests, rate {mean_rate:g}/s x (1 ± {amplitude:g}·sin), "
        f"period {period:g} s, {len(full) / 10:g} days averaged by tenth (seed {seed}); "
        "means over the tenth"
    )
    table.add_column("tenth of the day")
    for name in ("arrivals / s", "adaptive: busy cores", *(f"{p}: cores" for p in POLICIES)):
        table.add_column(name, justify="right")
    for label, p in (("busiest", busiest), ("quietest", quietest)):
        spans = by_phase[p]
        busy = mean_over(busy_curve(results[("day", ADAPTIVE)]), spans)
        pools = [mean_over(pool_curve(results[("day", q)]), spans) for q in POLICIES]
        table.add_row(
            f"{label}: {p * tenth:.0f}-{(p + 1) * tenth:.0f} s of each day",
            f"{rate_of(spans):.3f}",
            f"{busy:.1f}",
            *(f"{v:.1f}" for v in pools),
        )
    console.print(table)
    table = Table(title="day: the whole run")
    for name in ("policy", "delay avg / p95 (s)", "reserved core·s", "workers started",
                 "started in the first second"):  # fmt: skip
        table.add_column(name, justify="left" if name == "policy" else "right")
    for policy in POLICIES:
        run = results[("day", policy)]
        f = figures(run)
        table.add_row(
            policy,
            f"{f.delay.avg:.1f} / {f.delay.p95:.1f}",
            f"{f.reserved_core_seconds:.0f}",
            str(len(run.workers)),
            str(sum(1 for w in run.workers if w.created < run.start + 1.0)),
        )
    console.print(table)

    # ---- the step: the burst's first delays ---------------------------------------------------
    table = Table(
        title=f"step: {quiet_rate:g}/s for {quiet_seconds:g} s, then {burst_rate:g}/s for "
        f"{burst_seconds:g} s ({len(burst)} requests), then {quiet_rate:g}/s for "
        f"{after_seconds:g} s (seed {seed})"
    )
    first = burst[:FIRST]
    table.add_column("request of the burst")
    for policy in POLICIES:
        table.add_column(f"{policy} delay (s)", justify="right")
    delays = {p: {s.job_id: s.delay for s in results[("step", p)].jobs} for p in POLICIES}

    def shown(d: float | None) -> str:
        return "—" if d is None else f"{d:.1f}"

    for i, j in enumerate(first, 1):
        table.add_row(
            f"#{i}, at {j.arrival:.1f} s",
            *(shown(delays[p][j.id]) for p in POLICIES),
            end_section=i == len(first),
        )
    rows: dict[str, list[str]] = {
        f"mean of the first {len(first)}": [],
        f"all {len(burst)} of the burst: mean / p95": [],
        "cores reserved when the burst begins": [],
        "reserved core·s (whole run)": [],
    }
    for policy in POLICIES:
        run, got = results[("step", policy)], delays[policy]
        few = [d for j in first if (d := got[j.id]) is not None]
        whole = sorted(d for j in burst if (d := got[j.id]) is not None)
        p95 = whole[max(0, math.ceil(0.95 * len(whole)) - 1)] if whole else math.nan
        cells = iter(rows.values())
        next(cells).append(f"{statistics.fmean(few):.1f}" if few else "—")
        next(cells).append(f"{statistics.fmean(whole):.1f} / {p95:.1f}" if whole else "—")
        next(cells).append(f"{value_at(pool_curve(run), quiet_seconds):g}")
        next(cells).append(f"{figures(run).reserved_core_seconds:.0f}")
    for label, cells in rows.items():
        table.add_row(label, *cells)
    console.print(table)

    # ---- the plot -----------------------------------------------------------------------------
    day_end = max(last, period * periods)
    ts_day = [i * day_end / 400 for i in range(401)]
    step_end = sum(p.seconds for p in phases)
    ts_step, rate_step, t0 = [], [], 0.0
    for p in phases:
        ts_step += [t0, t0 + p.seconds]
        rate_step += [p.rate, p.rate]
        t0 += p.seconds
    plot(
        out,
        [
            (
                f"a day: rate {mean_rate:g}/s x (1 ± {amplitude:g}·sin), "
                f"period {period:g} s, {len(day)} requests",
                arrivals,
                day_window,
                pool_curve(results[("day", ADAPTIVE)]),
                ts_day,
                [diurnal_rate(t, mean_rate, amplitude, period) for t in ts_day],
                day_end,
            ),
            (
                f"quiet, then a burst of {burst_rate:g} requests/s for {burst_seconds:g} s",
                [j.arrival for j in step],
                step_window,
                pool_curve(results[("step", ADAPTIVE)]),
                ts_step,
                rate_step,
                step_end,
            ),
        ],
    )
    console.print(f"plot: {out} ({out.stat().st_size / 1000:.0f} KB)")


if __name__ == "__main__":
    typer.run(main)
