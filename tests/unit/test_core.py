"""The core alone: feed it stimuli, assert on its effects, and check its invariants after
every test (no I/O, no clock, no asyncio: a step is a function call)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest

from dacirco.core.effects import Delete, Halt, Launch, Step, Wake
from dacirco.core.errors import TaskNotYours, WorkerGone
from dacirco.core.lifecycle import OPEN_TASK
from dacirco.core.machine import Core
from dacirco.core.state import CoreConfig, part_id
from dacirco.core.stimuli import (
    Decide,
    Exited,
    Failed,
    Recover,
    Registered,
    Reported,
    Shutdown,
    Submitted,
    Tick,
)
from dacirco.domain import (
    ExitCause,
    Job,
    JobState,
    Node,
    Speed,
    TaskState,
    WorkerState,
    reuse_key,
)
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    PolicyParams,
    Split,
    StartWorker,
    StopWorker,
    make_policy,
)

NODE = Node("n1", 8, 32.0)
STEPS = ("started", "downloaded", "transcoded", "uploaded")


@dataclass
class Scripted:
    """A policy that answers what the test says, then nothing."""

    answers: list[Decisions] = field(default_factory=list)
    seen: list[ClusterView] = field(default_factory=list)
    name: str = "scripted"

    def decide(self, view: ClusterView) -> Decisions:
        self.seen.append(view)
        return self.answers.pop(0) if self.answers else Decisions()


def check_invariants(core: Core) -> None:
    st = core.state
    for key, ref in st.waiting.items():
        if ref is None:
            assert st.jobs[key].state is JobState.WAITING, key
        else:
            job = st.jobs[ref.job_id]
            assert job.state is JobState.STARTED and job.chunks, key
            assert ref.index not in job.chunks_done, key
    finals = (JobState.COMPLETED, JobState.ERROR, JobState.CANCELED)
    for job in st.jobs.values():
        attached = job.reused_from is not None and job.state not in finals
        if job.state is JobState.WAITING and not attached:
            assert job.id in st.waiting, job.id
        if attached:  # never queued; waits in its leader's state, listed as its follower
            leader = st.jobs[job.reused_from or ""]
            assert job.id not in st.waiting and job.state is leader.state, job.id
            assert leader.reused_from is None and job.id in st.followers[leader.id], job.id
    for leader_id, followers in st.followers.items():
        assert followers and all(st.jobs[f].reused_from == leader_id for f in followers)
    for key, job_id in st.outputs.items():
        j = st.jobs[job_id]
        assert j.state is JobState.COMPLETED and j.reused_from is None and reuse_key(j) == key
    for key, job_id in st.leaders.items():
        j = st.jobs[job_id]
        assert j.state not in finals and j.reused_from is None and reuse_key(j) == key
    assert set(st.alive) == {
        w.id for w in st.workers.values() if w.state is not WorkerState.STOPPED
    }
    used: dict[str, tuple[float, float]] = {}
    for wid in st.alive:
        w = st.workers[wid]
        c, m = used.get(w.node or "", (0.0, 0.0))
        used[w.node or ""] = (c + w.flavor.cpus, m + w.flavor.memory_gb)
    assert {n: u for n, u in st.used.items() if u != (0.0, 0.0)} == used
    open_tasks = {t.id: t for t in st.tasks.values() if t.state in OPEN_TASK}
    for w in st.workers.values():
        if w.state is WorkerState.BUSY:
            # Its task is open, or canceled and not yet dropped by the worker.
            task = st.tasks[w.task_id or ""]
            assert task.state in (*OPEN_TASK, TaskState.CANCELED), task
            assert task.worker_id == w.id and w.job_id == task.job_id
        else:
            assert w.task_id is None and w.job_id is None, w
    for t in open_tasks.values():
        assert st.workers[t.worker_id].task_id == t.id
    if core.config.retention:  # stopped workers may have been forgotten
        assert st.counters.workers >= len(st.workers)
    else:
        assert st.counters.workers == len(st.workers)


def new_core(cores: list[Core], policy: object = None, **config: object) -> Core:
    core = Core(CoreConfig(**config), policy or make_policy("grace-period", PolicyParams()))  # type: ignore[arg-type]
    core.state.set_nodes((NODE,))
    cores.append(core)
    return core


def job(n: int = 1, at: float = 0.0, splittable: bool = False, reuse: bool = False) -> Job:
    """Job ``jn``; every one asks for the same output, so each runs on its own unless
    ``reuse`` (output reuse has its own tests, test_core_reuse.py)."""
    frames = {"input_fps": 25.0, "input_frames": 250} if splittable else {}
    return Job(
        f"j{n}",
        "bbb_1.mp4",
        1000,
        Speed.FAST,
        at,
        input_duration=10.0,
        reuse=reuse,
        **frames,  # type: ignore[arg-type]
    )


def codes(step: Step) -> list[str]:
    return [e.code for e in step.emits]


def launched(step: Step) -> list[Launch]:
    return [a for a in step.actions if isinstance(a, Launch)]


def run_task(core: Core, worker_id: str, now: float) -> Step:
    task_id = core.state.workers[worker_id].task_id
    assert task_id is not None
    step = Step()
    for i, name in enumerate(STEPS):
        step = core.handle(Reported(worker_id, task_id, name), now + i)
    return step


def test_a_job_from_submission_to_completion(cores: list[Core]) -> None:
    core = new_core(cores)
    assert codes(core.handle(Submitted(job()), 0.0)) == ["EV1"]
    step = core.handle(Decide(), 0.0)
    (launch,) = launched(step)
    assert codes(step) == ["EV2"] and launch.node == "n1"
    assert codes(core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 10.0)) == ["EV11"]
    step = core.handle(Decide(), 10.0)
    assert codes(step) == ["EV3"] and Wake(launch.worker_id) in step.actions
    done = run_task(core, launch.worker_id, 11.0)
    assert codes(done) == ["EV7"]
    j = core.state.jobs["j1"]
    assert (j.state, j.attempts, j.progress) == (JobState.COMPLETED, 1, 1.0)
    assert core.state.workers[launch.worker_id].state is WorkerState.IDLE
    assert core.state.stats.snapshot(20.0).boot_seconds == 10.0


def test_a_retried_report_changes_nothing_and_a_stopped_worker_is_refused(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    (launch,) = launched(core.handle(Decide(), 0.0))
    wid = launch.worker_id
    core.handle(Registered(wid, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)
    task_id = core.state.workers[wid].task_id
    assert task_id is not None
    core.handle(Reported(wid, task_id, "started"), 2.0)
    assert codes(core.handle(Reported(wid, task_id, "started"), 3.0)) == []
    with pytest.raises(TaskNotYours):
        core.handle(Reported(wid, "t-other", "started"), 3.0)
    lost = core.handle(Exited(wid, ExitCause.CRASHED, "killed"), 4.0)
    assert codes(lost) == ["EV12", "EV8", "EV14"] and Halt(wid) in lost.actions
    before = copy.deepcopy(core.state.jobs)
    with pytest.raises(WorkerGone):
        core.handle(Reported(wid, task_id, "uploaded"), 5.0)
    assert core.state.jobs == before
    assert core.state.tasks[task_id].state is TaskState.LOST


def test_no_room_in_the_cloud_makes_the_job_wait_without_an_attempt(cores: list[Core]) -> None:
    core = new_core(cores, capacity_backoff=10.0, max_boot_failures=1)
    core.handle(Submitted(job()), 0.0)
    (launch,) = launched(core.handle(Decide(), 0.0))
    step = core.handle(Exited(launch.worker_id, ExitCause.NO_CAPACITY, "no valid host"), 1.0)
    assert codes(step) == ["EV12", "EV8"]
    assert core.state.jobs["j1"].state is JobState.WAITING
    assert launched(core.handle(Decide(), 5.0)) == []  # backing off
    assert core.state.refused["start: backing off after failed boots or no room"] == 1
    assert len(launched(core.handle(Decide(), 11.0))) == 1


def test_failed_boots_back_off_then_fail_the_waiting_jobs(cores: list[Core]) -> None:
    core = new_core(cores, max_boot_failures=2)
    core.handle(Submitted(job()), 0.0)
    (first,) = launched(core.handle(Decide(), 0.0))
    core.handle(Exited(first.worker_id, ExitCause.CRASHED, "exit 1"), 1.0)
    assert core.state.counters.start_blocked_until == 2.0
    (second,) = launched(core.handle(Decide(), 2.0))
    step = core.handle(Exited(second.worker_id, ExitCause.CRASHED, "exit 1"), 3.0)
    assert codes(step)[-1] == "EV13"
    assert "no worker could start (2 tries in a row)" in (core.state.jobs["j1"].error or "")


def test_liveness_loses_a_silent_worker_and_requeues_its_job(cores: list[Core]) -> None:
    core = new_core(cores, heartbeat_timeout=30.0, boot_timeout=20.0)
    core.handle(Submitted(job()), 0.0)
    core.handle(Submitted(job(2)), 0.0)
    a, b = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(a.worker_id, "n1", 2, 4.0), 5.0)
    core.handle(Decide(), 5.0)
    step = core.handle(Tick(decide=False), 21.0)  # b never registered
    assert codes(step) == ["EV12", "EV8"] and Halt(b.worker_id) in step.actions
    step = core.handle(Tick(decide=False), 40.0)  # a silent since 5 s
    assert codes(step) == ["EV12", "EV8", "EV14"]
    j = core.state.jobs["j1"]
    assert (j.state, j.attempts, len(j.errors)) == (JobState.WAITING, 1, 1)


def test_a_split_job_retries_one_chunk_then_merges_and_deletes_its_chunks(
    cores: list[Core],
) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=3)
    core.handle(Submitted(job(splittable=True)), 0.0)
    policy.answers = [
        Decisions(split=(Split("j1", 2),)),
        Decisions(start=(StartWorker("small"), StartWorker("small"))),
    ]
    step = core.handle(Decide(), 0.0)
    a, b = launched(step)
    assert codes(step) == ["EV15", "EV2", "EV2"]
    assert [v.id for v in policy.seen[1].waiting] == ["j1#1", "j1#2"]
    for w in (a, b):
        core.handle(Registered(w.worker_id, "n1", 2, 4.0), 1.0)
    policy.answers = [Decisions(assign=(Assign("j1#1", a.worker_id), Assign("j1#2", b.worker_id)))]
    core.handle(Decide(), 1.0)
    view = core.state.view(1.0)
    assert {w.job_work for w in view.busy} == {10.0 * 6.7 / 2}  # a chunk's share of the work
    run_task(core, b.worker_id, 2.0)
    task_a = core.state.workers[a.worker_id].task_id or ""
    core.handle(Failed(a.worker_id, task_a, "storage", "upload refused"), 3.0)
    assert list(core.state.waiting) == ["j1#1"]  # that chunk alone
    policy.answers = [Decisions(assign=(Assign("j1#1", a.worker_id),))]
    core.handle(Decide(), 4.0)
    run_task(core, a.worker_id, 5.0)
    assert list(core.state.waiting) == [part_id("j1", "merge", 0)]
    policy.answers = [Decisions(assign=(Assign("j1#merge", b.worker_id),))]
    core.handle(Decide(), 9.0)
    done = run_task(core, b.worker_id, 10.0)
    assert Delete(("_chunk-j1-1.mp4", "_chunk-j1-2.mp4")) in done.actions
    j = core.state.jobs["j1"]
    assert (j.state, sorted(j.chunks_done)) == (JobState.COMPLETED, [1, 2])
    assert codes(done) == ["EV7"]


def test_refused_decisions_are_counted_and_change_nothing(cores: list[Core]) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=1)
    core.handle(Submitted(job()), 0.0)
    policy.answers = [
        Decisions(
            start=(StartWorker("huge"), StartWorker("small"), StartWorker("small", node="n9")),
            stop=(StopWorker("nobody"),),
            assign=(Assign("j9", "nobody"),),
            split=(Split("j1", 2),),  # no frame count known
        )
    ]
    step = core.handle(Decide(), 0.0)
    assert len(launched(step)) == 1
    assert set(core.state.refused) == {
        "start: unknown flavor",
        "start: max_workers reached",
        "stop: worker busy, stopped or unknown",
        "assign: job not waiting",
        "split: frame rate and frame count unknown, or too few frames",
    }
    assert core.state.jobs["j1"].state is JobState.WAITING


def test_recovery_stops_the_old_workers_and_requeues_without_an_attempt(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    core.handle(Submitted(job(2)), 0.0)
    a, _ = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(a.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)
    st = core.state
    saved = copy.deepcopy(
        (list(st.jobs.values()), list(st.workers.values()), list(st.tasks.values()))
    )
    again = new_core(cores)
    step = again.handle(Recover(*(tuple(x) for x in saved)), 100.0)
    assert codes(step).count("EV8") == 2 and codes(step).count("EV14") == 1
    assert {j.state for j in again.state.jobs.values()} == {JobState.WAITING}
    assert again.state.jobs["j1"].attempts == 0 and not again.state.alive
    assert again.state.counters.workers == 2
    assert a.worker_id in {x.worker_id for x in step.actions if isinstance(x, Halt)}


def test_shutdown_stops_every_worker_without_charging_the_jobs(cores: list[Core]) -> None:
    core = new_core(cores)
    core.handle(Submitted(job()), 0.0)
    (a,) = launched(core.handle(Decide(), 0.0))
    core.handle(Registered(a.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)
    step = core.handle(Shutdown("controller shutting down"), 2.0)
    assert codes(step) == ["EV8", "EV14"]
    assert core.state.jobs["j1"].attempts == 0 and not core.state.alive
