"""The Pareto plot of a comparison: p95 delay against reserved core-seconds, one panel per
workload, one point per policy (the mean over seeds, bars from the lowest to the highest
seed), and the lower bound as a star. Down and left is better on both bosses' axes.

Where one policy's delay is many times the others' (one cold start per request, say), the
delay axis is logarithmic, so that the others do not collapse onto its floor; one legend for
the whole figure, beside the panels rather than over their points."""

from __future__ import annotations

import math
from pathlib import Path

from dacirco.sim.compare import Comparison


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


LOG_SPREAD = 8.0  # a panel whose highest p95 is this many times its lowest: log scale


def pareto_plot(result: Comparison, out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(result.bounds)
    cols = min(2, len(workloads)) or 1
    rows = math.ceil(len(workloads) / cols) or 1
    fig, axes = plt.subplots(
        rows, cols, figsize=(6 * cols + 2, 4.5 * rows), squeeze=False, layout="constrained"
    )
    policies = sorted({c.policy for c in result.cells})
    palette = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")
    colors = {p: palette(i % palette.N) for i, p in enumerate(policies)}
    legend: dict[str, object] = {}
    for ax, w in zip(axes.flat, workloads, strict=False):
        heights: list[float] = []
        for cell in (c for c in result.cells if c.workload == w):
            xs = _finite([f.reserved_core_seconds for f in cell.figures])
            ys = _finite([f.delay.p95 for f in cell.figures])
            if not xs or not ys:
                continue
            x, y = sum(xs) / len(xs), sum(ys) / len(ys)
            heights += ys
            legend[cell.policy] = ax.errorbar(
                x,
                y,
                xerr=[[x - min(xs)], [max(xs) - x]],
                yerr=[[y - min(ys)], [max(ys) - y]],
                fmt="o",
                color=colors[cell.policy],
                capsize=3,
                label=cell.policy,
            )
        bx = _finite([b.reserved_core_seconds for b in result.bounds[w]])
        by = _finite([b.delay_p95 for b in result.bounds[w]])
        if bx and by:
            (star,) = ax.plot(sum(bx) / len(bx), sum(by) / len(by), "k*", markersize=12)
            legend["lower bound"] = star
            heights += by
        rho = _finite(result.rho.get(w, []))
        load = f" (rho = {sum(rho) / len(rho):.2f})" if rho else ""
        ax.set_title(f"{w}{load}")
        ax.set_xlabel("reserved core-seconds")
        ax.set_xlim(left=0)
        positive = [h for h in heights if h > 0]
        if positive and max(positive) > LOG_SPREAD * min(positive):
            ax.set_yscale("log")
            ax.set_ylabel("p95 delay (s, log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("p95 delay (s)")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(workloads) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    names = sorted(legend, key=lambda n: (n != "lower bound", n))
    fig.legend([legend[n] for n in names], names, loc="outside right center", fontsize="small")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
