"""The changes journal: each step's job and worker state changes, stored with it (a seq
each), replayed from the ring or the store, filtered by job, resumed after a restart."""

from __future__ import annotations

import asyncio
import json

import pytest

from dacirco.controller.store import Store
from dacirco.core.errors import NotStored
from tests.unit.conftest import Make


async def collect(controller, after: int | None, job: str | None = None) -> list:  # type: ignore[no-untyped-def]
    """Every change after ``after`` until the stream falls silent."""
    out = []
    async for item in controller.changes(after, job, keepalive=0.05):
        if item is None:
            return out
        out.append(item)
    return out


async def test_a_jobs_life_is_a_sequence_of_changes_with_growing_seqs(make: Make) -> None:
    h = make()
    job, worker, task = await h.assigned()
    await h.finish(worker, task)
    items = await collect(h.controller, 0)
    seqs = [seq for seq, _, _ in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    jobs = [(d["state"], d["previous"]) for _, kind, d in items if kind == "job"]
    assert jobs == [("Waiting", None), ("Started", "Waiting"), ("Completed", "Started")]
    states = [d["state"] for _, kind, d in items if kind == "worker"]
    assert states == ["Booting", "Idle", "Busy", "Idle"]
    done = items[[d["state"] for _, _, d in items].index("Completed")][2]
    assert done["job"]["output"] and done["job"]["id"] == job.id and done["seq"] > 0
    assert done["detail"] == f"done by {worker.id}"
    # Only that job's own changes.
    assert [k for _, k, _ in await collect(h.controller, 0, job.id)] == ["job"] * 3


async def test_changes_resume_after_a_restart_from_the_store(make: Make) -> None:
    h = make()
    await h.submit()
    second = await h.submit()
    first_items = await collect(h.controller, 0)
    mark = first_items[0][0]  # the client saw the first event only
    await h.controller.cancel(second.id)
    h.crash()
    again = make(db=h.db, clock=h.clock)
    await again.controller.recover()
    assert again.controller.hub.last >= first_items[-1][0]
    resumed = await collect(again.controller, mark)
    assert [d["state"] for _, _, d in resumed][:2] == ["Waiting", "Canceled"]
    assert resumed[0][0] == first_items[1][0]  # nothing skipped, nothing repeated
    assert all(seq > mark for seq, _, _ in resumed)


async def test_a_stream_from_now_gets_only_new_changes_then_ends_at_shutdown(make: Make) -> None:
    h = make()
    await h.submit()
    got: list = []

    async def listen() -> None:
        async for item in h.controller.changes(None, None, keepalive=30):
            got.append(item)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0)
    job = await h.submit()
    while not got:
        await asyncio.sleep(0.01)
    assert got[0][2]["id"] == job.id and got[0][2]["state"] == "Waiting"
    h.controller.drain()
    await asyncio.wait_for(listener, 5)


async def test_a_refused_step_stores_and_publishes_no_change(make: Make) -> None:
    h = make()
    await h.submit()
    before = h.controller.hub.last
    store: Store = h.controller.store
    store.close()  # every write now fails
    with pytest.raises(NotStored):
        await h.submit()
    assert h.controller.hub.last == before
    h.crashed = True


async def test_a_callback_on_a_private_address_is_refused_a_public_one_stored_with_its_changes(
    make: Make,
) -> None:
    import sqlite3

    from dacirco.core.errors import InvalidRequest
    from dacirco.domain import Codec, Speed

    h = make()
    c = h.controller
    for url in ("http://10.1.2.3/hook", "http://[::1]:8080/", "ftp://example.com/x"):
        with pytest.raises(InvalidRequest, match=r"^callback_url: "):
            await c.submit("bbb_1.mp4", 1000, Speed.FAST, Codec.H264, callback_url=url)
    assert not c.jobs  # nothing stored
    c.webhook = "https://hooks.example.com/all"
    job = await c.submit(
        "bbb_1.mp4", 1000, Speed.FAST, Codec.H264, callback_url="https://example.com/hook"
    )
    await c.cancel(job.id)
    with sqlite3.connect(h.db) as db:
        rows = db.execute("SELECT event_id, url, body FROM webhook_deliveries").fetchall()
    assert sorted((url, json.loads(body)["type"]) for _, url, body in rows) == [
        ("https://example.com/hook", "job.canceled"),
        ("https://example.com/hook", "job.waiting"),
        ("https://hooks.example.com/all", "job.canceled"),
        ("https://hooks.example.com/all", "job.waiting"),
    ]
