"""What a simulated run keeps of its jobs once they are done: each one's ``JobSpan`` and its
tasks' busy intervals, the job and its tasks gone from the core's state (``State.evict``).

A run of a million jobs otherwise keeps every ``Job`` and ``Task`` it ever made in the core
(a few GB) for the figures it computes at its end; a completed job changes no more, so its
span is the same made at once or at the end. Jobs still in the state when the run ends (not
completed, or kept: ``Simulation.keep_finished``) get theirs from the state then, as before.
"""

from __future__ import annotations

from operator import itemgetter

from dacirco.analytics.run import JobSpan
from dacirco.core.state import State
from dacirco.domain import Job, JobState
from dacirco.sim.workload import SimJob

_NONE: frozenset[str] = frozenset()  # no live worker holds a done job's task
_ASSIGNED = itemgetter(0)


def job_span(sim: SimJob, job: Job | None) -> JobSpan:
    """The span of request ``sim``, from its job as the core left it (None: never fed)."""
    if job is None or not job.timings:
        return JobSpan(sim.id, sim.arrival, sim.movie.name, sim.bitrate, sim.speed)
    t = job.timings
    done = job.state is JobState.COMPLETED
    assigned, attempts = t.get("assigned"), max(1, job.attempts)
    uploaded, reused_from = t.get("uploaded") if done else None, None
    if done and job.reused_from is not None:
        reused_from, uploaded = job.reused_from, t.get("reused")
        assigned, attempts = None, 0
    return JobSpan(  # every field but quality, in order: one call
        sim.id,
        sim.arrival,
        sim.movie.name,
        sim.bitrate,
        sim.speed,
        job.state.value,
        assigned,
        t.get("started"),
        t.get("downloaded"),
        t.get("transcoded"),
        uploaded,
        job.worker_id,
        attempts,
        reused_from,
    )


class Records:
    """The spans of the jobs retired so far, by id, and the busy intervals of their tasks,
    by worker."""

    __slots__ = ("busy", "spans")

    def __init__(self) -> None:
        self.spans: dict[str, JobSpan] = {}
        self.busy: dict[str, list[tuple[float, float]]] = {}

    def retire(self, state: State, sim: SimJob) -> None:
        """Completed job ``sim`` leaves the state, its span and tasks recorded (it stays
        while jobs follow it or one of its tasks is open)."""
        job = state.jobs.get(sim.id)
        if job is None or job.state is not JobState.COMPLETED or sim.id in state.followers:
            return
        tasks = [state.tasks[t] for t in state.job_tasks.get(sim.id, ())]
        if any(t.ended_at is None for t in tasks) or not state.evict(sim.id, _NONE):
            return
        self.spans[sim.id] = job_span(sim, job)
        busy = self.busy
        for t in tasks:
            intervals = busy.get(t.worker_id)
            if intervals is None:
                busy[t.worker_id] = [(t.assigned_at, t.ended_at)]  # type: ignore[list-item]
            else:
                intervals.append((t.assigned_at, t.ended_at))  # type: ignore[arg-type]

    def busy_by_worker(self, state: State, end: float) -> dict[str, list[tuple[float, float]]]:
        """Every task's busy interval by worker (those still in the state too; an open one
        ends at ``end``), in the order the tasks were made: each worker's by their start."""
        busy = self.busy
        for task in state.tasks.values():
            at = task.ended_at if task.ended_at is not None else end
            intervals = busy.get(task.worker_id)
            if intervals is None:
                busy[task.worker_id] = [(task.assigned_at, at)]
            else:
                intervals.append((task.assigned_at, at))
        for intervals in busy.values():
            intervals.sort(key=_ASSIGNED)  # stable: a worker's tasks come one after another
        return busy
