"""Preemption on the pure core: a pilot whose host's owner took the machine back ends as
*preempted* (EV20, then EV8); its task, a whole job or one chunk, waits again without
counting an attempt, so nothing is lost and a split job loses one chunk's work at most."""

from __future__ import annotations

from dacirco.core.machine import Core
from dacirco.core.state import part_id
from dacirco.core.stimuli import Decide, Exited, Registered, Reported, Submitted
from dacirco.domain import ExitCause, JobState, Node, TaskState, WorkerState
from dacirco.policies.base import Assign, Decisions, Split, StartWorker
from tests.unit.test_core import NODE, Scripted, codes, job, launched, new_core, run_task

IDLE_HOST = Node("idle-desk1", 4, 8.0, opportunistic=True)


def with_idle_host(core: Core) -> Core:
    core.state.set_nodes((NODE, IDLE_HOST))
    return core


def start_and_assign(core: Core, now: float) -> str:
    """The policy starts a worker for the waiting job, which registers and takes it."""
    (launch,) = launched(core.handle(Decide(), now))
    core.handle(Registered(launch.worker_id, launch.node, 2, 4.0), now + 1)
    assert codes(core.handle(Decide(), now + 1)) == ["EV3"]
    return launch.worker_id


def test_a_preempted_pilot_requeues_its_job_without_an_attempt(cores: list[Core]) -> None:
    core = with_idle_host(new_core(cores))
    job1 = job()
    job1.max_attempts = 1
    core.handle(Submitted(job1), 0.0)
    for round_ in range(3):  # preempted again and again: never an Error
        now = 10.0 * round_
        wid = start_and_assign(core, now)
        pilot = core.state.workers[wid]
        assert pilot.node == IDLE_HOST.name and pilot.preemptible  # a short job: to the pilot
        task_id = pilot.task_id
        assert task_id is not None
        core.handle(Reported(wid, task_id, "started"), now + 2)
        step = core.handle(
            Exited(wid, ExitCause.PREEMPTED, "owner's load 1.9 cores for 3 s"), now + 3
        )
        assert codes(step) == ["EV20", "EV8", "EV14"]
        assert step.emits[0].fields["reason"] == "preempted: owner's load 1.9 cores for 3 s"
        assert (pilot.state, pilot.preempted) == (WorkerState.STOPPED, True)
        assert pilot.stop_reason == "preempted: owner's load 1.9 cores for 3 s"
        task = core.state.tasks[task_id]
        assert (task.state, task.preempted) == (TaskState.LOST, True)
        assert (job1.state, job1.attempts, job1.errors) == (JobState.WAITING, 0, [])
    # The owner keeps the machine: the job runs on a worker of ours and completes.
    core.state.set_nodes((NODE,))
    wid = start_and_assign(core, 100.0)
    assert not core.state.workers[wid].preemptible
    assert codes(run_task(core, wid, 102.0)) == ["EV7"]
    assert (job1.state, job1.attempts) == (JobState.COMPLETED, 1)


def test_a_crash_still_counts_an_attempt(cores: list[Core]) -> None:
    core = with_idle_host(new_core(cores))
    job1 = job()
    job1.max_attempts = 1
    core.handle(Submitted(job1), 0.0)
    wid = start_and_assign(core, 0.0)
    step = core.handle(Exited(wid, ExitCause.CRASHED, "worker process killed by signal 9"), 3.0)
    assert codes(step) == ["EV12", "EV8", "EV13"]
    assert job1.state is JobState.ERROR and not core.state.workers[wid].preempted


def test_a_split_job_loses_one_chunk_and_no_attempt(cores: list[Core]) -> None:
    policy = Scripted()
    core = with_idle_host(new_core(cores, policy))
    job1 = job(splittable=True)
    job1.max_attempts = 1
    core.handle(Submitted(job1), 0.0)
    pilot = StartWorker("small", IDLE_HOST.name)
    policy.answers = [Decisions(split=(Split("j1", 2),), start=(pilot, pilot))]
    a, b = (x.worker_id for x in launched(core.handle(Decide(), 0.0)))
    for wid in (a, b):
        core.handle(Registered(wid, IDLE_HOST.name, 2, 4.0), 1.0)
    policy.answers = [Decisions(assign=(Assign("j1#1", a), Assign("j1#2", b)))]
    core.handle(Decide(), 1.0)
    assert codes(run_task(core, a, 2.0)) == ["EV16"]  # chunk 1 is done
    task_b = core.state.workers[b].task_id
    assert task_b is not None
    core.handle(Reported(b, task_b, "started"), 2.0)
    step = core.handle(Exited(b, ExitCause.PREEMPTED, "owner back"), 3.0)
    assert codes(step) == ["EV20", "EV8", "EV14"]
    # Chunk 2 waits alone; chunk 1's work is kept; the job goes on.
    assert part_id("j1", "chunk", 2) in core.state.waiting
    assert part_id("j1", "chunk", 1) not in core.state.waiting
    assert (job1.state, job1.chunks_done) == (JobState.STARTED, [1])
    # Preempted once more, then crashed: only the crash counts (1 attempt of 1: Error).
    policy.answers = [Decisions(assign=(Assign("j1#2", a),))]
    core.handle(Decide(), 4.0)
    core.handle(Exited(a, ExitCause.PREEMPTED, "owner back"), 5.0)
    assert job1.state is JobState.STARTED
    policy.answers = [Decisions(start=(StartWorker("small", NODE.name),))]
    (launch,) = launched(core.handle(Decide(), 6.0))
    core.handle(Registered(launch.worker_id, NODE.name, 2, 4.0), 7.0)
    policy.answers = [Decisions(assign=(Assign("j1#2", launch.worker_id),))]
    core.handle(Decide(), 7.0)
    core.handle(Exited(launch.worker_id, ExitCause.CRASHED, "exit 1"), 8.0)
    assert job1.state is JobState.ERROR
    assert job1.error is not None and "chunk 2 gave up after 1 attempts" in job1.error
