"""The store against a careless operator and a damaged disk: a row it cannot read, a file that
is not a database, a database locked by another program; and what it promises to keep."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dacirco.api.app import create_controller_app
from dacirco.controller.store import BUSY_TIMEOUT, Store, StoreUnavailable
from dacirco.domain import Job, Speed, Task
from tests.unit.api_stub import client
from tests.unit.conftest import Make

T0 = 1_700_000_000.0
GOOD = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "ultrafast"}


def raw(path: Path, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_an_unreadable_row_is_set_aside_said_in_one_line_and_the_rest_loads(
    fast_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = fast_tmp / "dacirco.sqlite3"
    store = Store(path)
    jobs = [Job(f"j{i}", "bbb_1.mp4", 1000, Speed.FAST, T0 + i) for i in range(3)]
    tasks = [Task("t1", "j1", "w1", T0), Task("t2", "j2", "w1", T0)]
    await store.save(jobs=tuple(jobs), tasks=tuple(tasks))
    store.close()
    raw(path, 'UPDATE jobs SET data = \'{"id": "j1", "speed": "warp"\' WHERE id = \'j1\'')
    raw(path, 'UPDATE jobs SET data = \'{"id": "j2", "speed": "turbo"}\' WHERE id = \'j2\'')

    again = Store(path)
    try:
        loaded, _, kept_tasks = await again.load()
    finally:
        again.close()
    assert [j.id for j in loaded] == ["j0"]  # the others are not lost: set aside
    assert kept_tasks == []  # the tasks of jobs set aside go with them
    aside = raw(path, "SELECT source, reason FROM set_aside ORDER BY seq")
    assert [source for source, _ in aside] == ["jobs#2", "jobs#3", "tasks#1", "tasks#2"]
    assert "JSONDecodeError" in aside[0][1] and "turbo" in aside[1][1]
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("2 unreadable row(s) of jobs set aside" in line for line in lines)
    # The next start finds nothing more to set aside.
    caplog.clear()
    third = Store(path)
    try:
        assert [j.id for j in (await third.load())[0]] == ["j0"]
    finally:
        third.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_one_started(
    fast_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = fast_tmp / "dacirco.sqlite3"
    path.write_bytes(b"this is not SQLite " * 512)
    store = Store(path)
    try:
        assert await store.load() == ([], [], [])
        await store.save(jobs=(Job("j", "bbb_1.mp4", 1000, Speed.FAST, T0),))
    finally:
        store.close()
    (aside,) = fast_tmp.glob("dacirco.sqlite3.damaged-*")
    assert aside.read_bytes().startswith(b"this is not SQLite")
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "cannot be read" in line and aside.name in line


async def test_a_locked_database_answers_503_with_the_error_body_then_goes_through(
    make: Make,
) -> None:
    h = make()
    app = create_controller_app(h.controller, h.signer)
    locker = sqlite3.connect(h.db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # an operator's shell holding the database
    try:
        async with client(app) as http:
            t0 = time.monotonic()
            resp = await http.post("/jobs", json=GOOD)
            waited = time.monotonic() - t0
            assert resp.status_code == 503 and resp.headers["retry-after"]
            body = resp.json()
            assert "database is locked" in body["message"] and body["detail"]
            assert BUSY_TIMEOUT - 0.5 <= waited < BUSY_TIMEOUT + 3
            assert h.controller.jobs == {}  # nothing of it took effect
            locker.execute("ROLLBACK")
            resp = await http.post("/jobs", json=GOOD)
            assert resp.status_code == 201, resp.text
    finally:
        locker.close()
    assert [j.id for j in (await h.controller.store.load())[0]] == [resp.json()]


def test_a_step_is_synced_to_the_disk_before_it_is_answered(fast_tmp: Path) -> None:
    """What survives a power loss, not only a crash: every COMMIT is fsynced (FULL)."""
    store = Store(fast_tmp / "dacirco.sqlite3")
    try:
        pragma = store._executor.submit(
            lambda: store._db().execute("PRAGMA synchronous").fetchone()[0]
        ).result()
        assert pragma == 2  # FULL
    finally:
        store.close()


def test_a_database_locked_at_start_up_is_one_line_and_nothing_is_moved(fast_tmp: Path) -> None:
    path = fast_tmp / "dacirco.sqlite3"
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("CREATE TABLE notes (x)")  # a database the store has to add its tables to
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match=r"is locked .*another program"):
            Store(path)
    finally:
        locker.close()
    assert list(fast_tmp.glob("*.damaged-*")) == []
    Store(path).close()  # once free, it opens


FIXTURE = Path(__file__).parent.parent / "fixtures" / "dacirco-schema0.sqlite3"


async def test_a_database_of_an_older_main_is_migrated_and_read(fast_tmp: Path) -> None:
    """The fixture was written by the store before the schema had a version (user_version 0,
    no set_aside table, jobs without the reuse fields)."""
    import shutil

    from dacirco.controller import archive
    from dacirco.controller.store import SCHEMA_VERSION
    from dacirco.domain import JobState, reuse_key

    path = fast_tmp / "dacirco.sqlite3"
    shutil.copy(FIXTURE, path)
    assert raw(path, "PRAGMA user_version") == [(0,)]
    store = Store(path)
    try:
        jobs, workers, tasks = await store.load()
        summary = await store.run(archive.summary)
        live, _, _ = await store.load(live=True)
    finally:
        store.close()
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    # The finished job's columns were filled from its JSON: a restart reads them alone.
    assert summary.counts == {"Completed": 1, "Waiting": 1}
    ((key, source, output),) = summary.finished.outputs
    assert (source, output) == ("job-done", "bbb_1-1000k-fast-job-done.mp4")
    assert key == reuse_key(jobs[0]) and [e[0] for e in summary.finished.ended] == ["job-done"]
    assert summary.delays == [  # an older job has no "uploaded" timing: no delay then
        t - jobs[0].received_at for t in [jobs[0].timings.get("uploaded")] if t is not None
    ]
    assert [j.id for j in live] == ["job-waiting"]
    done, waiting = jobs
    assert (done.id, done.state, done.output) == (
        "job-done",
        JobState.COMPLETED,
        "bbb_1-1000k-fast-job-done.mp4",
    )
    assert (waiting.priority, waiting.reuse, waiting.reused_from) == (5, True, None)
    assert [w.id for w in workers] == ["w1"] and [t.id for t in tasks] == ["t1"]
    assert raw(path, "SELECT COUNT(*) FROM set_aside") == [(0,)]


def test_a_database_of_a_newer_version_is_refused_untouched(fast_tmp: Path) -> None:
    from dacirco.controller.store import SCHEMA_VERSION

    path = fast_tmp / "dacirco.sqlite3"
    Store(path).close()
    raw(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable, match="written by a newer DaCirco"):
        Store(path)
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert list(fast_tmp.glob("*.damaged-*")) == []
