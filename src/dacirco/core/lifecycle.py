"""Stopping and losing workers, requeueing and failing jobs: the paths where a job could be
lost, in one place. Functions of the state, the step's outcome and the time."""

from __future__ import annotations

from typing import Any

from dacirco.domain import (
    Job,
    JobState,
    Task,
    TaskState,
    Worker,
    WorkerState,
)

from .effects import Delete, Emit, Halt, Step, Wake
from .parts import leftovers
from .state import PartRef, State, part_id

OPEN_TASK = (TaskState.ASSIGNED, TaskState.RUNNING)


def cancel_refusal(job: Job) -> str | None:
    """Why ``job`` cannot be canceled (a 409), or None: it can, or it was already."""
    if job.state is JobState.COMPLETED:
        return f"job {job.id!r} is Completed: its output is ready, nothing to cancel"
    if job.state is JobState.ERROR:
        return f"job {job.id!r} is in Error already: nothing to cancel"
    return None


def emit(out: Step, code: str, at: float, **fields: Any) -> None:
    if out.log:
        out.emits.append(Emit(code, at, fields))


def stop_worker(
    st: State,
    out: Step,
    worker: Worker,
    reason: str,
    now: float,
    *,
    lost: bool = False,
    charge: bool = True,
    preempted: bool = False,
) -> None:
    """The worker is stopped (EV8, or EV12 + EV8 when lost, EV20 + EV8 when preempted); the
    runtime will stop it.

    Its job, if any, waits again (or fails past its attempts); a part of a split job waits
    alone. ``charge`` False: not the job's fault (shutdown, restart, no room, preemption),
    the attempt is not counted. A worker lost before it registered backs further starts off.
    """
    if worker.state is WorkerState.STOPPED:
        return
    was_booting = worker.state is WorkerState.BOOTING
    job_id, task_id = worker.job_id, worker.task_id
    st.worker(worker)
    worker.transition(WorkerState.STOPPED, now, reason)
    worker.stopped_at, worker.stop_reason = now, reason
    worker.job_id = worker.task_id = None
    worker.idle_since = None
    worker.preempted = preempted
    st.stopped(worker)
    if preempted:
        emit(out, "EV20", now, name=worker.name, worker_id=worker.id, reason=reason)
    elif lost:
        emit(out, "EV12", now, name=worker.name, worker_id=worker.id, reason=reason)
    emit(out, "EV8", now, name=worker.name, worker_id=worker.id)
    task = st.tasks.get(task_id) if task_id else None
    if task is not None and task.state in OPEN_TASK:
        st.task(task)
        task.transition(TaskState.LOST, now, reason)
        task.error, task.preempted = reason, preempted
    job = st.jobs.get(job_id) if job_id else None
    if job is not None and job.state is JobState.STARTED:
        why = f"worker {worker.name}: {reason}"
        if task is not None and task.part is not None:
            requeue_part(st, out, job, task, why, now, charge=charge)
        else:
            requeue_or_fail(st, out, job, why, now, charge=charge)
    if lost and charge and was_booting:
        boot_failed(st, out, reason, now)
    out.actions.append(Wake(worker.id))  # a pending long-poll answers "gone"
    out.actions.append(Halt(worker.id))


def boot_failed(st: State, out: Step, reason: str, now: float) -> None:
    """A worker died before registering: back off further starts; after several in a row,
    fail the waiting jobs rather than restart workers forever."""
    counters = st.count()
    counters.boot_failures += 1
    delay = min(st.config.boot_backoff_max, 2.0 ** (counters.boot_failures - 1))
    counters.start_blocked_until = now + delay
    if counters.boot_failures < st.config.max_boot_failures:
        return
    message = f"no worker could start ({counters.boot_failures} tries in a row); last: {reason}"
    for key, ref in list(st.waiting.items()):
        if ref is None:
            fail(st, out, st.jobs[key], message, now)


def requeue_or_fail(
    st: State, out: Step, job: Job, reason: str, now: float, *, charge: bool = True
) -> None:
    st.job(job)
    job.worker_id = job.task_id = None
    if not charge:
        job.attempts = max(0, job.attempts - 1)
    else:
        job.errors.append(reason)
    if job.attempts >= job.max_attempts:
        fail(st, out, job, f"gave up after {job.attempts} attempts: " + "; ".join(job.errors), now)
        return
    job.transition(JobState.WAITING, now, reason)
    job.progress = 0.0
    st.enqueue(job.id)
    emit(out, "EV14", now, request_id=job.id, reason=reason)


def idle_worker(st: State, worker: Worker, what: str, now: float) -> Worker:
    worker = st.worker(worker)
    worker.transition(WorkerState.IDLE, now, what)
    worker.job_id = worker.task_id = None
    worker.idle_since = now
    return worker


def drop_tasks(st: State, out: Step, job: Job, reason: str, now: float) -> None:
    """The job ended (canceled, or failed while other parts ran): its open tasks are
    canceled. A worker that had not started its task is idle at once; one under way is told
    (``Wake``: its watch answers) and stays busy until it has dropped the task
    (``Released``, which deletes what it may have uploaded)."""
    for wid in list(st.alive):
        worker = st.workers[wid]
        task = st.tasks.get(worker.task_id) if worker.task_id else None
        if task is None or task.job_id != job.id or task.state not in OPEN_TASK:
            continue
        st.task(task).transition(TaskState.CANCELED, now, reason)
        task.error = reason
        if "started" not in task.timings:
            idle_worker(st, worker, f"job {job.id} ended before its task started", now)
        out.actions.append(Wake(worker.id))


def fail(st: State, out: Step, job: Job, message: str, now: float) -> None:
    """The job ends in Error; its waiting parts go, its parts under way stop, and the chunks
    it had uploaded are deleted."""
    st.job(job)
    job.transition(JobState.ERROR, now, message)
    job.error = message
    job.worker_id = job.task_id = None
    job.timings["failed"] = now
    st.dequeue(job.id)
    drop_parts(st, job)
    if job.chunks:
        drop_tasks(st, out, job, f"job {job.id} failed", now)
    emit(out, "EV13", now, request_id=job.id, error_message=message)
    if names := leftovers(job):
        out.actions.append(Delete(tuple(names)))


def drop_parts(st: State, job: Job) -> None:
    if not job.chunks:
        return
    for i in range(job.chunks + 1):
        st.dequeue(part_id(job.id, "merge" if i == 0 else "chunk", i))


def part_attempts(st: State, task: Task) -> int:
    """The attempts at ``task``'s part so far (a preempted one is not counted)."""
    tasks = (st.tasks[t] for t in st.job_tasks.get(task.job_id, ()))
    return sum(
        1 for t in tasks if t.part == task.part and t.index == task.index and not t.preempted
    )


def requeue_part(
    st: State, out: Step, job: Job, task: Task, reason: str, now: float, *, charge: bool
) -> None:
    """The part waits again alone; the job fails once that part used its attempts."""
    attempts = part_attempts(st, task) - (0 if charge else 1)
    what = f"chunk {task.index}" if task.part == "chunk" else "merge"
    st.job(job)
    job.errors.append(f"{what}: {reason}")
    if charge and attempts >= job.max_attempts:
        message = f"{what} gave up after {attempts} attempts: " + "; ".join(job.errors)
        fail(st, out, job, message, now)
        return
    kind = task.part or "chunk"
    st.enqueue(part_id(job.id, kind, task.index), PartRef(job.id, kind, task.index))
    emit(out, "EV14", now, request_id=job.id, reason=f"{what}: {reason}")


def check_liveness(st: State, out: Step, now: float) -> None:
    """A worker that never registers, or falls silent, is lost; its job waits again."""
    config = st.config
    for wid in list(st.alive):
        worker = st.workers[wid]
        if worker.state is WorkerState.BOOTING:
            if now - worker.created_at > config.boot_timeout:
                why = f"did not register within {config.boot_timeout:g} s"
                stop_worker(st, out, worker, why, now, lost=True)
        else:
            seen = worker.last_seen or worker.registered_at or worker.created_at
            if now - seen > config.heartbeat_timeout:
                stop_worker(st, out, worker, f"silent for {now - seen:.0f} s", now, lost=True)
