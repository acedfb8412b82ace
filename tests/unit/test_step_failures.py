"""A step that cannot be written takes no effect: real write failures at the file layer.

- the event log's file descriptor is pointed at ``/dev/full`` (every write fails with ENOSPC,
  as on a full disk) and back;
- SQLite is capped with ``PRAGMA max_page_count`` (a database that cannot grow).

Each time: the caller gets ``NotStored`` (503 with ``Retry-After`` on the API), memory is
exactly as before the step, SQLite and the event log hold nothing of it; once the disk has
room again, the same call (the worker's retry) goes through.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dacirco.api.app import create_controller_app
from dacirco.controller.core import Controller
from dacirco.controller.events import EventLog
from dacirco.core.errors import NotStored
from dacirco.domain import JobState, TaskState, WorkerState
from tests.unit.api_stub import client
from tests.unit.conftest import Harness, Make

GOOD = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "ultrafast"}


@contextmanager
def disk_full(log: EventLog) -> Iterator[None]:
    """Every write to the event log fails (ENOSPC) until the block ends."""
    fd = log._fd
    assert fd is not None
    saved = os.dup(fd)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(full)


def memory(c: Controller) -> object:
    """Everything the controller holds of jobs, workers and tasks, and its queue."""
    st = c.core.state
    return copy.deepcopy(
        (st.jobs, st.workers, st.tasks, dict(st.waiting), dict(st.used), st.counters)
    )


async def stored(h: Harness) -> tuple[dict, dict, dict]:
    jobs, workers, tasks = await h.controller.store.load()
    return (
        {j.id: j for j in jobs},
        {w.id: w for w in workers},
        {t.id: t for t in tasks},
    )


async def test_a_submission_that_cannot_be_logged_is_refused_and_leaves_nothing(
    make: Make,
) -> None:
    h = make()
    with disk_full(h.controller.events), pytest.raises(NotStored) as refused:
        await h.submit()
    assert refused.value.status == 503 and refused.value.retry_after >= 1
    assert "could not store" in str(refused.value)
    assert h.controller.jobs == {} and h.controller.queued == 0
    assert (await stored(h))[0] == {}  # the SQLite transaction was rolled back too
    assert h.events() == []
    job = await h.submit()  # room again: accepted, as usual
    assert (await stored(h))[0][job.id].state == JobState.WAITING and h.codes() == ["EV1"]


async def test_the_api_answers_503_with_retry_after_and_the_job_is_not_listed(
    make: Make,
) -> None:
    h = make()
    app = create_controller_app(h.controller, None)
    async with client(app) as api:
        with disk_full(h.controller.events):
            refused = await api.post("/jobs", json=GOOD)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert "could not store" in refused.json()["message"]
        assert (await api.get("/jobs")).json()["items"] == []


async def test_an_upload_report_that_cannot_be_stored_is_refused_then_accepted_on_retry(
    make: Make,
) -> None:
    h = make()
    job, worker, task = await h.assigned()
    for step in ("started", "downloaded", "transcoded"):
        await h.report(worker, task, step)
    h.upload(task.output_name)
    before, on_disk, lines = memory(h.controller), await stored(h), h.codes()
    with disk_full(h.controller.events), pytest.raises(NotStored):
        await h.report(worker, task, "uploaded")
    assert memory(h.controller) == before
    assert await stored(h) == on_disk and h.codes() == lines
    assert (job.state, worker.state) == (JobState.STARTED, WorkerState.BUSY)
    await h.report(worker, task, "uploaded")  # the worker's retry
    assert (job.state, worker.state) == (JobState.COMPLETED, WorkerState.IDLE)
    jobs, workers, tasks = await stored(h)
    assert jobs[job.id].state == JobState.COMPLETED and workers[worker.id].state == WorkerState.IDLE
    assert tasks[task.task_id].state == TaskState.DONE and h.codes()[-1] == "EV7"


async def test_a_lost_worker_whose_stop_cannot_be_stored_is_stored_once_the_disk_has_room(
    make: Make,
) -> None:
    h = make()
    job, worker, _ = await h.assigned()
    with disk_full(h.controller.events):
        await h.runtime.crash(worker.id)  # the runtime's report: not lost, only deferred
        assert (job.state, worker.state) == (JobState.STARTED, WorkerState.BUSY)
    for _ in range(100):  # retried in the background
        if worker.state == WorkerState.STOPPED:
            break
        await asyncio.sleep(0.05)
    assert (job.state, worker.state) == (JobState.WAITING, WorkerState.STOPPED)
    jobs, workers, _ = await stored(h)
    assert (
        jobs[job.id].state == JobState.WAITING and workers[worker.id].state == WorkerState.STOPPED
    )
    assert h.codes()[-3:] == ["EV12", "EV8", "EV14"]


async def test_a_database_that_cannot_grow_refuses_steps_without_a_trace(make: Make) -> None:
    h = make(max_queue=0)
    store = h.controller.store

    def cap() -> None:
        db = store._db()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    await store._run(cap)
    accepted, refusals = 0, 0
    for _ in range(40):  # each job row is about 1 KB: the capped pages fill up soon
        before, lines = memory(h.controller), h.codes()
        try:
            await h.submit()
            accepted += 1
        except NotStored as exc:
            refusals += 1
            assert "full" in str(exc)
            assert memory(h.controller) == before and h.codes() == lines
    assert refusals > 0
    jobs, _, _ = await stored(h)
    assert set(jobs) == set(h.controller.jobs) and len(jobs) == accepted
    assert h.codes().count("EV1") == accepted  # the log holds exactly the stored steps
