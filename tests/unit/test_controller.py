"""The real Controller driven step by step through the ``make`` harness (tests/unit/conftest.py):
real Store, EventLog, LocalStorage and policy; a fake runtime and clock. No loop, no processes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from dacirco.controller.errors import InvalidRequest, TaskNotYours, WorkerAuthError
from dacirco.controller.store import Store
from dacirco.domain import (
    FLAVORS,
    Job,
    JobState,
    Task,
    TaskState,
    Worker,
    WorkerState,
    output_name,
)
from tests.unit.conftest import BASE_URL, MAX_IDLE, NODE, Harness, Make


def signed_key(h: Harness, url: str, method: str) -> str:
    """The object key a signed URL grants ``method`` on; fails if the signature is not valid."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL
    key = unquote(parts.path.removeprefix("/files/"))
    query = parse_qs(parts.query)
    expires, sig = int(query["expires"][0]), query["sig"][0]
    task = query.get("task", [None])[0]
    assert h.signer.check(method, key, expires, sig, h.clock(), task) is None
    other = "PUT" if method == "GET" else "GET"
    assert h.signer.check(other, key, expires, sig, h.clock(), task) is not None
    return key


async def load(db: Path) -> tuple[list[Job], list[Worker], list[Task]]:
    store = Store(db)
    try:
        return await store.load()
    finally:
        store.close()


# ---- submission ---------------------------------------------------------------------------
async def test_submit_persists_the_job_before_returning_and_logs_ev1(make: Make) -> None:
    h = make()
    job = await h.submit()
    jobs, _, _ = await load(h.db)  # a fresh Store on the same file
    assert [(j.id, j.state, j.id_video, j.bitrate) for j in jobs] == [
        (job.id, JobState.WAITING, "bbb_1.mp4", 1000)
    ]
    assert (jobs[0].input_duration, jobs[0].input_size) == (10.0, 100)
    (ev,) = h.events()
    assert ev["code"] == "EV1" and ev["description"] == "Request received"
    assert {k: ev[k] for k in ("request_id", "input_video", "bitrate", "speed")} == {
        "request_id": job.id,
        "input_video": "bbb_1.mp4",
        "bitrate": 1000,
        "speed": "ultrafast",
    }


@pytest.mark.parametrize("movie", ["bbb_42.mp4", "../x", "input-videos/bbb_1.mp4", ""])
async def test_a_bad_movie_is_rejected_and_nothing_is_recorded(make: Make, movie: str) -> None:
    h = make()
    with pytest.raises(InvalidRequest, match="id_video: .*" + re.escape(repr(movie))):
        await h.submit(movie)
    assert h.controller.jobs == {}
    assert (await load(h.db))[0] == []
    assert h.events() == []


# ---- the happy path -----------------------------------------------------------------------
async def test_a_job_runs_from_submission_to_completion(make: Make) -> None:
    h = make()
    job = await h.submit()
    await h.controller.reconcile()
    (spec,) = h.runtime.specs
    worker = h.controller.worker(spec.worker_id)
    assert (worker.state, spec.flavor, spec.node) == (WorkerState.BOOTING, FLAVORS["small"], NODE)
    (ev2,) = h.events("EV2")
    assert (ev2["description"], ev2["name"], ev2["worker_id"]) == (
        "Runner created",
        spec.name,
        worker.id,
    )

    h.clock.advance(15)
    await h.register(spec)
    assert (worker.state, worker.registered_at) == (WorkerState.IDLE, h.clock.now)
    (ev11,) = h.events("EV11")
    assert {k: ev11[k] for k in ("name", "worker_id", "node", "cpus", "memory")} == {
        "name": spec.name,
        "worker_id": worker.id,
        "node": NODE,
        "cpus": "2",
        "memory": "4",
    }

    await h.controller.reconcile()
    assert (job.state, worker.state, job.worker_id) == (
        JobState.STARTED,
        WorkerState.BUSY,
        worker.id,
    )
    (ev3,) = h.events("EV3")
    assert (ev3["request_id"], ev3["worker_id"], ev3["task_id"]) == (job.id, worker.id, job.task_id)

    task = await h.poll(worker)
    assert task is not None and task.task_id == job.task_id
    assert (task.threads, task.bitrate_kbps, task.speed, task.codec) == (
        2,
        1000,
        "ultrafast",
        "h264",
    )
    assert task.output_name == output_name(job) and task.input_duration == 10.0
    assert signed_key(h, task.input_url, "GET") == "input-videos/bbb_1.mp4"
    grant = await h.controller.upload_url(h.auth(worker.id), task.task_id)
    assert signed_key(h, grant.url, "PUT") == f"output-videos/{task.output_name}"

    await h.finish(worker, task)
    steps = h.events("EV4", "EV5", "EV6", "EV7")
    assert [e["code"] for e in steps] == ["EV4", "EV5", "EV6", "EV7"]
    assert {(e["request_id"], e["worker_id"], e["task_id"]) for e in steps} == {
        (job.id, worker.id, task.task_id)
    }
    assert (job.state, job.output, job.progress) == (JobState.COMPLETED, task.output_name, 1.0)
    assert (worker.state, worker.idle_since, worker.job_id) == (WorkerState.IDLE, h.clock.now, None)
    saved = {j.id: j for j in (await load(h.db))[0]}
    assert saved[job.id].state == JobState.COMPLETED


async def test_an_assigned_task_is_redelivered_until_the_worker_says_started(make: Make) -> None:
    h = make()
    _, worker, first = await h.assigned()
    again = await h.poll(worker)  # the first answer was lost on the way
    assert again is not None and again.task_id == first.task_id
    await h.report(worker, first, "started")
    assert await h.poll(worker) is None


async def test_repeated_reports_are_acknowledged_and_not_counted_twice(make: Make) -> None:
    h = make()
    _, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    await h.report(worker, task, "started")
    await h.finish(worker, task)
    await h.report(worker, task, "uploaded")
    assert worker.jobs_done == 1
    assert [h.codes().count(c) for c in ("EV4", "EV7")] == [1, 1]


async def test_a_worker_may_report_only_its_own_tasks_with_a_valid_token(make: Make) -> None:
    h = make()
    await h.submit()
    await h.submit()
    await h.controller.reconcile()
    a, b = [await h.register(spec) for spec in h.runtime.specs]
    await h.controller.reconcile()
    task_a = await h.poll(a)
    assert task_a is not None
    with pytest.raises(TaskNotYours):
        await h.report(b, task_a, "started")
    for token in ("not-a-token", "", None):
        with pytest.raises(WorkerAuthError):
            h.controller.authenticate(token)


# ---- failures ----------------------------------------------------------------------------
async def test_a_transcoding_error_fails_the_job_without_retry(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    await h.report(worker, task, "failed", error_kind="transcoding", message="moov atom not found")
    assert job.state == JobState.ERROR and "moov atom not found" in (job.error or "")
    (ev9,) = h.events("EV9")
    assert (ev9["worker_id"], ev9["task_id"]) == (worker.id, task.task_id)
    assert ev9["error_message"] == "moov atom not found"
    assert worker.state == WorkerState.IDLE
    await h.controller.reconcile()
    assert job.state == JobState.ERROR and "EV14" not in h.codes() and len(h.events("EV3")) == 1


async def test_a_storage_error_is_retried_until_max_attempts(make: Make) -> None:
    h = make(max_attempts=3)
    job = await h.submit()
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[0])
    for attempt in (1, 2, 3):
        await h.controller.reconcile()
        task = await h.poll(worker)
        assert task is not None and job.attempts == attempt
        await h.report(worker, task, "failed", error_kind="storage", message=f"S3 down #{attempt}")
        await h.report(worker, task, "failed", error_kind="storage", message="retried report")
        expected = JobState.WAITING if attempt < 3 else JobState.ERROR
        assert job.state == expected
    assert all(f"S3 down #{i}" in (job.error or "") for i in (1, 2, 3))
    assert "retried report" not in (job.error or "")
    assert [h.codes().count(c) for c in ("EV3", "EV10", "EV14", "EV13")] == [3, 3, 2, 1]
    assert len(h.runtime.specs) == 1  # the same worker took each retry


async def test_a_worker_lost_while_busy_gives_its_job_back(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    token = h.token(worker.id)
    await h.runtime.crash(worker.id)
    assert worker.state == WorkerState.STOPPED
    assert h.codes()[-3:] == ["EV12", "EV8", "EV14"]
    assert "137" in h.events("EV12")[0]["reason"]
    assert (job.state, job.attempts, len(job.errors)) == (JobState.WAITING, 1, 1)
    assert h.controller.tasks[task.task_id].state == TaskState.LOST
    with pytest.raises(WorkerAuthError):
        h.controller.authenticate(token)

    await h.controller.reconcile()
    assert len(h.runtime.specs) == 2
    second = await h.register(h.runtime.specs[1])
    await h.controller.reconcile()
    assert (job.state, job.worker_id, job.attempts) == (JobState.STARTED, second.id, 2)


async def test_a_worker_that_never_registers_is_lost_after_boot_timeout(make: Make) -> None:
    h = make(boot_timeout=120.0)
    job = await h.submit()
    await h.controller.reconcile()
    worker = h.controller.worker(h.runtime.specs[0].worker_id)
    h.clock.advance(120)
    await h.controller.check_liveness()
    assert worker.state == WorkerState.BOOTING
    h.clock.advance(1)
    await h.controller.check_liveness()
    await h.settle()
    assert worker.state == WorkerState.STOPPED and h.runtime.stopped == [worker.id]
    assert "register" in h.events("EV12")[0]["reason"] and "EV8" in h.codes()
    assert (job.state, job.attempts) == (JobState.WAITING, 0)
    await h.controller.reconcile()
    assert len(h.runtime.specs) == 1  # a failed boot backs further starts off (1 s first)
    h.clock.advance(1)
    await h.controller.reconcile()
    assert len(h.runtime.specs) == 2


async def test_a_silent_busy_worker_is_lost_after_heartbeat_timeout(make: Make) -> None:
    h = make(heartbeat_timeout=90.0)
    job, worker, task = await h.assigned()
    await h.report(worker, task, "started")
    h.clock.advance(80)
    await h.report(worker, task, "progress", progress=0.5)  # any call is a heartbeat
    h.clock.advance(90)
    await h.controller.check_liveness()
    assert worker.state == WorkerState.BUSY and job.progress == 0.5
    h.clock.advance(1)
    await h.controller.check_liveness()
    assert worker.state == WorkerState.STOPPED and job.state == JobState.WAITING
    assert h.codes()[-3:] == ["EV12", "EV8", "EV14"]


async def test_a_worker_the_runtime_cannot_start_is_dropped_and_the_job_waits(make: Make) -> None:
    h = make()
    job = await h.submit()
    h.runtime.refuse_start = True
    await h.controller.reconcile()
    (worker,) = h.controller.workers.values()
    assert worker.state == WorkerState.STOPPED and "no capacity" in (worker.stop_reason or "")
    assert job.state == JobState.WAITING
    h.runtime.refuse_start = False
    h.clock.advance(1)  # past the backoff that follows a failed start
    await h.controller.reconcile()
    assert len(h.runtime.specs) == 1


# ---- the two naive policies ---------------------------------------------------------------
async def test_grace_period_reuses_an_idle_worker_then_stops_it_after_max_idle_time(
    make: Make,
) -> None:
    h = make("grace-period")
    _, worker, task = await h.assigned()
    await h.finish(worker, task)
    h.clock.advance(30)
    second = await h.submit()
    await h.controller.reconcile()
    assert second.worker_id == worker.id and len(h.runtime.specs) == 1
    task2 = await h.poll(worker)
    assert task2 is not None
    await h.finish(worker, task2)
    h.clock.advance(MAX_IDLE - 1)
    await h.controller.reconcile()
    await h.settle()
    assert worker.state == WorkerState.IDLE and h.runtime.stopped == []
    h.clock.advance(1)
    await h.controller.reconcile()
    await h.settle()
    assert worker.state == WorkerState.STOPPED and h.runtime.stopped == [worker.id]
    assert h.codes()[-1] == "EV8" and "EV12" not in h.codes()


async def test_minimize_workers_stops_a_worker_as_soon_as_its_job_is_done(make: Make) -> None:
    h = make("minimize-workers")
    _, worker, task = await h.assigned()
    await h.controller.reconcile()
    assert worker.state == WorkerState.BUSY
    await h.finish(worker, task)
    await h.controller.reconcile()
    await h.settle()
    assert worker.state == WorkerState.STOPPED and h.runtime.stopped == [worker.id]
    assert h.codes()[-1] == "EV8"


# ---- restart and shutdown -----------------------------------------------------------------
async def test_a_restarted_controller_loses_no_job(make: Make) -> None:
    h1 = make()
    first = await h1.submit()
    h1.clock.advance(1)
    second = await h1.submit()
    await h1.controller.reconcile()
    worker = await h1.register(h1.runtime.specs[0])
    await h1.controller.reconcile()
    task = await h1.poll(worker)
    assert task is not None and first.worker_id == worker.id
    await h1.report(worker, task, "started")
    old = {s.worker_id: s.token for s in h1.runtime.specs}
    h1.crash()

    h2 = make(db=h1.db, clock=h1.clock)
    await h2.controller.recover()
    await h2.settle()
    c = h2.controller
    assert [c.job(first.id).state, c.job(second.id).state] == [JobState.WAITING] * 2
    # A restart is not the job's fault: the attempt it was on is not counted against it.
    assert c.job(first.id).attempts == 0
    assert "restart" in c.job(first.id).history[-1].detail
    assert {w: c.worker(w).state for w in old} == {w: WorkerState.STOPPED for w in old}
    assert sorted(h2.runtime.stopped) == sorted(old)
    assert c.tasks[task.task_id].state == TaskState.LOST
    for token in old.values():
        with pytest.raises(WorkerAuthError):
            c.authenticate(token)
    jobs, workers, _ = await load(h1.db)
    assert {j.state for j in jobs} == {JobState.WAITING}
    assert {w.state for w in workers} == {WorkerState.STOPPED}

    await c.reconcile()
    assert len(h2.runtime.specs) == 2
    newcomer = await h2.register(h2.runtime.specs[0])
    await c.reconcile()
    assert c.job(first.id).worker_id == newcomer.id  # still first in line


async def test_close_stops_every_worker_through_the_runtime(make: Make) -> None:
    h = make()
    await h.submit()
    await h.submit()
    await h.controller.reconcile()
    busy = await h.register(h.runtime.specs[0])
    await h.controller.reconcile()
    assert busy.state == WorkerState.BUSY
    await h.controller.close()
    assert sorted(h.runtime.stopped) == sorted(s.worker_id for s in h.runtime.specs)
    assert h.runtime.closed
    assert {w.state for w in h.controller.workers.values()} == {WorkerState.STOPPED}
    jobs, workers, _ = await load(h.db)
    assert {j.state for j in jobs} == {JobState.WAITING}
    assert {w.state for w in workers} == {WorkerState.STOPPED}
    assert (await h.controller.reconcile()).empty
