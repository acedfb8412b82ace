"""The core's job control: cancel (waiting, started, split, twice, too late, across a
restart) and priorities (the queue's order, aging, every policy)."""

from __future__ import annotations

import copy

import pytest

from dacirco.core.effects import Delete, Wake
from dacirco.core.errors import Conflict, NotFound, TaskNotYours
from dacirco.core.machine import Core
from dacirco.core.stimuli import (
    Cancel,
    Decide,
    Failed,
    Recover,
    Registered,
    Released,
    Reported,
    Submitted,
)
from dacirco.domain import Job, JobState, TaskState, WorkerState
from dacirco.policies.base import (
    Assign,
    Decisions,
    PolicyParams,
    Split,
    StartWorker,
    available,
    make_policy,
)
from tests.unit.test_core import (
    Scripted,
    codes,
    job,
    launched,
    new_core,
    run_task,
)


def started_job(core: Core, n: int = 1) -> str:
    """Job ``jn`` running on a new worker (its task reported started); the worker's id."""
    core.handle(Submitted(job(n)), 0.0)
    (launch,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)
    task_id = core.state.workers[launch.worker_id].task_id or ""
    core.handle(Reported(launch.worker_id, task_id, "started"), 2.0)
    return launch.worker_id


def test_a_waiting_job_is_canceled_at_once(cores: list[Core]) -> None:
    core = new_core(cores, Scripted())
    core.handle(Submitted(job()), 0.0)
    step = core.handle(Cancel("j1", "not needed"), 1.0)
    j = core.state.jobs["j1"]
    assert (j.state, j.timings["canceled"]) == (JobState.CANCELED, 1.0)
    assert j.history[-1].detail == "not needed"
    assert codes(step) == ["EV17"] and step.emits[0].fields["reason"] == "not needed"
    assert not core.state.waiting and not step.actions  # nothing uploaded, nothing to delete
    assert codes(core.handle(Cancel("j1"), 2.0)) == []  # twice: the same, nothing new


def test_canceling_a_running_job_tells_its_worker_which_stays_busy_until_it_drops_it(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    wid = started_job(core)
    task_id = core.state.workers[wid].task_id or ""
    step = core.handle(Cancel("j1"), 3.0)
    assert Wake(wid) in step.actions  # its watch answers
    assert Delete(("bbb_1-1000k-fast-j1.mp4",)) in step.actions  # an upload may have begun
    assert core.state.tasks[task_id].state is TaskState.CANCELED
    assert core.state.workers[wid].state is WorkerState.BUSY  # ffmpeg is still running
    with pytest.raises(TaskNotYours):  # its late report: the task is no longer its own
        core.handle(Reported(wid, task_id, "transcoded"), 3.5)
    step = core.handle(Released(wid, task_id), 4.0)
    w = core.state.workers[wid]
    assert (w.state, w.task_id, w.job_id, w.idle_since) == (WorkerState.IDLE, None, None, 4.0)
    assert core.state.workers[wid].state is not WorkerState.STOPPED  # not killed, reused
    assert codes(core.handle(Released(wid, task_id), 5.0)) == []  # released already


def test_a_task_canceled_before_it_started_frees_its_worker_at_once(cores: list[Core]) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    (launch,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)  # assigned, not started
    core.handle(Cancel("j1"), 2.0)
    assert core.state.workers[launch.worker_id].state is WorkerState.IDLE


def split_in_three(cores: list[Core]):  # type: ignore[no-untyped-def]
    """``j1`` split in 3 chunks on 2 workers ``a`` and ``b``: chunk 1 done on ``a``, chunk 2
    assigned to ``b``, chunk 3 waiting."""
    policy = Scripted()
    core = new_core(cores, policy, max_workers=3)
    core.handle(Submitted(job(splittable=True)), 0.0)
    policy.answers = [
        Decisions(split=(Split("j1", 3),)),
        Decisions(start=(StartWorker("small"), StartWorker("small"))),
    ]
    a, b = launched(core.handle(Decide(), 0.0))
    for w in (a, b):
        core.handle(Registered(w.worker_id, "n1", 2, 4.0), 1.0)
    policy.answers = [Decisions(assign=(Assign("j1#1", a.worker_id), Assign("j1#2", b.worker_id)))]
    core.handle(Decide(), 1.0)
    run_task(core, a.worker_id, 2.0)  # chunk 1 uploaded
    return core, policy, a, b


def test_canceling_a_split_job_stops_every_part_and_deletes_its_chunks(cores: list[Core]) -> None:
    core, _, _, b = split_in_three(cores)
    task_b = core.state.workers[b.worker_id].task_id or ""
    core.handle(Reported(b.worker_id, task_b, "started"), 3.0)
    step = core.handle(Cancel("j1"), 4.0)
    assert not core.state.waiting  # chunk 3 no longer waits
    assert Wake(b.worker_id) in step.actions
    (delete,) = [a for a in step.actions if isinstance(a, Delete)]
    assert "_chunk-j1-1.mp4" in delete.names
    assert core.state.tasks[task_b].state is TaskState.CANCELED
    step = core.handle(Released(b.worker_id, task_b), 5.0)
    assert Delete(("_chunk-j1-2.mp4",)) in step.actions  # its upload may have ended meanwhile


@pytest.mark.parametrize("final", [JobState.COMPLETED, JobState.ERROR])
def test_a_finished_job_cannot_be_canceled(cores: list[Core], final: JobState) -> None:
    core = new_core(cores)
    wid = started_job(core)
    task_id = core.state.workers[wid].task_id or ""
    if final is JobState.COMPLETED:
        for step in ("downloaded", "transcoded", "uploaded"):
            core.handle(Reported(wid, task_id, step), 3.0)
        expected = "is Completed: its output is ready"
    else:
        from dacirco.core.stimuli import Failed

        core.handle(Failed(wid, task_id, "transcoding", "bad input"), 3.0)
        expected = "is in Error already"
    with pytest.raises(Conflict, match=expected):
        core.handle(Cancel("j1"), 4.0)
    assert core.state.jobs["j1"].state is final
    with pytest.raises(NotFound, match="'nope' not found"):
        core.handle(Cancel("nope"), 4.0)


def test_a_canceled_job_stays_canceled_after_a_restart(cores: list[Core]) -> None:
    core = new_core(cores)
    wid = started_job(core)
    core.handle(Cancel("j1"), 3.0)
    st = core.state
    stored = copy.deepcopy((st.jobs, st.workers, st.tasks))  # what the store holds
    again = new_core(cores)
    again.handle(Recover(*(tuple(d.values()) for d in stored)), 10.0)
    assert again.state.jobs["j1"].state is JobState.CANCELED
    assert not again.state.waiting
    assert again.state.workers[wid].state is WorkerState.STOPPED


def prio_job(n: int, at: float, priority: int) -> Job:
    j = job(n, at)
    j.priority = priority
    return j


def test_the_queue_serves_higher_priorities_first_fifo_within_one_and_ages(
    cores: list[Core],
) -> None:
    policy = Scripted()
    core = new_core(cores, policy, priority_aging=60.0)
    core.handle(Submitted(prio_job(1, 0.0, 0)), 0.0)
    core.handle(Submitted(prio_job(2, 1.0, 0)), 1.0)
    core.handle(Submitted(prio_job(3, 2.0, 10)), 2.0)
    core.handle(Submitted(prio_job(4, 3.0, 10)), 3.0)
    core.handle(Submitted(prio_job(5, 4.0, -5)), 4.0)
    # Priority 0 arriving 20 min after j3: it has waited less than 10 levels' worth.
    core.handle(Submitted(prio_job(6, 1000.0, 0)), 1000.0)
    core.handle(Decide(), 1000.0)
    assert [v.id for v in policy.seen[-1].waiting] == ["j3", "j4", "j1", "j2", "j5", "j6"]
    # Aging: a priority -50 job that has waited 100 levels goes before a new priority 50 one.
    core.handle(Submitted(prio_job(7, 1001.0, -50)), 1001.0)
    core.handle(Submitted(prio_job(8, 1001.0 + 100 * 60.0 + 1, 50)), 7002.0)
    core.handle(Decide(), 7002.0)
    order = [v.id for v in policy.seen[-1].waiting]
    assert order.index("j7") < order.index("j8")
    assert {v.id: v.priority for v in policy.seen[-1].waiting}["j8"] == 50


@pytest.mark.parametrize("name", available())
def test_every_policy_serves_the_higher_priority_first(cores: list[Core], name: str) -> None:
    """One worker, two jobs alike but for their priority: the later, higher one goes first."""
    core = new_core(cores, make_policy(name, PolicyParams()), max_workers=1)
    core.handle(Submitted(prio_job(1, 0.0, 0)), 0.0)
    core.handle(Submitted(prio_job(2, 1.0, 20)), 1.0)
    now = 1.0
    for _ in range(20):  # until a worker is up and has a task
        step = core.handle(Decide(), now)
        for launch in launched(step):
            core.handle(Registered(launch.worker_id, "n1", 2, 4.0), now + 20.0)
        now += 21.0
        busy = [w for w in core.state.workers.values() if w.state is WorkerState.BUSY]
        if busy:
            break
    (worker,) = busy
    assert worker.job_id == "j2"
    assert core.state.jobs["j1"].state is JobState.WAITING


def test_a_job_keeps_fifo_order_with_every_priority_zero(cores: list[Core]) -> None:
    policy = Scripted()
    core = new_core(cores, policy)
    for n in range(1, 6):
        core.handle(Submitted(job(n, float(n))), float(n))
    core.handle(Decide(), 10.0)
    assert [v.id for v in policy.seen[-1].waiting] == ["j1", "j2", "j3", "j4", "j5"]


def test_a_requeued_job_keeps_its_place_in_every_later_view(cores: list[Core]) -> None:
    """A job back in the queue (its worker lost) goes before the jobs that came after it, in
    the view right after and in every one after that."""
    from dacirco.core.stimuli import Exited
    from dacirco.domain import ExitCause

    policy = Scripted()
    core = new_core(cores, policy)
    core.handle(Submitted(job(1, 0.0)), 0.0)
    policy.answers = [Decisions(start=(StartWorker("small"),))]
    (launch,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 1.0)
    policy.answers = [Decisions(assign=(Assign("j1", launch.worker_id),))]
    core.handle(Decide(), 1.0)
    core.handle(Submitted(job(2, 2.0)), 2.0)
    core.handle(Exited(launch.worker_id, ExitCause.CRASHED, "lost"), 3.0)  # j1 waits again
    for n in (3, 4):
        core.handle(Submitted(job(n, float(n))), float(n))
        core.handle(Decide(), float(n))
        assert [v.id for v in policy.seen[-1].waiting] == ["j1", "j2", "j3", "j4"][:n]


def test_right_size_runs_a_long_job_whose_frames_are_unknown_whole(cores: list[Core]) -> None:
    """It cannot be split (the core would refuse): right-size does not ask, it runs it."""
    from dacirco.policies.right_size import RightSize

    core = new_core(cores, RightSize(split_work=0.1), max_workers=2)
    core.handle(Submitted(job(1)), 0.0)  # no frame rate nor count
    now = 0.0
    for _ in range(5):
        for launch in launched(core.handle(Decide(), now)):
            core.handle(Registered(launch.worker_id, "n1", 2, 4.0), now + 20.0)
        now += 21.0
    assert core.state.jobs["j1"].state is JobState.STARTED
    assert not core.state.refused


def test_a_failed_split_job_stops_its_other_parts_and_deletes_every_chunk(
    cores: list[Core],
) -> None:
    """One chunk fails for good (ffmpeg refused it): the chunk still running elsewhere is
    dropped at once (not finished for nothing) and nothing of the job is left in storage."""
    core, policy, a, b = split_in_three(cores)
    task_b = core.state.workers[b.worker_id].task_id or ""
    core.handle(Reported(b.worker_id, task_b, "started"), 2.5)
    policy.answers = [Decisions(assign=(Assign("j1#3", a.worker_id),))]
    core.handle(Decide(), 6.0)
    task_a = core.state.workers[a.worker_id].task_id or ""
    step = core.handle(Failed(a.worker_id, task_a, "transcoding", "Invalid data"), 7.0)
    j = core.state.jobs["j1"]
    assert j.state is JobState.ERROR and not core.state.waiting
    assert Delete(("_chunk-j1-1.mp4",)) in step.actions
    assert Wake(b.worker_id) in step.actions  # chunk 2's worker is told to stop
    assert core.state.tasks[task_b].state is TaskState.CANCELED
    with pytest.raises(TaskNotYours):  # its late upload is refused...
        core.handle(Reported(b.worker_id, task_b, "uploaded"), 8.0)
    step = core.handle(Released(b.worker_id, task_b), 8.5)
    assert Delete(("_chunk-j1-2.mp4",)) in step.actions  # ... and whatever it stored deleted
    assert core.state.workers[b.worker_id].state is WorkerState.IDLE
