"""A job's own figures for ``GET /jobs/{id}``: where its time went, what it reserved, and each
attempt with its reason. Computed from the job, its tasks and their workers (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from dacirco.controller.events import iso
from dacirco.domain import Job, Task, TaskState, Worker, rendition_parts
from dacirco.outputs.parts import Plan, label

STEPS = (("download", "started", "downloaded"), ("transcode", "downloaded", "transcoded"))
STEPS += (("upload", "transcoded", "uploaded"),)


class Attempt(BaseModel):
    task_id: str
    part: str = Field(description="whole, chunk or merge")
    index: int = Field(0, description="a chunk's index, 1..chunks")
    renditions: list[str] | None = Field(
        None,
        description="a part of a streaming job split by its renditions: what it makes "
        "(e.g. 'hls 720p', 'thumbnails'); its merge packages them",
    )
    seconds: list[float | None] | None = Field(
        None,
        description="a part of a streaming job split in time: the span of the movie it "
        "encodes, [start, end] in seconds (end null: to the movie's end)",
    )
    worker_id: str
    worker: str = Field(description="the worker's name")
    flavor: str
    node: str | None = None
    state: str = Field(description="Assigned, Running, Done, Failed, Lost or Canceled")
    assigned: str
    ended: str | None = None
    reason: str | None = Field(None, description="why it failed, was lost or canceled")
    download: float | None = None
    transcode: float | None = None
    upload: float | None = None
    core_seconds: float = Field(description="the worker's cores x seconds it held this task")


class JobFigures(BaseModel):
    queue: float | None = Field(None, description="seconds from request to first assignment")
    boot: float | None = Field(
        None, description="the part of `queue` spent waiting for its first worker to boot"
    )
    download: float | None = Field(None, description="seconds, over its done tasks")
    transcode: float | None = None
    upload: float | None = None
    flavor: str | None = Field(None, description="the flavor of its last worker")
    node: str | None = None
    core_seconds: float = Field(
        0.0, description="cores x seconds its tasks held their workers (boot not included)"
    )
    attempts: list[Attempt] = Field(default_factory=list)


def _span(tasks: Sequence[Task], first: str, last: str) -> float | None:
    """Wall-clock seconds the step covered over ``tasks`` (one task: its own duration)."""
    spans = [(t.timings[first], t.timings[last]) for t in tasks if first in t.timings]
    spans = [(a, b) for a, b in spans if b >= a]
    if not spans:
        return None
    return round(max(b for _, b in spans) - min(a for a, _ in spans), 3)


def _seconds(task: Task, first: str, last: str) -> float | None:
    if first in task.timings and last in task.timings:
        return round(task.timings[last] - task.timings[first], 3)
    return None


def _mine(plan: Plan | None, task: Task) -> bool:
    return plan is not None and task.part == "chunk" and 1 <= task.index <= len(plan)


def _made(job: Job, plan: Plan | None, task: Task) -> list[str] | None:
    if not _mine(plan, task):
        return None
    assert plan is not None
    return [label(job.outputs or [], unit) for unit in plan.parts[task.index - 1]]


def _time_span(plan: Plan | None, task: Task) -> list[float | None] | None:
    if plan is None or plan.spans is None or not _mine(plan, task):
        return None
    span = plan.spans[task.index - 1]
    return [span.start, None if span.length is None else span.start + span.length]


def job_figures(
    job: Job, tasks: Sequence[Task], workers: dict[str, Worker], now: float
) -> JobFigures:
    attempts, core_seconds = [], 0.0
    plan = rendition_parts(job) if job.outputs and job.chunks else None
    for task in tasks:
        worker = workers.get(task.worker_id)
        if worker is None:
            continue
        cores = worker.cpus or worker.flavor.cpus
        held = cores * max(0.0, (task.ended_at or now) - task.assigned_at)
        core_seconds += held
        durations = {name: _seconds(task, a, b) for name, a, b in STEPS}
        attempts.append(
            Attempt(
                task_id=task.id,
                part=task.part or "whole",
                index=task.index,
                renditions=_made(job, plan, task),
                seconds=_time_span(plan, task),
                worker_id=worker.id,
                worker=worker.name,
                flavor=worker.flavor.name,
                node=worker.node,
                state=task.state.value,
                assigned=iso(task.assigned_at),
                ended=iso(task.ended_at) if task.ended_at is not None else None,
                reason=task.error,
                core_seconds=round(held, 3),
                **durations,
            )
        )
    figures = JobFigures(core_seconds=round(core_seconds, 3), attempts=attempts)
    if not tasks:
        return figures
    first = tasks[0]
    figures.queue = round(first.assigned_at - job.received_at, 3)
    worker = workers.get(first.worker_id)
    if worker is not None and worker.registered_at is not None:
        # The boot it waited for: the overlap of its wait with its worker's boot.
        overlap = min(first.assigned_at, worker.registered_at)
        overlap -= max(job.received_at, worker.created_at)
        figures.boot = round(max(0.0, overlap), 3)
    done = [t for t in tasks if t.state is TaskState.DONE]
    for name, a, b in STEPS:
        setattr(figures, name, _span(done, a, b))
    last = workers.get(tasks[-1].worker_id)
    if last is not None:
        figures.flavor, figures.node = last.flavor.name, last.node
    return figures
