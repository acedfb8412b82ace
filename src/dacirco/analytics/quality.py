"""The measured quality of a run's outputs (EV21 lines, one per video rendition of a job that
asked for it): the report's rows (VMAF, PSNR, SSIM: average and worst over the renditions)
and its table of every rendition."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from dacirco.analytics.run import JobSpan, RunData
from dacirco.core.quality import pooled_figures

METRICS = (("vmaf", "VMAF", 2), ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4))


@dataclass(frozen=True)
class Spread:
    n: int = 0
    avg: float = math.nan
    min: float = math.nan


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def measured(jobs: list[JobSpan]) -> list[tuple[JobSpan, dict[str, Any]]]:
    """Every rendition measured of the completed jobs that did their own work (a job split in
    spans of time: each rendition's lines pooled over its spans, as the job shows them)."""
    return [
        (job, line)
        for job in jobs
        if job.state == "Completed" and job.reused_from is None
        for line in _renditions(job.quality)
    ]


def _renditions(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for line in lines:
        by.setdefault((line.get("output"), line.get("rendition")), []).append(line)
    out = []
    for group in by.values():
        numbers = all(_number(g.get(m)) is not None for g in group for m, _, _ in METRICS)
        out += [pooled_figures(group)] if len(group) > 1 and numbers else group
    return out


def spread(run: RunData, metric: str) -> Spread:
    values = [v for _, line in measured(run.jobs) if (v := _number(line.get(metric))) is not None]
    if not values:
        return Spread()
    return Spread(len(values), sum(values) / len(values), min(values))


def quality_rows(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    """The report's quality rows, one cell per run; none when no run measured anything."""
    if not any(measured(r.jobs) for r in runs):
        return []
    rows = [("renditions measured (quality)", [str(len(measured(r.jobs))) for r in runs])]
    for metric, name, digits in METRICS:
        cells = []
        for run in runs:
            s = spread(run, metric)
            cells.append("-" if not s.n else f"{s.avg:.{digits}f} / {s.min:.{digits}f}")
        rows.append((f"{name} avg / min", cells))
    return rows


def rendition_table(run: RunData, label: str, limit: int = 50) -> Table | None:
    """A table of every rendition measured in ``run`` (the first ``limit``), or None."""
    found = measured(run.jobs)
    if not found:
        return None
    more = f" (the first {limit} of {len(found)})" if len(found) > limit else ""
    table = Table(title=f"{label}: measured quality{more}")
    for column in ("job", "movie", "output", "rendition", "VMAF", "PSNR", "SSIM", "frames"):
        table.add_column(column, justify="left" if column in ("job", "movie") else "right")
    for job, line in found[:limit]:
        height = line.get("height")
        what = f"{height}p" if height else "source"
        if line.get("video_bitrate"):
            what += f" {line['video_bitrate']}k"
        cells = [f"{_number(line.get(m)) or 0:.{d}f}" for m, _, d in METRICS]
        table.add_row(
            job.job_id[:13],
            job.movie,
            str(line.get("output", "")),
            f"{line.get('rendition', '')}: {what}",
            *cells,
            str(line.get("frames", "")),
        )
    return table
