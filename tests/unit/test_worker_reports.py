"""A worker's reports are checked against what the controller knows: an upload is believed
once the storage holds it, as big as said and no bigger than the job can make; a failure's
message is cut around a marker, the job's real error kept."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dacirco.controller.worker_link import plausible_size
from dacirco.core.errors import ReportRefused, StorageUnavailable
from dacirco.domain import JobState, TaskState, WorkerState
from dacirco.protocol import MAX_MESSAGE_LENGTH
from dacirco.storage.base import ObjectInfo, StorageError
from dacirco.storage.local import LocalStorage
from tests.unit.conftest import Make


async def _transcoded(h):  # type: ignore[no-untyped-def]
    job, worker, task = await h.assigned()
    for step in ("started", "downloaded", "transcoded"):
        await h.report(worker, task, step)
    return job, worker, task


async def test_an_upload_not_in_the_storage_is_refused_and_the_job_retried(make: Make) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    with pytest.raises(ReportRefused, match=rf"output-videos/{task.output_name} is not in") as e:
        await h.report(worker, task, "uploaded", bytes=1234)
    assert e.value.status == 422
    assert job.state == JobState.STARTED and "EV7" not in h.codes()
    # What the worker does with the refusal: its task fails, as a storage failure.
    await h.report(worker, task, "failed", error_kind="storage", message=str(e.value))
    assert job.state == JobState.WAITING and job.attempts == 1
    assert "is not in the storage" in job.errors[0]
    assert worker.state == WorkerState.IDLE


@pytest.mark.parametrize(
    ("data", "reported", "reason"),
    [
        (b"", 0, "is empty"),
        (b"x" * 100, 200, "holds 100 bytes, not the 200 reported"),
    ],
)
async def test_an_upload_empty_or_not_as_reported_is_refused(
    make: Make, data: bytes, reported: int, reason: str
) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    h.upload(task.output_name, data)
    with pytest.raises(ReportRefused, match=reason):
        await h.report(worker, task, "uploaded", bytes=reported)
    assert job.state == JobState.STARTED


async def test_an_upload_bigger_than_the_job_can_make_is_refused(make: Make) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    most = plausible_size(job)
    assert most is not None  # 10 s at 1000 kbit/s: a few MB
    h.upload(task.output_name, b"x" * (most + 1))
    with pytest.raises(ReportRefused, match=f"more than this job can make .{most} bytes"):
        await h.report(worker, task, "uploaded", bytes=most + 1)
    h.upload(task.output_name, b"x" * most)
    await h.report(worker, task, "uploaded", bytes=most)
    assert job.state == JobState.COMPLETED


async def test_an_upload_as_reported_completes_the_job_and_a_retry_is_acknowledged(
    make: Make,
) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    h.upload(task.output_name, b"y" * 321)
    await h.report(worker, task, "uploaded", bytes=321)
    assert job.state == JobState.COMPLETED
    h.controller.storage.delete(f"output-videos/{task.output_name}")
    await h.report(worker, task, "uploaded", bytes=321)  # a retry: recorded already
    assert h.codes().count("EV7") == 1


class _SlowStat(LocalStorage):
    """A storage whose stat waits for the test to let it answer."""

    answer = threading.Event()

    def stat(self, key: str) -> ObjectInfo | None:
        assert self.answer.wait(5), "the event loop never let the test answer"
        return super().stat(key)


async def test_the_upload_is_looked_at_in_a_thread_not_on_the_event_loop(make: Make) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    h.upload(task.output_name)
    storage = h.controller.storage
    h.controller.storage = _SlowStat(storage.root, storage.base_url, storage.signer)
    _SlowStat.answer.clear()
    report = asyncio.create_task(h.report(worker, task, "uploaded"))
    await asyncio.sleep(0.05)  # the loop runs while the stat waits
    assert not report.done()
    _SlowStat.answer.set()
    await report
    assert job.state == JobState.COMPLETED


class _Unreachable(LocalStorage):
    def stat(self, key: str) -> ObjectInfo | None:
        raise StorageError("connection refused")


async def test_a_storage_that_cannot_be_asked_makes_the_worker_retry(make: Make) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    h.upload(task.output_name)
    storage = h.controller.storage
    h.controller.storage = _Unreachable(storage.root, storage.base_url, storage.signer)
    with pytest.raises(StorageUnavailable, match="connection refused") as e:
        await h.report(worker, task, "uploaded")
    assert e.value.status == 503 and job.state == JobState.STARTED
    h.controller.storage = storage
    await h.report(worker, task, "uploaded")  # the worker's retry
    assert job.state == JobState.COMPLETED


async def test_a_huge_failure_message_is_cut_and_keeps_its_cause_and_outcome(make: Make) -> None:
    h = make()
    job, worker, task = await _transcoded(h)
    message = "CAUSE: moov atom not found; " + "noise " * 1_000_000 + "; OUTCOME: exit 1"
    await h.report(worker, task, "failed", error_kind="transcoding", message=message)
    assert job.state == JobState.ERROR
    assert job.error is not None and len(job.error) < MAX_MESSAGE_LENGTH + 100
    assert "CAUSE: moov atom not found" in job.error and job.error.endswith("OUTCOME: exit 1")
    assert f"cut: {len(message)} characters in all" in job.error
    [ev9] = h.events("EV9")
    assert len(ev9["error_message"]) == MAX_MESSAGE_LENGTH
    assert max(len(line) for line in h.log_path.read_text().splitlines()) < 2 * MAX_MESSAGE_LENGTH
    assert h.controller.tasks[task.task_id].state == TaskState.FAILED
