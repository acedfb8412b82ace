"""Submissions that arrive together share one stored step (a group commit): each is stored
before it returns, and a batch that cannot be stored refuses every submission in it."""

from __future__ import annotations

import asyncio

from dacirco.core.errors import NotStored
from tests.unit.conftest import Make
from tests.unit.test_controller import load
from tests.unit.test_step_failures import disk_full


async def test_submissions_that_arrive_together_are_stored_together(make: Make) -> None:
    """A flood of submissions: each is stored before it returns, and those that arrived
    while a step was being stored share the next transaction (a group commit)."""
    h = make()
    store = h.controller.store
    writes = 0
    write = store.write

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return await write(*args, **kwargs)

    store.write = counted  # type: ignore[method-assign]
    jobs = await asyncio.gather(*(h.submit() for _ in range(50)))
    stored, _, _ = await load(h.db)
    assert sorted(j.id for j in stored) == sorted(j.id for j in jobs)
    assert len({j.id for j in jobs}) == 50
    assert writes < 50 / 2, f"{writes} writes for 50 submissions"
    assert h.codes() == ["EV1"] * 50
    assert h.controller.queued == 50


async def test_a_batch_that_cannot_be_stored_refuses_every_submission_in_it(make: Make) -> None:
    h = make()
    with disk_full(h.controller.events):
        results = await asyncio.gather(*(h.submit() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, NotStored) for r in results), results
    assert h.controller.jobs == {} and h.controller.queued == 0
    assert (await load(h.db))[0] == []
    job = await h.submit()
    assert [j.id for j in (await load(h.db))[0]] == [job.id]
