"""Output reuse: identical requests (``domain.reuse_key``) share one transcode.

- A request identical to a job already completed is served with that job's output at once
  (EV19, state Completed, ``reused_from`` naming the job).
- One identical to a job in progress is *attached* to it (EV18): it is never queued, follows
  its leader's state (Waiting, Started), and when the leader completes it completes with the
  same output (EV19); when the leader fails it fails with the leader's reason. If the leader
  is canceled by its own client, the first attached request takes its place in the queue
  (EV14) and the others attach to it. A request that ranks ahead of a leader still waiting
  (a higher priority) takes the leader's place instead: the one that ranks first runs.
- ``"reuse": false`` on a request opts it out (it runs on its own, and others may still
  attach to it); ``CoreConfig.reuse`` False turns reuse off for the whole service.

Jobs served this way did no work of their own: the event log, the figures and the
simulator count them apart (``analytics``). Every index change goes through the step's
transaction, like every other change of the core.
"""

from __future__ import annotations

from dacirco.domain import FINAL_JOB_STATES, Job, JobState, reuse_key

from .effects import Step
from .lifecycle import emit, fail
from .state import State
from .stimuli import Finished


def submitted(st: State, out: Step, job: Job, now: float) -> bool:
    """A new job: True if it was served or attached (it must not be queued)."""
    if not st.config.reuse:
        return False
    key = reuse_key(job)
    if job.reuse:
        source = st.outputs.get(key)
        if source is not None:
            _complete(st, out, job, source, st.output_of(source), now)
            return True
        leader_id = st.leaders.get(key)
        if leader_id is not None:
            leader = st.jobs[leader_id]
            ahead = st.rank(job) < st.rank(leader)
            if not (ahead and leader.reuse and leader.state is JobState.WAITING):
                _attach(st, out, job, leader, now)
                return True
            # The new request ranks first: it runs, the waiting leader attaches to it.
            st.dequeue(leader.id)
            _hand_over(st, out, leader, job, (leader.id,), now)
            return False
    if key not in st.leaders:
        st.tx.put(st.leaders, key, job.id)
    return False


def canceled(st: State, job: Job) -> None:
    """An attached job canceled by its client leaves its leader's followers."""
    leader_id = job.reused_from
    if leader_id is None:
        return
    rest = tuple(f for f in st.followers.get(leader_id, ()) if f != job.id)
    if rest:
        st.tx.put(st.followers, leader_id, rest)
    else:
        st.tx.pop(st.followers, leader_id)


def rebuild(st: State, now: float, finished: Finished | None = None) -> None:
    """After a restart: the indexes from the jobs as stored (``finished``: the outputs of
    those left in the store). An attached job whose leader is not stored (or with reuse
    turned off since) waits on its own; one whose leader ended is settled by the step's
    ``settle``."""
    if finished is not None and st.config.reuse:
        for key, job_id, output in finished.outputs:
            if key not in st.outputs:
                st.tx.put(st.outputs, key, job_id)
                st.done_outputs[job_id] = output
    for job in st.jobs.values():
        key = reuse_key(job)
        if job.state in FINAL_JOB_STATES:
            own = job.state is JobState.COMPLETED and job.reused_from is None
            if own and st.config.reuse and key not in st.outputs:
                st.tx.put(st.outputs, key, job.id)
            continue
        leader = st.jobs.get(job.reused_from) if job.reused_from else None
        if job.reused_from is not None and (leader is None or not st.config.reuse):
            st.job(job).reused_from = None
            if job.state is JobState.STARTED:
                job.transition(JobState.WAITING, now, "runs on its own after a restart")
            st.enqueue(job.id)
        elif leader is not None:
            st.tx.put(st.followers, leader.id, (*st.followers.get(leader.id, ()), job.id))
            st.touched[leader.id] = None
            continue
        if st.config.reuse and key not in st.leaders:
            st.tx.put(st.leaders, key, job.id)


def settle(st: State, out: Step, now: float) -> None:
    """After a step: the indexes follow the jobs it changed, and their followers too."""
    touched, st.touched = st.touched, {}
    if not st.config.reuse:
        return
    for job_id in touched:
        job = st.jobs.get(job_id)
        if job is None or job.reused_from is not None:
            continue
        if job.state in FINAL_JOB_STATES:
            key = reuse_key(job)
            if st.leaders.get(key) == job.id:
                st.tx.pop(st.leaders, key)
            if job.state is JobState.COMPLETED and key not in st.outputs:
                st.tx.put(st.outputs, key, job.id)
        followers = st.followers.get(job.id)
        if followers:
            _follow(st, out, job, followers, now)


def _follow(st: State, out: Step, leader: Job, followers: tuple[str, ...], now: float) -> None:
    jobs = [st.jobs[f] for f in followers]
    state = leader.state
    if state in (JobState.WAITING, JobState.STARTED):
        for f in jobs:
            _mirror(st, f, leader, now)
        return
    st.tx.pop(st.followers, leader.id)
    if state is JobState.COMPLETED:
        for f in jobs:
            _complete(st, out, f, leader.id, leader.output, now)
    elif state is JobState.ERROR:
        message = f"job {leader.id}, whose output it was waiting for, failed: {leader.error}"
        for f in jobs:
            fail(st, out, f, message, now)
    else:  # canceled by its own client: the first attached job runs in its place
        first, rest = jobs[0], followers[1:]
        st.job(first).reused_from = None
        why = f"job {leader.id}, whose output it was waiting for, was canceled"
        if first.state is JobState.STARTED:
            first.transition(JobState.WAITING, now, why)
        first.progress = 0.0
        st.enqueue(first.id)
        st.tx.put(st.leaders, reuse_key(first), first.id)
        emit(out, "EV14", now, request_id=first.id, reason=f"{why}: it runs on its own")
        if rest:
            _hand_over(st, out, first, first, rest, now)


def _mirror(st: State, f: Job, leader: Job, now: float) -> None:
    if f.state is not leader.state:
        st.job(f)
        f.transition(leader.state, now, f"as job {leader.id}")
        f.progress = 0.0


def _hand_over(
    st: State, out: Step, old: Job, new: Job, moved: tuple[str, ...], now: float
) -> None:
    """``moved`` (and the followers of ``old``) attach to ``new``, which leads from now on."""
    moved = (*moved, *(f for f in st.followers.get(old.id, ()) if f not in moved))
    if old is not new:
        st.tx.pop(st.followers, old.id)
    st.tx.put(st.leaders, reuse_key(new), new.id)
    for job_id in moved:
        f = st.job(st.jobs[job_id])
        f.reused_from = new.id
        _mirror(st, f, new, now)
        emit(out, "EV18", now, request_id=f.id, source=new.id)
    st.tx.put(st.followers, new.id, (*st.followers.get(new.id, ()), *moved))


def _attach(st: State, out: Step, job: Job, leader: Job, now: float) -> None:
    st.job(job).reused_from = leader.id
    _mirror(st, job, leader, now)
    st.tx.put(st.followers, leader.id, (*st.followers.get(leader.id, ()), job.id))
    emit(out, "EV18", now, request_id=job.id, source=leader.id)


def _complete(st: State, out: Step, job: Job, source: str, output: str | None, now: float) -> None:
    st.job(job)
    job.transition(JobState.COMPLETED, now, f"output of job {source}")
    job.reused_from, job.output, job.progress = source, output, 1.0
    job.timings["reused"] = now
    emit(out, "EV19", now, request_id=job.id, source=source, output=output or "")
