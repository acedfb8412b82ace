"""Split jobs in the real Controller (harness of tests/unit/conftest.py): parts assigned like
jobs, a chunk retried alone, the merge queued after the last chunk, a restart mid-way."""

from __future__ import annotations

from dacirco.domain import Codec, ExitCause, JobState, Speed, TaskState, WorkerState
from dacirco.policies.right_size import RightSize
from dacirco.protocol import TaskReport
from dacirco.runtimes.base import WorkerExit
from tests.unit.conftest import Harness, Make

META = {"duration": "10", "fps": "25", "frames": "250", "width": "640", "height": "360"}


def splitting(h: Harness) -> Harness:
    path = h.db.parent / "movie.bin"
    h.controller.storage.put_file("input-videos/bbb_2.mp4", path, metadata=META)
    h.controller.policy = RightSize(split_work=0.1, max_chunks=2)
    return h


async def run_part(h: Harness, spec) -> None:  # type: ignore[no-untyped-def]
    worker = await h.register(spec)
    await h.controller.reconcile()
    task = await h.poll(worker)
    assert task is not None
    return worker, task


async def test_a_split_job_runs_as_chunks_then_a_merge(make: Make) -> None:
    h = splitting(make())
    c = h.controller
    job = await c.submit("bbb_2.mp4", 1000, Speed.FAST, Codec.H264)
    await c.reconcile()
    assert job.chunks == 2 and job.state == JobState.STARTED
    assert len(h.runtime.specs) == 2  # one worker per chunk
    parts = []
    for spec in h.runtime.specs:
        parts.append(await run_part(h, spec))
    kinds = sorted((t.kind, t.chunk_index) for _, t in parts)
    assert kinds == [("chunk", 1), ("chunk", 2)]
    assert all(t.input_fps == 25 and t.input_frames == 250 for _, t in parts)
    for worker, task in parts:
        grant = await c.upload_url(h.auth(worker.id), task.task_id)
        assert "_chunk-" in grant.url
    for worker, task in parts:
        await h.finish(worker, task)
    assert job.chunks_done == [1, 2] or sorted(job.chunks_done) == [1, 2]
    await c.reconcile()
    merge_worker = next(w for w in c.workers.values() if w.job_id == job.id)
    merge = await h.poll(merge_worker)
    assert merge is not None and merge.kind == "merge" and len(merge.chunk_urls) == 2
    assert "_chunk-" not in (await c.upload_url(h.auth(merge_worker.id), merge.task_id)).url
    await h.finish(merge_worker, merge)
    assert job.state == JobState.COMPLETED and job.output
    codes = h.codes()
    assert codes.count("EV15") == 1 and codes.count("EV16") == 2 and codes.count("EV7") == 1


async def test_a_failed_chunk_is_retried_alone_and_then_fails_the_job(make: Make) -> None:
    h = splitting(make(max_attempts=2))
    c = h.controller
    job = await c.submit("bbb_2.mp4", 1000, Speed.FAST, Codec.H264)
    await c.reconcile()
    (w1, t1), (w2, t2) = [await run_part(h, s) for s in h.runtime.specs]
    await h.finish(w2, t2)  # one chunk done
    failed = TaskReport(step="failed", error_kind="storage", message="upload refused")
    await c.report(h.auth(w1.id), t1.task_id, failed)
    assert job.state == JobState.STARTED and job.chunks_done == [t2.chunk_index]
    await c.reconcile()  # the chunk goes to an idle worker; the other idle one is stopped
    (holder,) = [w for w in c.workers.values() if w.state == WorkerState.BUSY]
    again = await h.poll(holder)
    assert again is not None and again.chunk_index == t1.chunk_index  # only that chunk
    await c.report(h.auth(holder.id), again.task_id, failed)
    assert job.state == JobState.ERROR and "chunk" in (job.error or "")
    assert "EV13" in h.codes()


async def test_a_restart_keeps_the_chunks_already_done(make: Make) -> None:
    h1 = splitting(make())
    c = h1.controller
    job = await c.submit("bbb_2.mp4", 1000, Speed.FAST, Codec.H264)
    await c.reconcile()
    (w1, t1), (w2, t2) = [await run_part(h1, s) for s in h1.runtime.specs]
    await h1.finish(w1, t1)
    await h1.report(w2, t2, "started")
    h1.crash()

    h2 = make(db=h1.db, clock=h1.clock)
    h2.controller.policy = RightSize(split_work=0.1, max_chunks=2)
    await h2.controller.recover()
    await h2.settle()
    c2 = h2.controller
    again = c2.job(job.id)
    assert again.state == JobState.STARTED and again.chunks_done == [t1.chunk_index]
    assert c2.tasks[t2.task_id].state == TaskState.LOST
    view = c2.snapshot()
    assert [(v.part, v.parent_id) for v in view.waiting] == [("chunk", job.id)]
    await c2.reconcile()
    worker = await h2.register(h2.runtime.specs[-1])
    await c2.reconcile()
    task = await h2.poll(worker)
    assert task is not None and task.chunk_index == t2.chunk_index
    await h2.finish(worker, task)
    await c2.reconcile()
    merge = await h2.poll(c2.worker(worker.id))
    assert merge is not None and merge.kind == "merge"
    await h2.finish(c2.worker(worker.id), merge)
    assert c2.job(job.id).state == JobState.COMPLETED


async def test_no_room_found_after_the_start_makes_jobs_wait_not_fail(make: Make) -> None:
    h = make(max_boot_failures=2)
    c = h.controller
    job = await h.submit()
    for _ in range(4):  # far more than max_boot_failures
        await c.reconcile()
        spec = h.runtime.specs[-1]
        await c.on_worker_exit(
            WorkerExit(spec.worker_id, ExitCause.NO_CAPACITY, "pod unschedulable: 0/3 nodes")
        )
        h.clock.advance(c.config.capacity_backoff + 1)
    assert job.state == JobState.WAITING and len(h.runtime.specs) == 4
