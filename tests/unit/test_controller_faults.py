"""The controller when things go wrong: failed boots, reports racing a stop, a movie removed
after submission, the order of the event log under those races, a crash between two writes,
and placement kept through registration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dacirco.controller.errors import WorkerGone
from dacirco.controller.store import Store
from dacirco.domain import FLAVORS, Job, JobState, Speed, Task, TaskState, Worker, WorkerState
from dacirco.protocol import TaskReport
from dacirco.storage.base import input_key
from tests.unit.conftest import T0, Make


async def test_failed_boots_back_off_then_fail_the_waiting_jobs(make: Make) -> None:
    h = make(max_boot_failures=3)
    job = await h.submit()
    delays = []
    for _ in range(3):
        await h.controller.reconcile()
        spec = h.runtime.specs[-1]
        await h.runtime.crash(spec.worker_id)
        before = len(h.runtime.specs)
        await h.controller.reconcile()
        assert len(h.runtime.specs) == before, "no restart during the backoff"
        waited = 0
        while len(h.runtime.specs) == before and job.state == JobState.WAITING and waited < 10:
            h.clock.advance(1)
            waited += 1
            await h.controller.reconcile()
        delays.append(waited)
    assert delays[:2] == [1, 2]  # 1 s, then 2 s, ...
    assert job.state == JobState.ERROR
    assert "no worker could start (3 tries in a row)" in job.error
    assert "exited with code 137" in job.error
    assert h.events("EV13")[0]["request_id"] == job.id
    assert len(h.events("EV2")) == 3


async def test_a_registration_resets_the_boot_failure_count(make: Make) -> None:
    h = make(max_boot_failures=2)
    await h.submit()
    await h.controller.reconcile()
    await h.runtime.crash(h.runtime.specs[-1].worker_id)
    h.clock.advance(1)
    await h.controller.reconcile()
    await h.register(h.runtime.specs[-1])
    assert h.controller.boot_failures == 0
    job2 = await h.submit()
    await h.controller.reconcile()
    assert job2.state == JobState.WAITING or job2.state == JobState.STARTED
    assert not h.events("EV13")


async def test_a_report_from_a_stopped_worker_is_refused_and_changes_nothing(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    await h.report(worker, task, "transcoded")
    await h.runtime.crash(worker.id)  # lost: job requeued
    with pytest.raises(WorkerGone):
        await h.controller.report(worker, task.task_id, TaskReport(step="uploaded"))
    assert job.state == JobState.WAITING and "EV7" not in h.codes()
    assert h.controller.tasks[task.task_id].state == TaskState.LOST


async def test_an_upload_report_racing_a_stop_keeps_the_log_in_order(make: Make) -> None:
    """The stop and the report interleave at the store's await: the log must still read
    as one consistent story (each event after the state it reports)."""
    h = make()
    job, worker, task = await h.assigned()
    for step in ("started", "downloaded", "transcoded"):
        await h.report(worker, task, step)
    h.upload(task.output_name)
    stop = asyncio.create_task(h.controller.stop_worker(worker, "killed", lost=True))
    await asyncio.sleep(0)
    with pytest.raises(WorkerGone):
        await h.controller.report(worker, task.task_id, TaskReport(step="uploaded"))
    await stop
    codes = h.codes()
    assert codes[-3:] == ["EV12", "EV8", "EV14"]
    assert job.state == JobState.WAITING and worker.state == WorkerState.STOPPED


async def test_a_movie_removed_after_submission_fails_at_once_naming_it(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    h.controller.storage.delete(input_key("bbb_1.mp4"))
    await h.report(
        worker, task, "failed", error_kind="storage", message="download failed: HTTP 404"
    )
    assert job.state == JobState.ERROR and job.attempts == 1
    assert "movie 'bbb_1.mp4' is no longer in the catalog" in job.error
    assert h.events("EV10")[0]["error_message"].startswith("movie 'bbb_1.mp4'")


async def test_a_storage_error_on_a_movie_still_there_is_retried(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.report(worker, task, "failed", error_kind="storage", message="connection reset")
    assert job.state == JobState.WAITING and "EV14" in h.codes()


async def test_while_draining_nothing_is_scheduled_and_exits_are_not_losses(make: Make) -> None:
    h = make()
    job, worker, _ = await h.assigned()
    h.controller.drain()
    await h.submit()
    assert (await h.controller.reconcile()).empty
    await h.runtime.crash(worker.id)
    assert "EV12" not in h.codes()
    assert (job.state, job.attempts) == (JobState.WAITING, 0)


async def test_a_registered_worker_still_counts_on_the_node_it_was_placed_on(make: Make) -> None:
    h = make()
    await h.submit()
    await h.controller.reconcile()
    assert h.controller.snapshot().nodes[0].free_cpus == 8 - 2
    await h.register(h.runtime.specs[0], node="dacirco-worker-001-pod")
    assert h.controller.snapshot().nodes[0].free_cpus == 8 - 2


@pytest.mark.parametrize(
    ("worker_state", "task_state"),
    [
        (WorkerState.STOPPED, TaskState.LOST),  # crash in stop_worker before the job row
        (WorkerState.IDLE, None),  # crash in _apply_assign after the job row only
    ],
)
async def test_recover_requeues_a_started_job_left_without_an_open_task(
    make: Make, fast_tmp: Path, worker_state: WorkerState, task_state: TaskState | None
) -> None:
    db = fast_tmp / "crashed.sqlite"
    store = Store(db)
    job = Job("j1", "bbb_1.mp4", 1000, Speed.FAST, T0, state=JobState.STARTED, attempts=1)
    job.worker_id, job.task_id = "w1", "t1"
    worker = Worker("w1", "dacirco-worker-001", FLAVORS["small"], T0, state=worker_state)
    tasks = () if task_state is None else (Task("t1", "j1", "w1", T0, state=task_state),)
    await store.save(jobs=(job,), workers=(worker,), tasks=tasks)
    store.close()
    h = make(db=db)
    await h.controller.recover()
    assert h.controller.job("j1").state == JobState.WAITING
