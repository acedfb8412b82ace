"""A restart: what the previous run left in the store loaded into the core, then made
consistent. Its workers cannot be reached (their tokens died with it): they are stopped, and
their jobs, or a split job's parts not done, wait again without losing an attempt."""

from __future__ import annotations

from dacirco.domain import JobState, TaskState

from . import retention, reuse
from .effects import Step
from .lifecycle import OPEN_TASK, requeue_or_fail, stop_worker
from .parts import restore_parts
from .state import State
from .stimuli import Recover


def recover(st: State, out: Step, s: Recover, now: float) -> None:
    for job in s.jobs:
        st.add_job(job, stored=True)
        if job.state is JobState.WAITING and job.reused_from is None:
            st.enqueue(job.id)
    reuse.rebuild(st, now, s.finished)  # attached jobs wait with their leader
    for worker in s.workers:
        st.add_worker(worker, stored=True)
    if st.config.retention:
        retention.rebuild(st, s.finished)
    for task in s.tasks:
        st.add_task(task, stored=True)
    # Names go on from the highest stored (retention may have deleted earlier workers).
    numbers = [int(n) for w in s.workers if (n := w.name.rsplit("-", 1)[-1]).isdigit()]
    st.count().workers = max([len(s.workers), *numbers])
    # Workers of a previous run cannot be reached (their tokens died with it): stopped,
    # and their jobs wait again without losing an attempt.
    for worker in s.workers:
        stop_worker(st, out, worker, "controller restarted", now, lost=True, charge=False)
    # A task still open whose worker was already stopped (a crash between two writes).
    for task in s.tasks:
        if task.state in OPEN_TASK:
            st.task(task).transition(TaskState.LOST, now, "controller restarted")
    # No worker is alive now: a job still Started waits again (a split one: its parts).
    for job in s.jobs:
        if job.reused_from is not None:
            continue  # attached: it follows its leader
        if job.state is JobState.STARTED and job.chunks:
            restore_parts(st, job)
        elif job.state is JobState.STARTED:
            why = "controller restarted during the job"
            requeue_or_fail(st, out, job, why, now, charge=False)
