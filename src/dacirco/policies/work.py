"""A job's predicted work, from what the catalog says of its movie and from its preset.

Work is in seconds of 1080p30 video encoded at "ultrafast": the movie's duration times its
pixel rate (width x height x frames per second) over 1080p30's, times ``FAST_COST`` for the
"fast" preset; a streaming job's outputs and a measure of quality multiply it
(``Job.work_share``). It orders jobs and sizes workers; how many seconds a unit of work takes on
each flavor is measured as tasks complete (``RecentStats.seconds_per_work``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dacirco.policies.base import JobView, WorkerView

FAST_COST = 6.7  # x264 "fast" / "ultrafast" encoding time, measured on the catalog (2.0 / 0.3)
# Measuring VMAF, PSNR and SSIM ("quality": true) as a share of the encode it measures:
# 0.88 (DASH ladder) to 1.52 (HLS ladder) on bbb_9, benchmarks/ladder.py --quality.
QUALITY_COST = 1.2
P1080 = 1920 * 1080 * 30  # the pixel rate of a 1080p30 movie


def work_units(duration: float | None, pixel_rate: float | None, speed: str) -> float:
    """The predicted work of a job (0 when its movie's length is unknown)."""
    if not duration or duration <= 0:
        return 0.0
    pixels = (pixel_rate or P1080) / P1080
    return duration * pixels * (FAST_COST if speed == "fast" else 1.0)


def view_work(job: JobView) -> float:
    """The work of a waiting job or part as a policy sees it: a merge is a stream copy, no
    encoding work (any worker will do); a chunk's movie length is its share already."""
    if job.part == "merge":
        return 0.0
    return work_units(job.input_duration, job.input_pixel_rate, job.speed)


def seconds_left(w: WorkerView, rate: float, now: float) -> float | None:
    """Seconds until a busy worker's task ends, predicted from its work at ``rate`` seconds
    per unit (negative when overdue): none for a merge, a stream copy that ends at once;
    None when its work is unknown (a movie of unknown length)."""
    if w.busy_since is None:
        return None
    if w.part == "merge":
        return 0.0
    if not w.job_work:
        return None
    return w.job_work * rate - (now - w.busy_since)
