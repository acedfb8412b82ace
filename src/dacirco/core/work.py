"""A job's and a task's predicted work as the core tells the policies (``policies.work``):
the input's pixel rate times the share its outputs add, a part's share of its job's, and how
many parts a waiting job may be split in."""

from __future__ import annotations

from dacirco.domain import Job, Task, rendition_parts
from dacirco.outputs.parts import most_parts, share
from dacirco.policies.work import P1080, work_units


def work_pixel_rate(job: Job) -> float | None:
    """The pixel rate a job's encoding costs: its input's, times its outputs' share for a
    streaming job or one that measures its quality (``Job.work_share``)."""
    if job.work_share == 1.0:
        return job.input_pixel_rate
    return (job.input_pixel_rate or P1080) * job.work_share


def job_work(job: Job) -> float:
    return work_units(job.input_duration, work_pixel_rate(job), job.speed._value_)


def part_share(job: Job, index: int) -> float:
    """A part's share of its split job's work: a chunk's 1/K, a group of renditions' by
    their pixels (``outputs.parts.share``)."""
    if job.outputs:
        return share(rendition_parts(job), index)
    return 1.0 / max(1, job.chunks)


def task_work(job: Job, task: Task) -> float:
    """The encoding work of one task: a part's share of its job's, none for a merge."""
    if task.part == "merge":
        return 0.0
    work = job_work(job)
    return work * part_share(job, task.index) if task.part == "chunk" and job.chunks else work


def split_into(job: Job) -> int | None:
    """``JobView.frames`` of a waiting whole job: its frame count, the parts a streaming
    job's renditions and length are worth (None: it cannot be split)."""
    if job.outputs:
        most = most_parts(job.outputs, bool(job.thumbnails), job.input_height, job.input_duration)
        return most if most >= 2 else None
    return job.input_frames if job.input_fps else None
