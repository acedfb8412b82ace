"""Retention: jobs and workers that ended long ago leave the core, so that memory, the store
and the storage stop growing with the service's age.

With ``CoreConfig.retention`` on, the core keeps the jobs that ended (Completed, Error,
Canceled) and the workers that stopped, oldest first, with when (``State.ended_jobs``,
``State.ended_workers``). A job whose output served another job (output reuse) counts as
ending again when that job ends: it stays as long as any job that has its output.
``Expire(cutoff)`` forgets, oldest first, up to ``limit`` jobs and workers that ended before
``cutoff``: they leave the state and the reuse index (a later identical request is
transcoded again), and ``Step.forget`` names them, their tasks and the objects they own, for
the shell to delete their rows in the step's transaction and the objects once it is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dacirco.domain import FINAL_JOB_STATES, Job, Task, Worker, WorkerState, chunk_name, output_name
from dacirco.domain import reuse_key as key_of

from .effects import Forget, Step
from .state import State
from .stimuli import Finished


def ended_at(job: Job) -> float:
    return job.history[-1].at if job.history else job.received_at


def track(st: State, job_ids: Iterable[str], now: float) -> None:
    """After a step: the jobs it changed that ended join ``ended_jobs``; the source of the
    output a job got moves to the end with it."""
    ended = st.ended_jobs
    for job_id in job_ids:
        job = st.jobs.get(job_id)
        if job is None or job.state not in FINAL_JOB_STATES or job_id in ended:
            continue
        st.tx.put(ended, job_id, now)
        source = job.reused_from
        if source is not None and source in ended:
            st.tx.pop(ended, source)
            st.tx.put(ended, source, now)


def rebuild(st: State, finished: Finished | None = None) -> None:
    """After a restart: the jobs and workers as stored (``finished``: the jobs left in the
    store), in the order they ended."""
    ended = [
        (job.id, ended_at(job), job.reused_from)
        for job in st.jobs.values()
        if job.state in FINAL_JOB_STATES
    ]
    if finished is not None:
        ended += finished.ended
    known = {job_id for job_id, _, _ in ended}
    jobs: dict[str, float] = {}
    for job_id, at, source in ended:
        jobs[job_id] = max(jobs.get(job_id, 0.0), at)
        if source is not None and source in known:
            jobs[source] = max(jobs.get(source, 0.0), at)
    workers = {
        w.id: w.stopped_at or w.created_at
        for w in st.workers.values()
        if w.state is WorkerState.STOPPED
    }
    for target, found in ((st.ended_jobs, jobs), (st.ended_workers, workers)):
        for ident, at in sorted(found.items(), key=lambda item: item[1]):
            st.tx.put(target, ident, at)


def owned_objects(job: Job) -> list[str]:
    """The objects a job may have left in the storage: its output (not one it reused) and the
    chunks of a split job (deleted once merged, but not when it failed)."""
    if job.reused_from is not None:
        return []
    names = [] if job.outputs else [chunk_name(job, i) for i in range(1, job.chunks + 1)]
    if job.output or job.timings.get("started") is not None or job.chunks:
        names.append(job.output or output_name(job))
    return names


def due(st: State, cutoff: float, limit: int) -> list[str]:
    """The jobs ``Expire(cutoff, limit)`` would forget (the shell reads those that memory no
    longer holds from the store first: ``Expire.stored``)."""
    return _due(st.ended_jobs, cutoff, limit)


def expire(
    st: State,
    out: Step,
    cutoff: float,
    limit: int,
    stored: Mapping[str, tuple[Job, Sequence[Task]] | None],
) -> None:
    jobs: list[Job] = []
    tasks: list[Task] = []
    objects: list[str] = []
    for job_id in _due(st.ended_jobs, cutoff, limit):
        job = st.jobs.get(job_id)
        held = [st.tasks[t] for t in st.job_tasks.get(job_id, ()) if t in st.tasks]
        if job is None:
            if job_id not in stored:
                continue  # left memory after the shell looked: the next sweep has it
            found = stored[job_id]
            if found is None:  # no row to delete
                st.tx.pop(st.ended_jobs, job_id)
                continue
            job, held = found[0], list(found[1])
        st.tx.pop(st.ended_jobs, job_id)
        if job.state not in FINAL_JOB_STATES:
            continue
        jobs.append(job)
        for task in held:
            tasks.append(task)
            st.tx.pop(st.tasks, task.id)
        st.tx.pop(st.job_tasks, job_id)
        st.tx.pop(st.jobs, job_id)
        st.tx.pop(st.done_outputs, job_id)
        st.tx.pop(st.followers, job_id)
        key = key_of(job)
        if st.outputs.get(key) == job_id:
            st.tx.pop(st.outputs, key)
        if st.leaders.get(key) == job_id:
            st.tx.pop(st.leaders, key)
        objects.extend(owned_objects(job))
    workers: list[Worker] = []
    for worker_id in _due(st.ended_workers, cutoff, limit):
        st.tx.pop(st.ended_workers, worker_id)
        worker = st.workers.get(worker_id)
        if worker is None or worker.state is not WorkerState.STOPPED:
            continue
        workers.append(worker)
        st.tx.pop(st.workers, worker_id)
    if jobs or workers:
        out.forget = Forget(tuple(jobs), tuple(tasks), tuple(workers), tuple(objects))


def _due(ended: dict[str, float], cutoff: float, limit: int) -> list[str]:
    """The first ``limit`` entries that ended before ``cutoff`` (they are in that order)."""
    due: list[str] = []
    for ident, at in ended.items():
        if at >= cutoff or len(due) >= limit:
            break
        due.append(ident)
    return due
