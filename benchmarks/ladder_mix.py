"""Ladder jobs in a workload: how delay and reserved core-seconds move when a share of the
requests ask for a streaming preset instead of one MP4 (``--ladder-share``).

Runs ``dacirco compare`` (the same code: ``sim.compare``) on the reference data center for each
share, the same seeds and requests for every share and policy, without output reuse (ladder
requests of one movie, preset and speed are identical: with reuse only the first would cost
anything). Prints one table and, with ``--plot``, draws p95 delay and reserved core-seconds
against the share, one panel per workload (docs/img/sim-ladder-mix.png).

    .venv/bin/python benchmarks/ladder_mix.py [--shares 0,0.3,1] [--seeds 3] [--jobs 500]
        [--workloads classic,poisson@0.6] [--preset hls-ladder] [--plot FILE]
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dacirco.sim.compare import Comparison, compare
from dacirco.sim.options import SimOptions

console = Console(width=150)
POLICIES = "adaptive,grace-period,minimize-workers,oracle"


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def main(
    shares: Annotated[str, typer.Option(help="ladder shares, comma-separated")] = "0,0.3,1",
    seeds: Annotated[int, typer.Option(min=1, help="seeds 1..N for every cell")] = 3,
    jobs: Annotated[int, typer.Option("--jobs", "-n", min=1, help="requests per run")] = 500,
    workloads: Annotated[str, typer.Option(help="compare's workloads")] = "classic,poisson@0.6",
    policies: Annotated[str, typer.Option(help="policies")] = POLICIES,
    preset: Annotated[str, typer.Option(help="the shipped preset asked for")] = "hls-ladder",
    plot: Annotated[Path | None, typer.Option(help="draw the figure here (PNG)")] = None,
) -> None:
    """Compare policies on workloads with 0 % ... 100 % ladder requests."""
    levels = [float(s) for s in shares.split(",")]
    names, kinds = policies.split(","), workloads.split(",")
    results: dict[float, Comparison] = {}
    for share in levels:
        options = SimOptions(jobs=jobs, reuse=False, ladder_share=share, ladder_preset=preset)
        results[share] = compare(options.setup(), names, kinds, list(range(1, seeds + 1)))
        console.print(f"share {share:g} done")
    table = Table(title=f"{preset} requests in the workload, {jobs} jobs x {seeds} seeds (means)")
    for column in ("workload", "ladder share", "rho", "policy", "delay avg (s)",
                   "delay p95 (s)", "reserved core·s"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("workload", "policy") else "right")
    for w in kinds:
        for share, result in results.items():
            rho = _mean(result.rho[w])
            for cell in (c for c in result.cells if c.workload == w):
                f = cell.figures
                table.add_row(
                    w, f"{share:.0%}", f"{rho:.2f}", cell.policy,
                    f"{_mean([x.delay.avg for x in f]):.1f}",
                    f"{_mean([x.delay.p95 for x in f]):.1f}",
                    f"{_mean([x.reserved_core_seconds for x in f]):,.0f}",
                )  # fmt: skip
    console.print(table)
    if plot is not None:
        console.print(f"figure: {draw(results, kinds, names, plot, preset)}")


def draw(
    results: dict[float, Comparison], kinds: list[str], names: list[str], out: Path, preset: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2, len(kinds), figsize=(5.5 * len(kinds), 7), squeeze=False, layout="constrained"
    )
    shares = list(results)
    for col, w in enumerate(kinds):
        for policy in names:
            cells = [
                next(c for c in results[s].cells if c.workload == w and c.policy == policy)
                for s in shares
            ]
            p95 = [_mean([f.delay.p95 for f in c.figures]) for c in cells]
            reserved = [_mean([f.reserved_core_seconds for f in c.figures]) for c in cells]
            xs = [100 * s for s in shares]
            axes[0][col].plot(xs, p95, marker="o", label=policy)
            axes[1][col].plot(xs, reserved, marker="o", label=policy)
        axes[0][col].set_title(w)
        axes[0][col].set_ylabel("delay p95 (s)")
        axes[1][col].set_ylabel("reserved core-seconds")
        axes[1][col].set_xlabel(f"% of requests asking for {preset}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


if __name__ == "__main__":
    typer.run(main)
