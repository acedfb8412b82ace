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
    """The job's quality is this task's (a later attempt's replaces it; a part of a split
    streaming job's replaces its renditions' alone, the seconds add up); EV21 for each
    rendition. The job is already in the step's transaction (``State.job``)."""
    reported = quality
    if task.part == "chunk" and job.quality_figures:
        order = {o["container"]: i for i, o in enumerate(job.outputs or ())}
        quality = _merged(job.quality_figures, quality, order)
    job.quality_figures = quality
    for rendition in reported.get("renditions", ()):
        fields = {k: rendition.get(k) for k in LOGGED}
        emit(
            out, "EV21", now, request_id=job.id, worker_id=task.worker_id, task_id=task.id, **fields
        )


def _key(rendition: dict[str, Any]) -> tuple[Any, Any]:
    return (rendition.get("output"), rendition.get("rendition"))


def _merged(before: dict[str, Any], part: dict[str, Any], order: dict[str, int]) -> dict[str, Any]:
    """A part's figures beside the other parts': its renditions replace theirs, the
    renditions in the outputs' order."""
    mine = {_key(r) for r in part.get("renditions", ())}
    kept = [r for r in before.get("renditions", ()) if _key(r) not in mine]
    renditions = sorted(
        [*kept, *part.get("renditions", ())],
        key=lambda r: (order.get(r.get("output"), len(order)), r.get("rendition") or 0),
    )
    seconds = float(before.get("seconds") or 0.0) + float(part.get("seconds") or 0.0)
    return {**part, "renditions": renditions, "seconds": round(seconds, 3)}
