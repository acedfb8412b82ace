"""Split jobs: a job the policy splits (``Split``) is made as K parts on any workers, then
finished on one; each part is a task of its own, waiting and retried alone.

- A classic job: K chunks of the movie, then their merge into the output.
- A streaming job: K groups of its renditions or K spans of a long one in time
  (``outputs.parts.layout``), each written into the job's folder, then its packaging (the
  master playlist and the MPD from the parts' own, the spans' media playlists joined); a job
  of MP4 files alone needs none and completes with its last part.

A part waits as ``<job>#<i>`` or ``<job>#merge`` with its job's arrival time, so it keeps its
job's place in the queue. The merge waits once the last part is uploaded; the job completes
when the merge has uploaded the output (EV7), and what only the merge needed is then deleted.
"""

from __future__ import annotations

from dacirco.domain import Job, JobState, Task, chunk_name, output_name, rendition_parts
from dacirco.outputs.names import output_dir
from dacirco.outputs.part_files import needs_packaging, partials

from .effects import Delete, Step
from .state import PartRef, State, part_id


def chunk_done(st: State, job: Job, task: Task) -> None:
    """A part is uploaded: when it is the last, the merge waits (a streaming job that needs
    no packaging is complete then instead: ``completes``)."""
    if job.state is not JobState.STARTED:
        return  # failed meanwhile: its parts are deleted already
    st.job(job)
    if task.index not in job.chunks_done:
        job.chunks_done.append(task.index)
    job.progress = len(job.chunks_done) / (job.chunks + 1)
    if len(job.chunks_done) == job.chunks and not completes(job, task):
        st.enqueue(part_id(job.id, "merge", 0), PartRef(job.id, "merge", 0))


def completes(job: Job, task: Task) -> bool:
    """Whether ``task``'s part is the last one a streaming job without packaging needs."""
    if not job.outputs or job.state is not JobState.STARTED or needs_packaging(job.outputs):
        return False
    return len({*job.chunks_done, task.index}) == job.chunks


def merged(out: Step, job: Job) -> None:
    """The output is there: the chunks go (a streaming job's: the parts' playlists)."""
    if job.outputs:
        folder = output_dir(job.id_video, job.id)
        names = tuple(f"{folder}/{name}" for name in partials(job.outputs, rendition_parts(job)))
    else:
        names = tuple(chunk_name(job, i) for i in range(1, job.chunks + 1))
    if names:
        out.actions.append(Delete(names, files=bool(job.outputs)))


def leftovers(job: Job) -> list[str]:
    """What a split job that failed or was canceled had uploaded: its chunks; a streaming
    job's folder (through its main file's name)."""
    if job.outputs:
        return [output_name(job)] if job.chunks_done else []
    return [chunk_name(job, i) for i in sorted(job.chunks_done)]


def restore_parts(st: State, job: Job) -> None:
    """After a restart: the parts of a split job not done yet wait again."""
    for i in range(1, job.chunks + 1):
        if i not in job.chunks_done:
            st.enqueue(part_id(job.id, "chunk", i), PartRef(job.id, "chunk", i))
    if len(job.chunks_done) == job.chunks and (not job.outputs or needs_packaging(job.outputs)):
        st.enqueue(part_id(job.id, "merge", 0), PartRef(job.id, "merge", 0))
