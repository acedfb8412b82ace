"""PNG plots of runs (matplotlib, Agg canvas, no pyplot state): the delay CDF, each run's
Gantt timeline and utilization over time, and with several runs their comparisons.

Time is in seconds since each run's start; the series come from ``dacirco.analytics.figures``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dacirco.analytics.figures import (
    Figures,
    Step,
    life,
    reserved_cores,
    reserved_memory,
    used_cores,
    used_memory,
)
from dacirco.analytics.run import JobSpan, RunData, WorkerSpan

COLORS = {
    "booting": "#f0a030",
    "idle": "#c8c8c8",
    "busy": "#2e8b57",
    "waiting": "#f2d35c",
    "running": "#3a78c2",
    "failed": "#c0392b",
}
MAX_LABELED_ROWS = 40  # more rows than that: no row names, they would overlap


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def _xy(step: Step, start: float, end: float) -> tuple[list[float], list[float]]:
    """Points for ``ax.step(where="post")``, from ``start`` to ``end``, in seconds since start."""
    xs = [max(0.0, t - start) for t in step.times]  # per-second samples may begin before
    ys = list(step.values)
    if xs and end - start > xs[-1]:
        xs.append(end - start)
        ys.append(ys[-1])
    return xs, ys


def delay_cdf(runs: list[RunData], labels: list[str], path: Path) -> Path:
    """The CDF of the delay of completed jobs, every run on the same axes."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for run, label in zip(runs, labels, strict=True):
        delays = sorted(j.delay for j in run.jobs if j.state == "Completed" and j.delay is not None)
        if delays:
            ys = [(i + 1) / len(delays) for i in range(len(delays))]
            ax.step(
                [delays[0], *delays], [0.0, *ys], where="post", label=f"{label} ({len(delays)})"
            )
        else:
            ax.plot([], [], label=f"{label} (no completed job)")
    ax.set_xlabel("delay (s): uploaded - received")
    ax.set_ylabel("fraction of completed jobs")
    ax.set_ylim(0, 1.02)
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Delay CDF")
    return _save(fig, path)


def worker_segments(w: WorkerSpan, run: RunData) -> list[tuple[float, float, str]]:
    """``(t0, t1, kind)`` of a worker's life: booting, then idle and busy."""
    begin, finish = life(w, run)
    ready = min(finish, w.registered) if w.registered is not None else finish
    segments = [(begin, ready, "booting")] if ready > begin else []
    at = ready
    for t0, t1 in sorted(w.busy):
        t0, t1 = max(t0, at), min(t1, finish)
        if t1 <= t0:
            continue
        if t0 > at:
            segments.append((at, t0, "idle"))
        segments.append((t0, t1, "busy"))
        at = t1
    if finish > at:
        segments.append((at, finish, "idle"))
    return segments


def job_segments(j: JobSpan, run: RunData) -> list[tuple[float, float, str]]:
    """``(t0, t1, kind)`` of a job: waiting until assigned, then running (failed in red)."""
    if j.assigned is None:
        return [(j.received, max(j.received, run.end), "waiting")]
    finish = j.uploaded
    if finish is None:  # not completed: the end of its worker's busy interval, else the run's
        worker = next((w for w in run.workers if w.worker_id == j.worker_id), None)
        ends = [t1 for t0, t1 in (worker.busy if worker else []) if t0 == j.assigned]
        finish = ends[0] if ends else run.end
    kind = "failed" if j.state == "Error" else "running"
    return [(j.received, j.assigned, "waiting"), (j.assigned, max(j.assigned, finish), kind)]


def _bars(ax, rows: list[tuple[str, list[tuple[float, float, str]]]], start: float) -> None:  # type: ignore[no-untyped-def]
    for i, (_, segments) in enumerate(rows):
        bars = [(t0 - start, t1 - t0) for t0, t1, _ in segments]
        colors = [COLORS[kind] for *_, kind in segments]
        ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=colors, linewidth=0)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if len(rows) <= MAX_LABELED_ROWS:
        ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize="x-small")
    else:
        ax.set_yticks([])
    ax.grid(axis="x", alpha=0.3)


def gantt(run: RunData, label: str, path: Path) -> Path:
    """Workers (booting, idle, busy) above, jobs (waiting, running) below, on one time axis."""
    workers = [(w.name[:24], worker_segments(w, run)) for w in run.workers]
    jobs = [
        (j.job_id[:12], job_segments(j, run)) for j in sorted(run.jobs, key=lambda j: j.received)
    ]
    # Row weights capped so that neither panel crushes the other; past the cap, bars get thinner.
    ratios = [min(len(workers), 2 * MAX_LABELED_ROWS) + 2, min(len(jobs), 2 * MAX_LABELED_ROWS) + 2]
    fig = Figure(figsize=(10, min(20.0, 1.5 + 0.2 * sum(ratios))), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=ratios)
    _bars(top, workers, run.start)
    _bars(bottom, jobs, run.start)
    top.set_title(f"{label}: workers")
    bottom.set_title("jobs")
    bottom.set_xlabel("seconds since the run's start")
    bottom.set_xlim(0, max(run.duration, 1e-3))
    legend = [Patch(color=c, label=k) for k, c in COLORS.items()]
    fig.legend(handles=legend, loc="outside lower center", ncol=len(legend), fontsize="small")
    return _save(fig, path)


def utilization(run: RunData, label: str, path: Path) -> Path:
    """Reserved, used and capacity over time: cores above, memory (GB) below."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    cores, memory = fig.subplots(2, 1, sharex=True)
    used_c, source = used_cores(run)
    used_m, _ = used_memory(run)
    for ax, reserved, used, capacity, unit in (
        (cores, reserved_cores(run), used_c, run.capacity_cpus, "cores"),
        (memory, reserved_memory(run), used_m, run.capacity_memory_gb, "GB"),
    ):
        ax.step(*_xy(reserved, run.start, run.end), where="post", label="reserved")
        ax.step(*_xy(used, run.start, run.end), where="post", label=f"used ({source})")
        ax.axhline(capacity, color="black", linestyle="--", linewidth=1, label="capacity")
        ax.set_ylabel(unit)
        top = max([capacity, *reserved.values, *used.values, 1e-3])
        ax.set_ylim(0, top * 1.3)  # room for the legend above the capacity line
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", ncol=3, fontsize="small")
    cores.set_title(f"{label}: utilization")
    memory.set_xlabel("seconds since the run's start")
    return _save(fig, path)


def compare_utilization(runs: list[RunData], labels: list[str], path: Path) -> Path:
    """Reserved (solid) and used (dashed) cores of every run on the same axes."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        color = f"C{i % 10}"
        used, source = used_cores(run)
        ax.step(*_xy(reserved_cores(run), run.start, run.end), where="post", color=color,
                label=f"{label} reserved")  # fmt: skip
        ax.step(*_xy(used, run.start, run.end), where="post", color=color, linestyle="--",
                label=f"{label} used ({source})")  # fmt: skip
    ax.set_xlabel("seconds since the run's start")
    ax.set_ylabel("cores")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Reserved and used cores, all runs")
    return _save(fig, path)


def compare_figures(figs: list[Figures], labels: list[str], path: Path) -> Path:
    """The main figures of every run side by side: delay, core-seconds, utilization."""
    panels = [
        ("delay (s)", ["avg", "p95", "max"], lambda f: [f.delay.avg, f.delay.p95, f.delay.max]),
        ("core-seconds", ["reserved", "idle"],
         lambda f: [f.reserved_core_seconds, f.idle_core_seconds]),
        ("utilization (%)", ["reserved CPU", "CPU", "RAM"],
         lambda f: [100 * f.reserved_cpu_util.avg, 100 * f.cpu_util.avg, 100 * f.ram_util.avg]),
    ]  # fmt: skip
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    axes = fig.subplots(1, len(panels))
    width = 0.8 / len(figs)
    for ax, (title, names, values) in zip(axes, panels, strict=True):
        for i, (f, label) in enumerate(zip(figs, labels, strict=True)):
            xs = [k + (i - (len(figs) - 1) / 2) * width for k in range(len(names))]
            ax.bar(xs, values(f), width, label=label, color=f"C{i % 10}")
        ax.set_xticks(range(len(names)), names)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small")
    return _save(fig, path)


def render(
    runs: list[RunData], labels: list[str], slugs: list[str], figs: list[Figures], out: Path
) -> list[Plot]:
    """Every plot of the report, written into ``out``."""
    plots = [Plot("Delay CDF", delay_cdf(runs, labels, out / "delay-cdf.png"))]
    if len(runs) > 1:
        plots.append(Plot("Comparison", compare_figures(figs, labels, out / "compare-figures.png")))
        plots.append(
            Plot("Cores over time", compare_utilization(runs, labels, out / "compare-cores.png"))
        )
    for run, label, name in zip(runs, labels, slugs, strict=True):
        plots.append(Plot(f"{label}: timeline", gantt(run, label, out / f"gantt-{name}.png")))
        plots.append(
            Plot(
                f"{label}: utilization",
                utilization(run, label, out / f"utilization-{name}.png"),
            )
        )
    return plots
