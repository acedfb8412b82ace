"""Split jobs: a job the policy splits (``Split``) is encoded as K chunks on any workers,
then merged on one; each part is a task of its own, waiting and retried alone.

A part waits as ``<job>#<i>`` or ``<job>#merge`` with its job's arrival time, so it keeps its
job's place in the queue. The merge waits once the last chunk is uploaded; the job completes
when the merge has uploaded the output (EV7), and its chunks are then deleted.
"""

from __future__ import annotations

from dacirco.domain import Job, JobState, Task, chunk_name

from .effects import Delete, Step
from .state import PartRef, State, part_id


def chunk_done(st: State, job: Job, task: Task) -> None:
    """A chunk is uploaded: when it is the last, the merge waits."""
    if job.state is not JobState.STARTED:
        return  # failed meanwhile: its chunks are deleted already
    st.job(job)
    if task.index not in job.chunks_done:
        job.chunks_done.append(task.index)
    job.progress = len(job.chunks_done) / (job.chunks + 1)
    if len(job.chunks_done) == job.chunks:
        st.enqueue(part_id(job.id, "merge", 0), PartRef(job.id, "merge", 0))


def merged(out: Step, job: Job) -> None:
    """The output is there: the chunks go."""
    out.actions.append(Delete(tuple(chunk_name(job, i) for i in range(1, job.chunks + 1))))


def restore_parts(st: State, job: Job) -> None:
    """After a restart: the parts of a split job not done yet wait again."""
    for i in range(1, job.chunks + 1):
        if i not in job.chunks_done:
            st.enqueue(part_id(job.id, "chunk", i), PartRef(job.id, "chunk", i))
    if len(job.chunks_done) == job.chunks:
        st.enqueue(part_id(job.id, "merge", 0), PartRef(job.id, "merge", 0))
