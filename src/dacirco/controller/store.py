"""SQLite (WAL) persistence of jobs, workers and tasks, so an accepted job survives a restart.

Every write runs on one dedicated thread (SQLite connections are per thread), so the
controller's event loop never waits on the disk; callers ``await`` the write before answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dacirco.controller.changes import Change
from dacirco.controller.events import EventLog
from dacirco.domain import (
    Codec,
    Flavor,
    Job,
    JobState,
    Speed,
    Task,
    TaskState,
    Transition,
    Worker,
    WorkerState,
)
from dacirco.webhooks import OUTBOX_SCHEMA, enqueue

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    job_id TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    kind TEXT NOT NULL, entity TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_entity ON changes (entity, seq);
"""


def _dump(obj: Any) -> str:
    return json.dumps(asdict(obj), default=str)


def job_from(data: dict[str, Any]) -> Job:
    data["speed"] = Speed(data["speed"])
    data["codec"] = Codec(data["codec"])
    data["state"] = JobState(data["state"])
    data["history"] = [Transition(**t) for t in data.get("history", [])]
    return Job(**data)


def worker_from(data: dict[str, Any]) -> Worker:
    data["flavor"] = Flavor(**data["flavor"])
    data["state"] = WorkerState(data["state"])
    data["history"] = [Transition(**t) for t in data.get("history", [])]
    return Worker(**data)


def task_from(data: dict[str, Any]) -> Task:
    data["state"] = TaskState(data["state"])
    return Task(**data)


@dataclass(frozen=True)
class Rows:
    """Entities serialised for one transaction."""

    jobs: list[tuple[str, str, str]]
    workers: list[tuple[str, str, str]]
    tasks: list[tuple[str, str, str, str]]

    @classmethod
    def of(
        cls, jobs: Iterable[Job] = (), workers: Iterable[Worker] = (), tasks: Iterable[Task] = ()
    ) -> Rows:
        return cls(
            [(j.id, j.state.value, _dump(j)) for j in jobs],
            [(w.id, w.state.value, _dump(w)) for w in workers],
            [(t.id, t.job_id, t.state.value, _dump(t)) for t in tasks],
        )


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dacirco-store")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        conn.executescript(OUTBOX_SCHEMA)
        self._conn = conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is closed")
        return self._conn

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # Writes: rows are serialised in the caller (a consistent copy), written on the thread.
    def _write(
        self,
        rows: Rows,
        lines: list[str] | None = None,
        log: EventLog | None = None,
        changes: list[Change] | None = None,
    ) -> list[int]:
        """One transaction; the event log's lines are written before its COMMIT and cut
        back if the COMMIT fails, so that both hold the step or neither does. Returns the
        seq of each change."""
        db = self._db()
        db.execute("BEGIN")
        logged: int | None = None
        seqs: list[int] = []
        try:
            for change in changes or ():
                cur = db.execute(
                    "INSERT INTO changes (at, kind, entity, data) VALUES (?, ?, ?, ?)",
                    (change.at, change.kind, change.id, json.dumps(change.record, default=str)),
                )
                seq = int(cur.lastrowid or 0)
                seqs.append(seq)
                if change.urls:  # its webhooks, stored with it: delivered at least once
                    body = json.dumps(change.webhook(seq), default=str)
                    enqueue(db, ((str(seq), url, body, change.at) for url in change.urls))
            for table, table_rows in (("jobs", rows.jobs), ("workers", rows.workers)):
                db.executemany(
                    f"INSERT INTO {table} (id, state, data) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                    table_rows,
                )
            db.executemany(
                "INSERT INTO tasks (id, job_id, state, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                rows.tasks,
            )
            if log is not None and lines:
                logged = log.write_lines(lines)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if log is not None and logged is not None:
                log.cut_back(logged)
            raise
        return seqs

    async def write(
        self,
        rows: Rows,
        lines: list[str],
        log: EventLog,
        changes: list[Change] | None = None,
    ) -> list[int]:
        """A step: its rows, its event lines and its changes, all of them or none; the
        changes' seqs."""
        return await self._run(self._write, rows, lines, log, changes)

    def _changes_after(
        self, after: int, entity: str | None, limit: int
    ) -> list[tuple[int, str, str]]:
        sql = "SELECT seq, kind, data FROM changes WHERE seq > ?"
        args: list[Any] = [after]
        if entity is not None:
            sql += " AND entity = ? AND kind = 'job'"
            args.append(entity)
        cur = self._db().execute(f"{sql} ORDER BY seq LIMIT ?", (*args, limit))
        return [(int(seq), kind, data) for seq, kind, data in cur.fetchall()]

    async def changes_after(
        self, after: int, entity: str | None = None, limit: int = 1000
    ) -> list[tuple[int, str, str]]:
        """Stored changes after ``after`` (of job ``entity`` only): (seq, kind, JSON data)."""
        return await self._run(self._changes_after, after, entity, limit)

    def _last_change(self) -> int:
        row = self._db().execute("SELECT MAX(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    async def last_change(self) -> int:
        return await self._run(self._last_change)

    async def save(
        self,
        *,
        jobs: tuple[Job, ...] = (),
        workers: tuple[Worker, ...] = (),
        tasks: tuple[Task, ...] = (),
    ) -> None:
        """Write these entities in one transaction: all of them or none."""
        if not (jobs or workers or tasks):
            return
        await self._run(self._write, Rows.of(jobs, workers, tasks))

    def _load(self, table: str) -> list[dict[str, Any]]:
        cur = self._db().execute(f"SELECT data FROM {table} ORDER BY seq")
        return [json.loads(row[0]) for row in cur.fetchall()]

    async def load(self) -> tuple[list[Job], list[Worker], list[Task]]:
        """Everything, in insertion order."""
        jobs = [job_from(d) for d in await self._run(self._load, "jobs")]
        workers = [worker_from(d) for d in await self._run(self._load, "workers")]
        tasks = [task_from(d) for d in await self._run(self._load, "tasks")]
        return jobs, workers, tasks

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
