"""SQLite (WAL) persistence of jobs, workers and tasks, so an accepted job survives a restart.

Every write runs on one dedicated thread (SQLite connections are per thread), so the
controller's event loop never waits on the disk; callers ``await`` the write before answering.

Durability: ``synchronous=FULL``, so a step answered to its caller is on the disk (fsync at
every COMMIT) and survives a power loss, not only a crash of the process. A database locked
by another program makes a step wait ``BUSY_TIMEOUT`` seconds at most, then fail as not
stored (503 with ``Retry-After``). At start-up, a row that cannot be read is moved to the
``set_aside`` table (and said in one line); a file that is not a database is renamed aside
and a new one started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from dacirco.controller import done
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

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT = 2.0  # seconds a step waits for a lock held by another program
# The layout of the tables (PRAGMA user_version). 0: before it was recorded; 1: + set_aside;
# 2: + the finished jobs' columns (``done``); 3: + presets (the operators', controller/
# presets.py). A database of an older version is migrated on open; one of a newer version is
# refused.
SCHEMA_VERSION = 3
_FINAL = done.FINAL
_JOB_COLUMNS = ("id", "state", "data", *done.NAMES)
_UPSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({', '.join('?' * len(_JOB_COLUMNS))}) "
    "ON CONFLICT(id) DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in _JOB_COLUMNS[1:])
)


class StoreUnavailable(OSError):
    """The database cannot be opened now (locked by another program, not writable): said in
    one line at start-up; nothing is moved or lost."""


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
CREATE TABLE IF NOT EXISTS presets (
    name TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS set_aside (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, source TEXT NOT NULL,
    reason TEXT NOT NULL, data TEXT);
"""


_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, looked up once


def _fields(obj: Any) -> Any:
    """What ``json`` cannot write itself: a dataclass as its fields (as ``asdict`` would,
    without its deep copy), anything else as its text."""
    names = _NAMES.get(type(obj))
    if names is None:
        if not is_dataclass(obj) or isinstance(obj, type):  # (a dataclass's class: its name)
            return str(obj)
        names = _NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: getattr(obj, name) for name in names}


def _dump(obj: Any) -> str:
    return json.dumps(obj, default=_fields)


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
    """Entities serialised for one transaction; ``dropped``: rows to delete, by table."""

    jobs: list[tuple[object, ...]]  # id, state, data, then the ``done`` columns
    workers: list[tuple[str, str, str]]
    tasks: list[tuple[str, str, str, str]]
    dropped: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, jobs: Iterable[Job] = (), workers: Iterable[Worker] = (), tasks: Iterable[Task] = ()
    ) -> Rows:
        return cls(
            [(j.id, j.state.value, _dump(j), *done.values(j)) for j in jobs],
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
        try:
            self._conn = self._connect()
        except StoreUnavailable:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(
                f"database {self.path} cannot be opened: {exc} (is another program using it?)"
            ) from None
        except sqlite3.DatabaseError as exc:
            # Not a database (damaged, or another file): kept for a look, a new one started.
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                src = self.path.with_name(self.path.name + suffix)
                if src.exists():
                    src.rename(aside.with_name(aside.name + suffix))
            log.error("%s cannot be read (%s): moved to %s, starting afresh", self.path, exc, aside)
            self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"database {self.path} was written by a newer DaCirco (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}): run that version, or another data dir"
                )
            if int(conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
                # A new database: pages freed (retention) can be given back to the disk
                # (``retention.reclaim``). Only settable before the first table; an older
                # database keeps reusing its free pages instead.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Every change of layout so far only adds tables and columns: creating what is
            # missing migrates an older database (a later version may add steps here).
            conn.executescript(SCHEMA)
            conn.executescript(OUTBOX_SCHEMA)
            done.migrate(conn)  # schema 2's columns
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if version:
                    log.info(
                        "database %s migrated: schema %d -> %d", self.path, version, SCHEMA_VERSION
                    )
        except BaseException:
            conn.close()
            raise
        return conn

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
            db.executemany(_UPSERT_JOB, rows.jobs)
            db.executemany(
                "INSERT INTO workers (id, state, data) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                rows.workers,
            )
            db.executemany(
                "INSERT INTO tasks (id, job_id, state, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                rows.tasks,
            )
            for table in ("tasks", "jobs", "workers"):
                ids = rows.dropped.get(table, ())
                db.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])
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

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the store's thread, between two steps."""
        return await self._run(lambda: fn(self._db()))

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

    def _load(self, table: str, parse: Any, keep: Any = None, where: str = "1") -> list[Any]:
        """The rows of ``table`` (``where`` holds) that ``parse`` reads (and ``keep``
        accepts); every other one is moved to ``set_aside`` with the reason, in one
        transaction, and said in one line."""
        db = self._db()
        out, bad = [], []
        query = f"SELECT seq, data FROM {table} WHERE {where} ORDER BY seq"
        for seq, data in db.execute(query).fetchall():
            try:
                item = parse(json.loads(data))
                why = keep(item) if keep is not None else None
            except Exception as exc:  # any damage: wrong JSON, fields, types, values
                why = f"{type(exc).__name__}: {exc}"
            if why is None:
                out.append(item)
            else:
                bad.append((seq, data, str(why)[:500]))
        if bad:
            db.execute("BEGIN")
            try:
                db.executemany(
                    "INSERT INTO set_aside (at, source, reason, data) VALUES (?, ?, ?, ?)",
                    [(time.time(), f"{table}#{seq}", why, data) for seq, data, why in bad],
                )
                db.executemany(f"DELETE FROM {table} WHERE seq = ?", [(b[0],) for b in bad])
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            log.error(
                "%d unreadable row(s) of %s set aside (table set_aside of %s): first: %s",
                len(bad),
                table,
                self.path,
                bad[0][2],
            )
        return out

    def _load_all(self, live: bool) -> tuple[list[Job], list[Worker], list[Task]]:
        where = f"state NOT IN {_FINAL}" if live else "1"
        jobs = self._load("jobs", job_from, where=where)
        known = {j.id for j in jobs}
        workers = self._load("workers", worker_from)
        tasks = self._load(
            "tasks",
            task_from,
            lambda t: None if t.job_id in known else "its job is not stored",
            f"job_id IN (SELECT id FROM jobs WHERE {where}) OR job_id NOT IN (SELECT id FROM jobs)",
        )
        return jobs, workers, tasks

    async def load(self, live: bool = False) -> tuple[list[Job], list[Worker], list[Task]]:
        """Every job (``live``: the unfinished ones only, the finished stay on disk, read by
        ``archive`` when asked), every worker, the tasks of those jobs: what is readable, in
        insertion order (see ``_load`` for the rest)."""
        try:
            return await self._run(self._load_all, live)
        except sqlite3.DatabaseError as exc:  # pages damaged under readable ones
            raise StoreUnavailable(f"database {self.path} cannot be read: {exc}") from None

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
