"""``Core.handle(stimulus, now, txn) -> Step``: the one lifecycle of jobs, workers, tasks and
parts, shared by the controller and the simulator.

Each stimulus is checked against the state (a report from a stopped worker, for a task that
is not its own, ... raises the named error and changes nothing), applied, and answered with
the effects to run. ``Tick`` and ``Decide`` ask the policy: it sees ``state.view(now)`` and
its decisions are checked and applied (``decide.py``); after a split or a stop it is asked
again at once, in the controller and the simulator alike (a policy that stops a worker and,
asked again, starts one, boots for nothing in both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dacirco.domain import (
    ExitCause,
    JobState,
    Task,
    TaskState,
    Worker,
    WorkerState,
    output_name,
    task_output,
)
from dacirco.policies.base import Policy

from . import decide, retention, reuse
from .effects import Delete, Step
from .errors import Conflict, NotFound, TaskNotYours, WorkerAuthError, WorkerGone
from .lifecycle import (
    OPEN_TASK,
    cancel_refusal,
    check_liveness,
    drop_parts,
    drop_tasks,
    emit,
    fail,
    idle_worker,
    requeue_or_fail,
    requeue_part,
    stop_worker,
)
from .parts import chunk_done, completes, leftovers, merged
from .quality import measured
from .recovery import recover
from .state import CoreConfig, State
from .stimuli import (
    Cancel,
    Decide,
    Exited,
    Expire,
    Failed,
    Recover,
    Registered,
    Released,
    Reported,
    ReportedSteps,
    Shutdown,
    Stimulus,
    Submitted,
    Tick,
)
from .txn import Direct
from .work import job_work, task_work

DIRECT = Direct()  # no journal: stateless, shared

MAX_RECALLS = 100
# Failures no other attempt would escape, and what the job's error says of them.
PERMANENT_FAILURES = {"transcoding": "transcoding failed", "unrunnable": "cannot be run"}
# step -> event code (a chunk's upload is EV16: it is not the job's output)
STEP_EVENTS = {"started": "EV4", "downloaded": "EV5", "transcoded": "EV6", "uploaded": "EV7"}


def counting_ids() -> Callable[[str], str]:
    """Ids ``w000001``, ``t000001`` ... in creation order: deterministic (the simulator)."""
    seq: dict[str, int] = {}

    def new_id(kind: str) -> str:
        seq[kind] = seq.get(kind, 0) + 1
        return f"{kind[0]}{seq[kind]:06d}"

    return new_id


class Core:
    def __init__(
        self,
        config: CoreConfig,
        policy: Policy,
        *,
        new_id: Callable[[str], str] | None = None,
        log: bool = True,
    ) -> None:
        self.config = config
        self.policy = policy
        self.state = State(config)
        self.new_id = new_id or counting_ids()
        self.log = log  # False: no event lines are made (a simulation without a log)
        self.policy_calls = 0

    def handle(self, stimulus: Stimulus, now: float, txn: Direct | None = None) -> Step:
        st = self.state
        st.tx = txn if txn is not None else DIRECT
        out = Step(log=self.log)
        st.touched = {}
        try:
            self._dispatch(stimulus, now, out)
            changed = st.touched  # settle starts a new one for what it changes
            reuse.settle(st, out, now)
            if self.config.retention:
                retention.track(st, (*changed, *st.touched), now)
        finally:
            st.tx = DIRECT
            st.touched = {}
        return out

    def _dispatch(self, s: Stimulus, now: float, out: Step) -> None:
        # The commonest first (the simulator's steps: a call, an arrival, a task's reports).
        if isinstance(s, Decide):
            self._decide(now, out)
        elif isinstance(s, Submitted):
            self._submitted(s, now, out)
        elif isinstance(s, ReportedSteps):
            checked = None  # the worker and its task, as a step before left them: open
            for step, at in s.steps:
                checked = self._reported(s.worker_id, s.task_id, step, None, at, out, None, checked)
        elif isinstance(s, Reported):
            self._reported(s.worker_id, s.task_id, s.step, s.seconds, now, out, s.quality)
        elif isinstance(s, Registered):
            self._registered(s, now, out)
        elif isinstance(s, Tick):
            check_liveness(self.state, out, now)
            if s.decide:
                self._decide(now, out)
        elif isinstance(s, Failed):
            self._failed(s, now, out)
        elif isinstance(s, Exited):
            self._exited(s, now, out)
        elif isinstance(s, Cancel):
            self._cancel(s, now, out)
        elif isinstance(s, Released):
            self._released(s, now, out)
        elif isinstance(s, Recover):
            recover(self.state, out, s, now)
        elif isinstance(s, Expire):
            retention.expire(self.state, out, s.cutoff, s.limit, s.stored)
        elif isinstance(s, Shutdown):
            for wid in list(self.state.alive):
                w = self.state.workers[wid]
                stop_worker(self.state, out, w, s.reason, now, charge=False)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown stimulus {s!r}")

    # ---- the policy --------------------------------------------------------------------
    def _decide(self, now: float, out: Step) -> None:
        st = self.state
        for _ in range(MAX_RECALLS):
            decisions = self.policy.decide(st.view(now))
            self.policy_calls += 1
            out.decisions = decisions
            again = decide.apply(st, out, decisions, now, self.new_id, self.policy.name)
            if not again:
                return

    # ---- jobs --------------------------------------------------------------------------
    def _submitted(self, s: Submitted, now: float, out: Step) -> None:
        st, job = self.state, s.job
        st.add_job(job)
        if out.log:
            fields = {"input_video": job.id_video, "bitrate": job.bitrate}
            emit(out, "EV1", now, request_id=job.id, **fields, speed=job.speed.value)
        if reuse.submitted(st, out, job, now):
            return  # served with, or attached to, an identical job's output: no work
        st.enqueue(job.id)
        duration, work = job.input_duration, job_work(job)
        st.tx.later(lambda: st.stats.arrival(job.received_at, duration, work))

    def _cancel(self, s: Cancel, now: float, out: Step) -> None:
        """The job ends Canceled. Its waiting parts leave the queue; a worker that had not
        started its task is idle at once, one under way is told (``Wake``: its watch answers)
        and stays busy until it has dropped the task (``Released``); what it had uploaded goes."""
        st = self.state
        job = st.jobs.get(s.job_id)
        if job is None:
            raise NotFound(f"job {s.job_id!r} not found")
        if job.state is JobState.CANCELED:
            return  # canceled already: the same answer
        if (refusal := cancel_refusal(job)) is not None:
            raise Conflict(refusal)
        st.job(job)
        job.transition(JobState.CANCELED, now, s.reason)
        job.timings["canceled"] = now
        job.worker_id = job.task_id = None
        st.dequeue(job.id)
        drop_parts(st, job)
        reuse.canceled(st, job)
        drop_tasks(st, out, job, s.reason, now)
        emit(out, "EV17", now, request_id=job.id, reason=s.reason)
        names = leftovers(job)
        if job.timings.get("started") is not None or job.chunks:
            names.append(output_name(job))  # an upload may have begun
        names = list(dict.fromkeys(names))
        if names:
            out.actions.append(Delete(tuple(names)))

    def _released(self, s: Released, now: float, out: Step) -> None:
        st = self.state
        worker = st.workers.get(s.worker_id)
        if worker is None or worker.state is not WorkerState.BUSY or worker.task_id != s.task_id:
            return  # released already
        task = st.tasks.get(s.task_id)
        if task is None or task.state is not TaskState.CANCELED:
            return
        self._idle(worker, f"task {task.id} dropped (job {task.job_id} canceled)", now)
        job = st.jobs[task.job_id]
        # Its upload may have ended between the cancel and the drop.
        out.actions.append(Delete((task_output(job, task),)))

    # ---- workers -----------------------------------------------------------------------
    def _registered(self, s: Registered, now: float, out: Step) -> None:
        st = self.state
        worker = st.workers.get(s.worker_id)
        if worker is None:
            raise WorkerAuthError(f"unknown worker {s.worker_id!r}")
        if worker.state is WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        if worker.state is not WorkerState.BOOTING:
            return  # registered already: a retried registration
        st.worker(worker)
        worker.transition(WorkerState.IDLE, now, "registered")
        worker.registered_at = worker.idle_since = now
        if worker.node is None:  # the runtime's placement stays the node of record
            worker.node = s.node
            st.reserve(s.node, worker, +1)
        worker.cpus, worker.memory_gb = s.cpus, s.memory_gb
        boot = now - worker.created_at
        st.tx.later(lambda: st.stats.booted(boot))
        counters = st.count()
        counters.boot_failures, counters.start_blocked_until = 0, 0.0
        emit(
            out,
            "EV11",
            now,
            name=worker.name,
            worker_id=worker.id,
            node=s.node,
            cpus=str(s.cpus),
            memory=f"{s.memory_gb:g}",
        )

    def _exited(self, s: Exited, now: float, out: Step) -> None:
        st = self.state
        worker = st.workers.get(s.worker_id)
        if worker is None or worker.state is WorkerState.STOPPED:
            return
        if s.cause is ExitCause.STOPPED:
            stop_worker(st, out, worker, s.reason, now, charge=False)
        elif s.cause is ExitCause.PREEMPTED:
            # Its host's owner took the machine back: its task (a whole job or one chunk)
            # waits again without counting an attempt.
            why = f"preempted: {s.reason}"
            stop_worker(st, out, worker, why, now, charge=False, preempted=True)
        elif s.cause is ExitCause.NO_CAPACITY:
            # No room in the cloud: wait, as after a refusal; the jobs wait, they do not fail.
            st.count().start_blocked_until = now + st.config.capacity_backoff
            stop_worker(st, out, worker, s.reason, now, lost=True, charge=False)
        else:
            stop_worker(st, out, worker, s.reason, now, lost=True)

    # ---- tasks -------------------------------------------------------------------------
    def _open_task(self, worker_id: str, task_id: str, step: str):  # type: ignore[no-untyped-def]
        """The task a report is about, or None for a retried report of a closed task."""
        st = self.state
        worker = st.workers.get(worker_id)
        if worker is None:
            raise WorkerAuthError(f"unknown worker {worker_id!r}")
        if worker.state is WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        task = st.tasks.get(task_id)
        if task is None or task.worker_id != worker_id:
            raise TaskNotYours(f"task {task_id!r} is not assigned to this worker")
        if task.state not in OPEN_TASK:
            if step in task.timings or (step == "failed" and task.error):
                return None  # a retried report: already recorded
            raise TaskNotYours(f"task {task_id!r} is {task.state.value.lower()}")
        return worker, task

    def _reported(
        self,
        worker_id: str,
        task_id: str,
        step: str,
        seconds: float | None,
        now: float,
        out: Step,
        quality: dict[str, Any] | None = None,
        checked: tuple[Worker, Task] | None = None,
    ) -> tuple[Worker, Task] | None:
        """``checked``: what ``_open_task`` gave the step before (not an upload: unchanged by
        it); returned for the next step (None after an upload or a retried report)."""
        if step not in STEP_EVENTS:
            raise ValueError(f"unknown step {step!r}")
        found = checked if checked is not None else self._open_task(worker_id, task_id, step)
        if found is None or step in found[1].timings:
            return None
        worker, task = found
        st = self.state
        job = st.job(st.jobs[task.job_id])
        st.task(task)
        if task.state is TaskState.ASSIGNED:
            task.transition(TaskState.RUNNING, now)
        task.timings[step] = now
        if seconds is not None:
            task.worker_seconds[step] = seconds
        # A part's upload is EV16: not the job's output, unless it completes the job.
        final = task.part != "chunk" or (step == "uploaded" and completes(job, task))
        chunk_upload = step == "uploaded" and not final
        if not chunk_upload and job.state is JobState.STARTED:
            job.timings[step] = now
        if out.log:
            code = "EV16" if chunk_upload else STEP_EVENTS[step]
            emit(out, code, now, request_id=job.id, worker_id=worker.id, task_id=task.id)
        if quality is not None and step == "transcoded" and (task.part != "chunk" or job.outputs):
            measured(out, job, task, quality, now)
        if step != "uploaded":
            return found
        task.transition(TaskState.DONE, now)
        work, took, flavor = task_work(job, task), now - task.assigned_at, worker.flavor.name
        st.tx.later(lambda: st.stats.task_done(flavor, work, took))
        if task.part == "chunk":
            chunk_done(st, job, task)
        if not final:
            what = "part" if job.outputs else "chunk"
            self._idle(worker, f"{what} {task.index} of job {job.id} done", now)
            return None
        if job.state is JobState.STARTED:
            job.transition(JobState.COMPLETED, now, f"done by {worker.id}")
            job.output, job.progress = output_name(job), 1.0
            if task.part == "merge":
                merged(out, job)
        worker = self._idle(worker, f"job {job.id} done", now)
        worker.jobs_done += 1
        return None

    def _idle(self, worker, what: str, now: float):  # type: ignore[no-untyped-def]
        return idle_worker(self.state, worker, what, now)

    def _failed(self, s: Failed, now: float, out: Step) -> None:
        found = self._open_task(s.worker_id, s.task_id, "failed")
        if found is None:
            return
        worker, task = found
        st = self.state
        job = st.jobs[task.job_id]
        message = s.message.strip() or "no reason given"
        kind = s.kind
        if s.input_gone:
            message = f"movie {job.id_video!r} is no longer in the catalog ({message})"
            kind = "transcoding"
        st.task(task)
        task.transition(TaskState.FAILED, now, message)
        task.error = message
        self._idle(worker, f"job {job.id} failed", now)
        code = "EV10" if s.kind == "storage" else "EV9"
        emit(out, code, now, worker_id=worker.id, task_id=task.id, error_message=message)
        if job.state is not JobState.STARTED:
            return
        if kind in PERMANENT_FAILURES:
            # ffmpeg refused this input or these parameters, or the task cannot be made:
            # another attempt would fail alike.
            st.job(job).errors.append(message)
            fail(st, out, job, f"{PERMANENT_FAILURES[kind]}: {message}", now)
        elif task.part is not None:
            requeue_part(st, out, job, task, f"{kind} error: {message}", now, charge=True)
        else:
            requeue_or_fail(st, out, job, f"{kind} error: {message}", now)
