"""A job's measured quality: what its worker reported with ``transcoded``, kept with the job
and logged (EV21, one line per rendition, flat fields that classic tools read as columns)."""

from __future__ import annotations

from typing import Any

from dacirco.domain import Job, Task

from .effects import Step
from .lifecycle import emit

# The figures of a rendition the event log carries.
LOGGED = ("output", "rendition", "height", "video_bitrate", "vmaf", "psnr", "ssim", "frames")


def measured(out: Step, job: Job, task: Task, quality: dict[str, Any], now: float) -> None:
    """The job's quality is this task's (a later attempt's replaces it); EV21 for each
    rendition. The job is already in the step's transaction (``State.job``)."""
    job.quality_figures = quality
    for rendition in quality.get("renditions", ()):
        fields = {k: rendition.get(k) for k in LOGGED}
        emit(
            out, "EV21", now, request_id=job.id, worker_id=task.worker_id, task_id=task.id, **fields
        )
