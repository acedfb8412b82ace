"""A job's measured quality: what its worker reported with ``transcoded``, kept with the job
and logged (EV21, one line per rendition, flat fields that classic tools read as columns)."""

from __future__ import annotations

from typing import Any

from dacirco.domain import Job, Task
from dacirco.outputs.parts import in_time

from .effects import Step
from .lifecycle import emit

# The figures of a rendition the event log carries.
LOGGED = ("output", "rendition", "height", "video_bitrate", "vmaf", "psnr", "ssim", "frames")


def measured(out: Step, job: Job, task: Task, quality: dict[str, Any], now: float) -> None:
    """The job's quality is this task's (a later attempt's replaces it; a part of a split
    streaming job's replaces its renditions' alone, the seconds add up; a span in time's
    replaces its own span's figures, and each rendition's are the spans' pooled); EV21 for
    each rendition. The job is already in the step's transaction (``State.job``)."""
    reported, span = quality, None
    if task.part == "chunk" and job.outputs is not None:
        order = {o["container"]: i for i, o in enumerate(job.outputs)}
        if in_time(job.outputs, job.chunks or 0, job.input_duration):
            span = task.index
            quality = _spans(job.quality_figures, quality, span, order)
        elif job.quality_figures:
            quality = _merged(job.quality_figures, quality, order)
    job.quality_figures = quality
    for rendition in reported.get("renditions", ()):
        fields = {k: rendition.get(k) for k in LOGGED}
        if span is not None:  # the figures of one span of the rendition
            fields["span"] = span
        emit(
            out, "EV21", now, request_id=job.id, worker_id=task.worker_id, task_id=task.id, **fields
        )


def _key(rendition: dict[str, Any]) -> tuple[Any, Any]:
    return (rendition.get("output"), rendition.get("rendition"))


def _sorted(renditions: list[dict[str, Any]], order: dict[str, int]) -> list[dict[str, Any]]:
    """In the outputs' order, then the renditions'."""
    return sorted(
        renditions,
        key=lambda r: (order.get(r.get("output"), len(order)), r.get("rendition") or 0),
    )


def _seconds(before: dict[str, Any] | None, part: dict[str, Any]) -> float:
    return round(float((before or {}).get("seconds") or 0.0) + float(part.get("seconds") or 0.0), 3)


def _merged(before: dict[str, Any], part: dict[str, Any], order: dict[str, int]) -> dict[str, Any]:
    """A part's figures beside the other parts': its renditions replace theirs, the
    renditions in the outputs' order."""
    mine = {_key(r) for r in part.get("renditions", ())}
    kept = [r for r in before.get("renditions", ()) if _key(r) not in mine]
    renditions = _sorted([*kept, *part.get("renditions", ())], order)
    return {**part, "renditions": renditions, "seconds": _seconds(before, part)}


def _spans(
    before: dict[str, Any] | None, part: dict[str, Any], span: int, order: dict[str, int]
) -> dict[str, Any]:
    """Span ``span``'s figures beside the other spans' (kept per span in ``by_span``: a
    span measured again replaces its own): each rendition's VMAF, PSNR and SSIM are the
    means over every frame scored in any span (each span's mean weighted by its frames,
    as libvmaf pools the frames of one run), its frames the spans' sum."""
    by_span = dict((before or {}).get("by_span") or {})
    by_span[str(span)] = list(part.get("renditions", ()))
    pooled: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for n in sorted(by_span, key=int):
        for r in by_span[n]:
            pooled.setdefault(_key(r), []).append(r)
    renditions = [pooled_figures(rs) for rs in pooled.values()]
    return {
        **part,
        "renditions": _sorted(renditions, order),
        "seconds": _seconds(before, part),
        "by_span": by_span,
    }


def pooled_figures(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """One rendition's figures from several spans': the means weighted by the frames each scored
    (as libvmaf pools the frames of one run), the frames summed."""
    frames = sum(int(r.get("frames") or 0) for r in figures)
    weights = [int(r.get("frames") or 0) if frames else 1 for r in figures]
    total = sum(weights)
    out = {**figures[0], "frames": frames}
    for name, digits in (("vmaf", 3), ("psnr", 3), ("ssim", 5)):
        mean = sum(float(r[name]) * w for r, w in zip(figures, weights, strict=True)) / total
        out[name] = round(mean, digits)
    return out
