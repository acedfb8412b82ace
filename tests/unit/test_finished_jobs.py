"""Finished jobs leave memory (the last ``keep_finished`` stay) and are read from the store when
asked: the API answers for them as before, identical requests still get their outputs, a
cancel still says why not, a restart loads only the unfinished ones, and retention still
deletes them."""

from __future__ import annotations

import pytest

from dacirco.api.backend import LocalBackend
from dacirco.controller.core import Controller
from dacirco.controller.errors import NotFound
from dacirco.core.errors import Conflict
from dacirco.domain import JobState
from tests.unit.conftest import Harness, Make


async def completed(h: Harness, n: int) -> list[str]:
    """``n`` jobs run one after the other on one worker, to completion."""
    ids = []
    job, worker, task = await h.assigned()
    await h.finish(worker, task)
    ids.append(job.id)
    for _ in range(n - 1):
        job = await h.submit()
        await h.controller.reconcile()
        task = await h.poll(worker)
        assert task is not None
        await h.finish(worker, task)
        ids.append(job.id)
    return ids


def in_memory(c: Controller) -> set[str]:
    return set(c.jobs)


async def test_old_finished_jobs_leave_memory_and_are_still_answered_for(make: Make) -> None:
    h = make()
    c = h.controller
    c.keep_finished = 2
    ids = await completed(h, 5)
    assert in_memory(c) == set(ids[-2:])  # the last two finished stay
    assert not any(t.job_id in ids[:3] for t in c.tasks.values())  # their tasks left too
    backend = LocalBackend(c)
    old = await backend.job(ids[0])
    assert (old.state, old.progress) == ("Completed", 1.0) and old.output
    page = await backend.jobs(None, None)
    assert page.items == ids and not page.has_more
    assert (await backend.jobs(2, ids[1])).items == ids[2:4]
    with pytest.raises(Conflict, match="is Completed: its output is ready"):
        await c.cancel(ids[0])
    with pytest.raises(NotFound, match="job 'nope' not found"):
        await c.find_job("nope")
    assert (await c.newest_jobs(0, 3))[0].id == ids[-1]


async def test_an_identical_request_reuses_an_output_that_left_memory(make: Make) -> None:
    h = make()
    c = h.controller
    c.keep_finished = 1
    ids = await completed(h, 3)
    assert ids[0] not in c.jobs
    again = await h.submit(reuse=True)  # the same movie and parameters as every job here
    assert again.state is JobState.COMPLETED
    assert again.reused_from == ids[0]  # the first of them: the index keeps the first
    source, _ = await c.find_job(ids[0])
    assert again.output == source.output is not None


async def test_a_restart_loads_only_the_unfinished_jobs_and_keeps_the_outputs(make: Make) -> None:
    h = make()
    ids = await completed(h, 3)
    waiting = await h.submit()
    h.crash()
    h2 = make(db=h.db, clock=h.clock)
    c = h2.controller
    await c.recover()
    assert set(c.jobs) == {waiting.id}
    assert c.tally.jobs["Completed"] == 3 and c.tally.delay_n == 3
    assert (await c.find_job(ids[1]))[0].state is JobState.COMPLETED
    served = await h2.submit(reuse=True)
    assert served.state is JobState.COMPLETED and served.reused_from == ids[0]
    assert (await LocalBackend(c).jobs(None, None)).items == [*ids, waiting.id, served.id]


async def test_retention_deletes_finished_jobs_that_left_memory(make: Make) -> None:
    h = make(retention=60.0)
    c = h.controller
    c.keep_finished = 1
    ids = await completed(h, 3)
    assert ids[0] not in c.jobs
    h.clock.advance(3600)
    assert c.retention is not None
    swept = await c.retention.sweep(c)
    assert swept.jobs == 3
    for job_id in ids:
        with pytest.raises(NotFound):
            await c.find_job(job_id)
    stored, _, tasks = await c.store.load()
    assert stored == [] and tasks == []
    fresh = await h.submit(reuse=True)  # the outputs went with their jobs: transcoded again
    assert fresh.state is JobState.WAITING
