"""Output reuse in the core: identical requests served from a completed job's output, attached
to one in progress (coalescing), opted out, and what happens when the leader fails, is
canceled, is overtaken by a higher priority, or a restart comes in between."""

from __future__ import annotations

import copy
import dataclasses

from dacirco.core.machine import Core
from dacirco.core.stimuli import (
    Cancel,
    Decide,
    Failed,
    Recover,
    Registered,
    Released,
    Submitted,
)
from dacirco.domain import Codec, Job, JobState, Speed
from tests.unit.test_core import Scripted, codes, job, launched, new_core, run_task
from tests.unit.test_core_control import started_job


def same(n: int, at: float = 0.0, **changes: object) -> Job:
    """Job ``jn``, identical to ``job(1)`` (the same movie and output) unless changed."""
    changes.setdefault("reuse", True)
    return dataclasses.replace(job(1, at), id=f"j{n}", **changes)  # type: ignore[arg-type]


def finish_first(core: Core) -> str:
    """``j1`` submitted, run on a new worker and completed; the worker's id."""
    wid = started_job(core)
    run_task(core, wid, 3.0)
    assert core.state.jobs["j1"].state is JobState.COMPLETED
    return wid


def test_a_request_identical_to_a_completed_job_gets_its_output_at_once(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    finish_first(core)
    step = core.handle(Submitted(same(2, at=20.0)), 20.0)
    j2 = core.state.jobs["j2"]
    assert codes(step) == ["EV1", "EV19"]
    assert step.emits[1].fields == {
        "request_id": "j2",
        "source": "j1",
        "output": "bbb_1-1000k-fast-j1.mp4",
    }
    assert (j2.state, j2.reused_from, j2.output) == (
        JobState.COMPLETED,
        "j1",
        "bbb_1-1000k-fast-j1.mp4",
    )
    assert (j2.progress, j2.timings["reused"], j2.attempts) == (1.0, 20.0, 0)
    assert "j2" not in core.state.waiting and not core.state.job_tasks.get("j2")


def test_any_difference_in_the_output_or_the_input_makes_a_new_job(cores: list[Core]) -> None:
    core = new_core(cores)
    finish_first(core)
    others = [
        same(2, bitrate=1001),
        same(3, speed=Speed.ULTRAFAST),
        same(4, codec=Codec.HEVC),
        same(5, id_video="bbb_2.mp4"),
        same(6, input_size=12345),  # the movie was replaced in the catalog since
        same(7, reuse=False),  # the client opted out
    ]
    for j in others:
        assert codes(core.handle(Submitted(j), 20.0)) == ["EV1"]
        assert core.state.jobs[j.id].state is JobState.WAITING and j.id in core.state.waiting
        assert core.state.jobs[j.id].reused_from is None


def test_reuse_off_for_the_service_runs_every_request(cores: list[Core]) -> None:
    core = new_core(cores, reuse=False)
    finish_first(core)
    assert codes(core.handle(Submitted(same(2)), 20.0)) == ["EV1"]
    assert "j2" in core.state.waiting and not core.state.outputs


def test_an_identical_request_attaches_to_the_job_in_progress_and_completes_with_it(
    cores: list[Core],
) -> None:
    core = new_core(cores)
    core.handle(Submitted(job(1, reuse=True)), 0.0)
    step = core.handle(Submitted(same(2, at=0.5)), 0.5)
    assert codes(step) == ["EV1", "EV18"] and step.emits[1].fields["source"] == "j1"
    j1, j2 = core.state.jobs["j1"], core.state.jobs["j2"]
    assert (j2.state, j2.reused_from) == (JobState.WAITING, "j1")
    assert list(core.state.waiting) == ["j1"]  # one job's worth of work waits
    (launch,) = launched(core.handle(Decide(), 0.5))  # one worker, not two
    core.handle(Registered(launch.worker_id, "n1", 2, 4.0), 1.0)
    core.handle(Decide(), 1.0)
    assert (j1.state, j2.state) == (JobState.STARTED, JobState.STARTED)  # j2 follows j1
    step = run_task(core, launch.worker_id, 2.0)
    assert codes(step) == ["EV7", "EV19"]
    assert (j2.state, j2.output, j2.timings["reused"]) == (JobState.COMPLETED, j1.output, 5.0)
    assert [t.job_id for t in core.state.tasks.values()] == ["j1"]
    # A third identical request now gets the output at once.
    assert codes(core.handle(Submitted(same(3, at=9.0)), 9.0)) == ["EV1", "EV19"]


def test_followers_fail_with_their_leader_and_say_why(cores: list[Core]) -> None:
    core = new_core(cores)
    wid = started_job(core)
    core.handle(Submitted(same(2, at=2.5)), 2.5)
    task_id = core.state.workers[wid].task_id or ""
    step = core.handle(Failed(wid, task_id, "transcoding", "Invalid data found"), 3.0)
    j2 = core.state.jobs["j2"]
    assert j2.state is JobState.ERROR and "job j1" in (j2.error or "")
    assert "Invalid data found" in (j2.error or "") and j2.timings["failed"] == 3.0
    assert codes(step).count("EV13") == 2
    # Nothing to reuse from a failed job: the next identical request runs.
    core.handle(Submitted(same(3, at=4.0)), 4.0)
    assert "j3" in core.state.waiting


def test_a_canceled_leader_hands_over_to_its_first_follower(cores: list[Core]) -> None:
    core = new_core(cores)
    wid = started_job(core)
    core.handle(Submitted(same(2, at=2.5)), 2.5)
    core.handle(Submitted(same(3, at=2.6)), 2.6)
    step = core.handle(Cancel("j1"), 3.0)
    j2, j3 = core.state.jobs["j2"], core.state.jobs["j3"]
    assert (j2.state, j2.reused_from) == (JobState.WAITING, None)
    assert list(core.state.waiting) == ["j2"]
    assert (j3.state, j3.reused_from) == (JobState.WAITING, "j2")
    assert codes(step) == ["EV17", "EV14", "EV18"]
    assert "was canceled" in step.emits[1].fields["reason"]
    # j2 runs (on the same worker, once it has dropped j1's task) and j3 completes with it.
    core.handle(Released(wid, core.state.workers[wid].task_id or ""), 3.5)
    core.handle(Decide(), 3.5)
    assert core.state.workers[wid].job_id == "j2"
    run_task(core, wid, 4.0)
    assert (j2.state, j3.state, j3.output) == (JobState.COMPLETED, JobState.COMPLETED, j2.output)


def test_a_canceled_follower_leaves_its_leader_alone(cores: list[Core]) -> None:
    core = new_core(cores)
    wid = started_job(core)
    core.handle(Submitted(same(2, at=2.5)), 2.5)
    step = core.handle(Cancel("j2"), 3.0)
    assert codes(step) == ["EV17"] and not step.actions  # the leader's output is not deleted
    assert core.state.jobs["j1"].state is JobState.STARTED and "j1" not in core.state.followers
    assert codes(run_task(core, wid, 4.0)) == ["EV7"]
    assert core.state.jobs["j2"].state is JobState.CANCELED


def test_a_higher_priority_request_takes_the_place_of_a_waiting_leader(cores: list[Core]) -> None:
    core = new_core(cores, Scripted())
    core.handle(Submitted(job(1, reuse=True)), 0.0)
    core.handle(Submitted(same(2, at=1.0)), 1.0)  # attached to j1
    step = core.handle(Submitted(same(3, at=2.0, priority=10)), 2.0)
    assert codes(step) == ["EV1", "EV18", "EV18"]  # j1 and j2 now wait for j3
    assert list(core.state.waiting) == ["j3"]
    assert {core.state.jobs[j].reused_from for j in ("j1", "j2")} == {"j3"}
    # A lower priority attaches, whatever its rank.
    core.handle(Submitted(same(4, at=3.0, priority=-10)), 3.0)
    assert core.state.jobs["j4"].reused_from == "j3"


def test_a_running_leader_keeps_its_place_even_for_a_higher_priority(cores: list[Core]) -> None:
    core = new_core(cores)
    started_job(core)
    core.handle(Submitted(same(2, at=2.5, priority=50)), 2.5)
    j2 = core.state.jobs["j2"]
    assert (j2.reused_from, j2.state) == ("j1", JobState.STARTED)


def test_followers_survive_a_restart_and_wait_again_with_their_leader(cores: list[Core]) -> None:
    core = new_core(cores)
    started_job(core)
    core.handle(Submitted(same(2, at=2.5)), 2.5)
    st = core.state
    stored = (st.jobs, st.workers, st.tasks)  # what the store holds
    again = new_core(cores)
    again.handle(Recover(*(tuple(d.values()) for d in copy.deepcopy(stored))), 10.0)
    j1, j2 = again.state.jobs["j1"], again.state.jobs["j2"]
    assert (j1.state, j2.state, j2.reused_from) == (JobState.WAITING, JobState.WAITING, "j1")
    assert list(again.state.waiting) == ["j1"] and again.state.followers == {"j1": ("j2",)}
    # With reuse turned off since, the follower runs on its own.
    alone = new_core(cores, reuse=False)
    alone.handle(Recover(*(tuple(d.values()) for d in copy.deepcopy(stored))), 10.0)
    assert set(alone.state.waiting) == {"j1", "j2"}
    assert alone.state.jobs["j2"].reused_from is None


# ---- in the controller: stored with the step, shown with the leader's progress, reloaded ----
async def test_the_controller_stores_attached_jobs_and_reloads_them(make) -> None:  # type: ignore[no-untyped-def]

    h = make()
    leader, worker, task = await h.assigned()
    follower = await h.submit(reuse=True)  # identical (the harness' one request)
    assert follower.reused_from == leader.id and follower.state is JobState.STARTED
    await h.report(worker, task, "started")
    await h.report(worker, task, "progress", progress=0.4)
    assert h.controller.job(follower.id).progress == 0.4  # it shows its leader's progress
    h.crash()  # the controller dies with the follower attached

    h2 = make(db=h.db, clock=h.clock)
    await h2.controller.recover()
    c = h2.controller
    j1, j2 = c.job(leader.id), c.job(follower.id)
    assert (j1.state, j2.state, j2.reused_from) == (JobState.WAITING,) * 2 + (leader.id,)
    await c.reconcile()
    worker2 = await h2.register(h2.runtime.specs[-1])
    await c.reconcile()
    task2 = await h2.poll(worker2)
    assert task2 is not None and task2.job_id == leader.id  # one task for both
    await h2.finish(worker2, task2)
    assert (j2.state, j2.output) == (JobState.COMPLETED, j1.output)
    assert [e["request_id"] for e in h2.events("EV19")] == [follower.id]
