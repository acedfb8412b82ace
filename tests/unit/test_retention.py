"""Retention: the duration option, the core forgetting what ended before a cutoff (with the
reuse index), the controller's sweep (rows, outputs, stored changes, worker logs, counts)."""

from __future__ import annotations

import copy
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from dacirco.controller.retention import BATCH, delete_logs, give_back, purge_changes, reclaim
from dacirco.controller.store import Store
from dacirco.core.errors import NotFound
from dacirco.core.machine import Core
from dacirco.core.stimuli import Cancel, Expire, Recover, Shutdown, Submitted
from dacirco.domain import Codec, JobState, Speed, WorkerState
from dacirco.durations import parse_duration, show_duration
from tests.unit.conftest import Make
from tests.unit.test_core import job, new_core, run_task
from tests.unit.test_core_control import started_job
from tests.unit.test_core_reuse import same

# ---- the option ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400.0),
        ("12h", 43200.0),
        ("90m", 5400.0),
        ("3600s", 3600.0),
        ("2s", 2.0),
        ("1.5h", 5400.0),
        (" 7D ", 7 * 86400.0),
        ("off", None),
        ("OFF", None),
        ("never", None),
        (None, None),
    ],
)
def test_durations_are_read_with_their_unit(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "", "3x", "d", "-5m", "0s", "1e3s", "10 days", "1h30m"])
def test_a_bad_duration_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|more than 0"):
        parse_duration(text)


def test_durations_are_shown_in_their_largest_whole_unit() -> None:
    assert [show_duration(s) for s in (30 * 86400.0, 5400.0, 7200.0, 2.0, 90.5, None)] == [
        "30d",
        "90m",
        "2h",
        "2s",
        "90.5s",
        "off",
    ]


# ---- the core -----------------------------------------------------------------------------


def retaining(cores: list[Core]) -> Core:
    return new_core(cores, retention=True)


def test_a_job_is_forgotten_once_it_ended_before_the_cutoff(cores: list[Core]) -> None:
    core = retaining(cores)
    wid = started_job(core)
    run_task(core, wid, 3.0)  # uploaded at 6.0
    st = core.state
    assert core.handle(Expire(cutoff=6.0), 7.0).forget is None  # ended at 6.0: not before
    step = core.handle(Expire(cutoff=6.5), 7.0)
    gone = step.forget
    assert gone is not None and [j.id for j in gone.jobs] == ["j1"]
    assert [t.job_id for t in gone.tasks] == ["j1"] and gone.workers == ()
    assert gone.objects == ("bbb_1-1000k-fast-j1.mp4",)
    assert "j1" not in st.jobs and "j1" not in st.job_tasks and not st.tasks
    assert not st.outputs and "j1" not in st.ended_jobs
    assert not step.emits  # a deletion is no event of the run
    assert core.handle(Expire(cutoff=100.0), 7.0).forget is None  # nothing more


def test_a_forgotten_output_is_not_reused_a_later_request_is_transcoded(
    cores: list[Core],
) -> None:
    core = retaining(cores)
    run_task(core, started_job(core), 3.0)
    core.handle(Expire(cutoff=10.0), 10.0)
    step = core.handle(Submitted(same(2, at=11.0)), 11.0)
    assert [e.code for e in step.emits] == ["EV1"]  # no EV19: it waits for a worker
    assert "j2" in core.state.waiting and core.state.jobs["j2"].reused_from is None


def test_a_job_whose_output_served_a_later_one_is_kept_as_long_as_that_one(
    cores: list[Core],
) -> None:
    core = retaining(cores)
    run_task(core, started_job(core), 3.0)  # j1 ends at 6.0
    core.handle(Submitted(same(2, at=20.0)), 20.0)  # served with j1's output at 20.0
    assert core.state.jobs["j2"].reused_from == "j1"
    assert core.handle(Expire(cutoff=15.0), 21.0).forget is None  # j1 is in use until 20
    gone = core.handle(Expire(cutoff=25.0), 26.0).forget
    assert gone is not None and {j.id for j in gone.jobs} == {"j1", "j2"}
    assert gone.objects == ("bbb_1-1000k-fast-j1.mp4",)  # j2 owns no object


def test_jobs_not_ended_are_never_forgotten_and_stopped_workers_are(cores: list[Core]) -> None:
    core = retaining(cores)
    wid = started_job(core)  # j1 started on wid
    core.handle(Submitted(job(2, at=1.0)), 1.0)  # j2 waits
    core.handle(Cancel("j2"), 2.0)
    gone = core.handle(Expire(cutoff=1000.0), 1000.0).forget
    assert gone is not None and [j.id for j in gone.jobs] == ["j2"] and gone.objects == ()
    assert "j1" in core.state.jobs and wid in core.state.workers
    run_task(core, wid, 1001.0)
    core.handle(Shutdown("bye"), 1010.0)
    assert core.state.workers[wid].state is WorkerState.STOPPED
    gone = core.handle(Expire(cutoff=1011.0), 1011.0).forget
    assert gone is not None and [w.id for w in gone.workers] == [wid]
    assert [j.id for j in gone.jobs] == ["j1"] and not core.state.workers


def test_expire_goes_by_batches_oldest_first(cores: list[Core]) -> None:
    core = retaining(cores)
    for n in range(1, 8):
        core.handle(Submitted(job(n, at=float(n))), float(n))
        core.handle(Cancel(f"j{n}"), float(n))
    first = core.handle(Expire(cutoff=100.0, limit=3), 100.0).forget
    second = core.handle(Expire(cutoff=100.0, limit=3), 100.0).forget
    third = core.handle(Expire(cutoff=100.0, limit=3), 100.0).forget
    assert first and second and third
    assert [[j.id for j in f.jobs] for f in (first, second, third)] == [
        ["j1", "j2", "j3"],
        ["j4", "j5", "j6"],
        ["j7"],
    ]


def test_after_a_restart_the_stored_jobs_expire_in_the_order_they_ended(
    cores: list[Core],
) -> None:
    old = retaining(cores)
    run_task(old, started_job(old), 3.0)  # j1 ends at 6.0
    old.handle(Submitted(job(2, at=7.0)), 7.0)
    old.handle(Cancel("j2"), 8.0)
    old.handle(Submitted(same(3, at=30.0)), 30.0)  # reuses j1 at 30: j1 kept until then
    st = old.state
    stored = copy.deepcopy((st.jobs, st.workers, st.tasks))  # as the store holds them
    new = retaining(cores)
    new.handle(Recover(*(tuple(d.values()) for d in stored)), 40.0)
    gone = new.handle(Expire(cutoff=20.0), 41.0).forget
    assert gone is not None and [j.id for j in gone.jobs] == ["j2"]
    gone = new.handle(Expire(cutoff=35.0), 41.0).forget
    assert gone is not None and {j.id for j in gone.jobs} == {"j1", "j3"}


def test_without_retention_nothing_is_tracked(cores: list[Core]) -> None:
    core = new_core(cores)
    run_task(core, started_job(core), 3.0)
    assert not core.state.ended_jobs and core.handle(Expire(cutoff=1e9), 1e9).forget is None


# ---- the controller's sweep -----------------------------------------------------------------


def _rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_a_sweep_deletes_rows_outputs_changes_and_counts_them(make: Make) -> None:
    h = make(retention=60.0)
    c = h.controller
    assert c.retention is not None
    job, worker, task = await h.assigned()
    await h.finish(worker, task)
    output = c.storage.path(f"output-videos/{task.output_name}")  # type: ignore[attr-defined]
    assert output.exists() and c.job(job.id).state is JobState.COMPLETED
    assert (await c.retention.sweep(c)).empty  # ended just now: kept
    h.clock.advance(61)
    await c.stop_worker(worker, "test")  # a worker stopped now: kept for another minute
    swept = await c.retention.sweep(c)
    assert (swept.jobs, swept.tasks, swept.workers, swept.objects) == (1, 1, 0, 1)
    assert swept.bytes == len(b"output") and swept.changes > 0
    assert not output.exists() and _rows(h.db, "jobs") == 0 and _rows(h.db, "tasks") == 0
    with pytest.raises(NotFound, match=r"not found: unknown, or finished more than 1m ago"):
        c.job(job.id)
    assert c.tally.jobs[JobState.COMPLETED.value] == 0
    h.clock.advance(61)
    swept = await c.retention.sweep(c)
    assert swept.workers == 1 and _rows(h.db, "workers") == 0 and not c.workers
    assert c.retention.sweeps == 3 and c.retention.totals.jobs == 1
    assert c.retention.totals.workers == 1
    # The event streams are told: each deleted one is a change from its last state to
    # Deleted (a dashboard drops its row), with no body; the counts are not moved twice.
    gone = [
        (kind, d["id"], d["previous"], "job" in d or "worker" in d)
        async for _, kind, d in _changes(c)
        if d["state"] == "Deleted"
    ]
    assert gone == [("job", job.id, "Completed", False), ("worker", worker.id, "Stopped", False)]
    assert c.tally.jobs[JobState.COMPLETED.value] == 0 and c.tally.workers_in("Stopped") == 0


async def _changes(c):  # type: ignore[no-untyped-def]
    async for item in c.changes(0, None, keepalive=0.05):
        if item is None:
            return
        yield item


async def test_a_deleted_job_goes_to_its_webhooks_as_job_deleted(make: Make) -> None:
    h = make(retention=60.0)
    c = h.controller
    assert c.retention is not None
    job = await c.submit(
        "bbb_1.mp4", 1000, Speed.FAST, Codec.H264, callback_url="https://example.com/hook"
    )
    await c.cancel(job.id)
    h.clock.advance(61)
    await c.retention.sweep(c)
    with sqlite3.connect(h.db) as db:
        rows = db.execute("SELECT url, body FROM webhook_deliveries").fetchall()
    bodies = [json.loads(body) for url, body in rows if url == "https://example.com/hook"]
    assert [b["type"] for b in bodies] == ["job.waiting", "job.canceled", "job.deleted"]
    last = bodies[-1]
    assert (last["id"], last["previous"], last["state"]) == (job.id, "Canceled", "Deleted")
    assert "retention" in last["detail"] and last["event_id"] == str(last["seq"])


async def test_a_restart_after_a_sweep_loads_what_is_left(make: Make) -> None:
    h = make(retention=60.0)
    c = h.controller
    assert c.retention is not None
    old = await h.submit()
    await c.cancel(old.id)
    h.clock.advance(61)
    new = await h.submit()
    await c.retention.sweep(c)
    assert list(c.jobs) == [new.id]
    await c.close()
    again = make(retention=60.0, db=h.db, clock=h.clock)
    await again.controller.recover()
    assert list(again.controller.jobs) == [new.id]
    assert _rows(h.db, "set_aside") == 0


def test_stored_changes_are_deleted_oldest_first_by_batches(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    db.execute("CREATE TABLE changes (seq INTEGER PRIMARY KEY, at REAL, kind, entity, data)")
    db.executemany(
        "INSERT INTO changes (at, kind, entity, data) VALUES (?, 'job', 'j', '{}')",
        [(float(t),) for t in range(10)],
    )
    assert purge_changes(db, cutoff=7.0, batch=4) == 4
    assert purge_changes(db, cutoff=7.0, batch=4) == 3
    assert purge_changes(db, cutoff=7.0, batch=4) == 0
    assert [r[0] for r in db.execute("SELECT at FROM changes")] == [7.0, 8.0, 9.0]


def test_old_worker_logs_go_but_those_of_live_workers(tmp_path: Path) -> None:
    old = time.time() - 3600
    for name in ("dacirco-worker-001.log", "dacirco-worker-001.log.1", "dacirco-worker-002.log"):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "dacirco-worker-003.log").write_text("recent")
    assert delete_logs(tmp_path, time.time() - 60, {"dacirco-worker-002"}) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dacirco-worker-002.log",
        "dacirco-worker-003.log",
    ]


def test_the_batch_is_a_few_hundred() -> None:
    assert 100 <= BATCH <= 5000


def _fill_and_empty(db: sqlite3.Connection, rows: int) -> None:
    db.executemany(
        "INSERT INTO changes (at, kind, entity, data) VALUES (?, 'job', 'j', ?)",
        [(float(t), "x" * 2000) for t in range(rows)],
    )
    assert purge_changes(db, cutoff=float(rows), batch=rows) == rows


def _pragma(db: sqlite3.Connection, name: str) -> int:
    return int(db.execute(f"PRAGMA {name}").fetchone()[0])


def _given_back(db: sqlite3.Connection) -> dict[str, object]:
    _fill_and_empty(db, 3000)  # about 6 MB of rows, deleted
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seen: dict[str, object] = {"pages": _pragma(db, "page_count")}
    seen["free"] = _pragma(db, "freelist_count")
    seen["first"] = reclaim(db, batch=500)  # a batch at a time: others write in between
    given, more = seen["first"]  # type: ignore[misc]
    while more:
        freed, more = reclaim(db, batch=500)
        given += freed
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    seen.update(given=given, free_after=_pragma(db, "freelist_count"))
    seen.update(pages_after=_pragma(db, "page_count"), again=reclaim(db))
    seen["page_size"] = _pragma(db, "page_size")
    return seen


async def test_the_database_gives_the_pages_retention_freed_back_to_the_disk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dacirco.sqlite"
    store = Store(path)  # a new database: made with incremental vacuum
    seen = await store.run(_given_back)
    store.close()
    assert seen["free"] > 1000  # type: ignore[operator]
    assert seen["first"] == (500 * seen["page_size"], True)  # type: ignore[operator]
    assert seen["free_after"] == 0 and seen["again"] == (0, False)  # nothing left to give
    assert seen["pages_after"] < seen["pages"] - 1000  # type: ignore[operator]
    assert seen["given"] > 5_000_000 and path.stat().st_size < 1_000_000  # type: ignore[operator]


async def test_an_older_database_keeps_reusing_its_free_pages(tmp_path: Path) -> None:
    path = tmp_path / "dacirco.sqlite"
    with sqlite3.connect(path) as old:  # made before auto_vacuum was set
        old.execute("CREATE TABLE early (x)")
    store = Store(path)

    def emptied(db: sqlite3.Connection) -> tuple[int, tuple[int, bool]]:
        _fill_and_empty(db, 1000)
        return _pragma(db, "freelist_count"), reclaim(db)

    free, reclaimed = await store.run(emptied)
    store.close()
    assert free > 100 and reclaimed == (0, False)


async def test_a_database_held_by_another_program_gives_back_next_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dacirco.sqlite3"
    store = Store(path)
    await store.run(lambda db: _fill_and_empty(db, 1000))
    controller = SimpleNamespace(closed=False, store=store)  # what give_back reads of one
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program writing
    with caplog.at_level(logging.WARNING, "dacirco.controller.retention"):
        assert await give_back(controller) == 0  # type: ignore[arg-type]
    assert "could not give the database's free pages back: database is locked" in caplog.text
    other.execute("ROLLBACK")
    other.close()
    assert await give_back(controller) > 1_000_000  # type: ignore[arg-type]
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size == 0  # what the vacuum wrote through the log: emptied too
    assert await store.run(lambda db: _pragma(db, "freelist_count")) == 0
    store.close()
