"""The policy's decisions, checked and applied, in one order: splits, stops, assignments,
starts. A decision the state does not allow is refused (counted by reason, never applied):

- a split needs splitting on, a waiting whole job of known frame rate and frame count, and
  2..``MAX_CHUNKS`` chunks, no more than its frames; a streaming job, 2 up to the parts its
  renditions and its length are worth (``outputs.parts.most_parts``: ``JobView.frames``);
- a stop needs a worker that is neither busy nor stopped;
- an assignment needs a waiting job or part and an idle worker;
- a start needs a known flavor, no backoff running, room under ``max_workers`` and a known
  node with room for the flavor (the policy's, or ``placement.place``'s).
"""

from __future__ import annotations

from collections.abc import Callable

from dacirco.domain import FLAVORS, Job, JobState, Task, Worker, WorkerState
from dacirco.outputs.parts import in_time, most_parts
from dacirco.policies.base import Assign, Decisions, Split, StartWorker, StopWorker

from .effects import Launch, Step, Wake
from .lifecycle import emit, stop_worker
from .placement import MAX_CHUNKS, fits, place
from .state import PartRef, State, part_id


def refuse(st: State, out: Step, why: str, decision: object) -> None:
    st.refuse(why)
    out.refused.append(f"{why}: {decision}")


def apply(
    st: State, out: Step, d: Decisions, now: float, new_id: Callable[[str], str], policy: str
) -> bool:
    """Apply what may be; True when a split or a stop changed what the policy would say."""
    again = False
    for split in d.split:
        again = apply_split(st, out, split, now) or again
    for stop in d.stop:
        again = apply_stop(st, out, stop, now, policy) or again
    for assign in d.assign:
        apply_assign(st, out, assign, now, new_id)
    for start in d.start:
        apply_start(st, out, start, now, new_id)
    return again


def apply_split(st: State, out: Step, split: Split, now: float) -> bool:
    job = st.jobs.get(split.job_id)
    if not st.limits.can_split:
        refuse(st, out, "split: not enabled", split)
    elif job is None or split.job_id not in st.waiting or st.waiting[split.job_id] is not None:
        refuse(st, out, "split: not a waiting whole job", split)
    elif job.outputs:
        return _split_renditions(st, out, split, job, now)
    elif not 2 <= split.chunks <= MAX_CHUNKS:
        refuse(st, out, f"split: chunks must be 2..{MAX_CHUNKS}", split)
    elif not (job.input_fps and job.input_frames) or split.chunks > job.input_frames:
        refuse(st, out, "split: frame rate and frame count unknown, or too few frames", split)
    else:
        _split(st, out, job, split.chunks, f"split in {split.chunks} chunks", now)
        return True
    return False


def _split_renditions(st: State, out: Step, split: Split, job: Job, now: float) -> bool:
    """A streaming job in groups of its renditions (``outputs.parts``), worth 2..most."""
    assert job.outputs is not None
    most = most_parts(job.outputs, bool(job.thumbnails), job.input_height, job.input_duration)
    if not 2 <= split.chunks <= most:
        why = f"2..{most} parts" if most >= 2 else "no parts: one task makes them best"
        refuse(st, out, f"split: this job's outputs are worth {why}", split)
        return False
    timed = in_time(job.outputs, split.chunks, job.input_duration)
    kind = "spans in time" if timed else "parts of its renditions"
    _split(st, out, job, split.chunks, f"split in {split.chunks} {kind}", now)
    return True


def _split(st: State, out: Step, job: Job, k: int, detail: str, now: float) -> None:
    st.job(job)
    job.chunks, job.chunks_done = k, []
    job.transition(JobState.STARTED, now, detail)
    st.dequeue(job.id)
    for i in range(1, k + 1):
        st.enqueue(part_id(job.id, "chunk", i), PartRef(job.id, "chunk", i))
    emit(out, "EV15", now, request_id=job.id, chunks=k)


def apply_stop(st: State, out: Step, stop: StopWorker, now: float, policy: str) -> bool:
    worker = st.workers.get(stop.worker_id)
    if worker is None or worker.state in (WorkerState.STOPPED, WorkerState.BUSY):
        refuse(st, out, "stop: worker busy, stopped or unknown", stop)
        return False
    stop_worker(st, out, worker, stop.reason or f"stopped by {policy}", now)
    return True


def apply_assign(
    st: State, out: Step, assign: Assign, now: float, new_id: Callable[[str], str]
) -> None:
    key = assign.job_id
    if key not in st.waiting:
        refuse(st, out, "assign: job not waiting", assign)
        return
    worker = st.workers.get(assign.worker_id)
    if worker is None or worker.state is not WorkerState.IDLE:
        refuse(st, out, "assign: worker not idle", assign)
        return
    ref = st.waiting[key]
    job = st.job(st.jobs[ref.job_id if ref else key])
    st.dequeue(key)
    task = Task(id=new_id("task"), job_id=job.id, worker_id=worker.id, assigned_at=now)
    if ref is None:
        job.attempts += 1
        job.transition(JobState.STARTED, now, f"assigned to {worker.id}")
        job.worker_id, job.task_id, job.progress = worker.id, task.id, 0.0
        what = f"job {job.id}"
    else:
        task.part, task.index = ref.kind, ref.index
        what = f"{ref.kind} of job {job.id}"
    job.timings.setdefault("assigned", now)
    st.add_task(task)
    busy(st, worker, task, what, now)
    if out.log:
        emit(out, "EV3", now, request_id=job.id, worker_id=worker.id, task_id=task.id)
    out.actions.append(Wake(worker.id))  # the task leaves only once its assignment is stored


def busy(st: State, worker: Worker, task: Task, what: str, now: float) -> None:
    st.worker(worker)
    worker.transition(WorkerState.BUSY, now, what)
    worker.job_id, worker.task_id, worker.idle_since = task.job_id, task.id, None


def apply_start(
    st: State, out: Step, start: StartWorker, now: float, new_id: Callable[[str], str]
) -> None:
    flavor = FLAVORS.get(start.flavor)
    if flavor is None:
        refuse(st, out, "start: unknown flavor", start)
        return
    if now < st.counters.start_blocked_until:
        refuse(st, out, "start: backing off after failed boots or no room", start)
        return
    if st.limits.max_workers - len(st.alive) <= 0:
        refuse(st, out, "start: max_workers reached", start)
        return
    nodes = st.node_views()
    node = place(nodes, flavor) if start.node is None else start.node
    room = next((n for n in nodes if n.name == node), None)
    if room is None or not fits(room, flavor):
        refuse(st, out, "start: node lacks capacity (or unknown)", start)
        return
    counters = st.count()
    counters.workers += 1
    worker = Worker(
        id=new_id("worker"),
        name=f"dacirco-worker-{counters.workers:03d}",
        flavor=flavor,
        created_at=now,
        node=node,
        preemptible=room.opportunistic,
    )
    st.add_worker(worker)
    emit(out, "EV2", now, name=worker.name, worker_id=worker.id, flavor=flavor.name, node=node)
    out.actions.append(Launch(worker.id, worker.name, flavor, node))
