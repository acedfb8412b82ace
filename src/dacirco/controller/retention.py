"""``--retention``: what ended longer ago than it is deleted, in the background, while the
service goes on.

A sweep runs when the controller starts and then every ``interval`` (a quarter of the
retention, between 1 s and a minute). Each sweep:

1. asks the core to forget the jobs that ended (Completed, Error, Canceled) and the workers
   that stopped before the cutoff, ``BATCH`` at a time: each batch is one ordinary step
   (``Expire``), stored like any other (their rows deleted in its SQLite transaction, on the
   store's thread), so other steps run between two batches (``core/retention.py`` says what
   is kept: a job whose output served a later job stays as long as that one);
2. deletes the objects those jobs owned (their outputs, a failed split job's chunks) in a
   thread, counting the bytes freed;
3. deletes the stored changes (the event streams' backlog) older than the cutoff, in batches
   on the store's thread: a client can still resume from anything within the retention;
4. deletes the worker logs (``<data dir>/logs``) not written since the cutoff, but those of
   live workers;
5. deletes the pieces of the run's samples file (cut by ``--event-log-max-mb``) not written
   since the cutoff, but the one being written.

Each sweep that deleted something says so in one line; the totals are in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from dacirco.analytics.samples import sample_pieces
from dacirco.controller import archive
from dacirco.core import retention as core_retention
from dacirco.core.errors import NotStored
from dacirco.core.stimuli import Expire
from dacirco.durations import show_duration
from dacirco.sampling import SampleFile
from dacirco.storage.base import OUTPUT_PREFIX, Storage, StorageError, folder_of, output_key

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

log = logging.getLogger(__name__)

BATCH = 500  # jobs (and workers) forgotten in one step
CHANGES_BATCH = 5000  # stored changes deleted in one transaction
RECLAIM_BATCH = 2000  # free database pages given back in one transaction (8 MB of 4 KB)


@dataclass
class Swept:
    """What one sweep deleted (or, in ``Retention.totals``, every sweep so far)."""

    jobs: int = 0
    tasks: int = 0
    workers: int = 0
    objects: int = 0
    bytes: int = 0
    changes: int = 0
    logs: int = 0
    samples: int = 0  # pieces of the samples file
    db_bytes: int = 0  # given back to the disk by the database file

    def add(self, other: Swept) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))


class Retention:
    def __init__(self, seconds: float, log_dir: Path | None = None) -> None:
        self.seconds = seconds
        self.log_dir = log_dir  # the workers' logs
        self.interval = min(60.0, max(1.0, seconds / 4))
        self.sweeps = 0
        self.totals = Swept()
        self.last: Swept | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def __str__(self) -> str:
        return show_duration(self.seconds)

    def start(self, controller: Controller) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(controller), name="dacirco-retention")

    async def stop(self) -> None:
        """Let a sweep under way end its batch (the controller is closed), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10.0)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, controller: Controller) -> None:
        while not (controller.closed or self._stopping.is_set()):
            try:
                await self.sweep(controller)
            except NotStored as exc:
                log.warning("retention sweep stopped, tried again later: %s", exc)
            except Exception:
                log.exception("retention sweep failed; tried again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def sweep(self, controller: Controller) -> Swept:
        """Delete what ended before now minus the retention; what was deleted."""
        began = time.monotonic()
        cutoff = controller.clock() - self.seconds
        swept = Swept()
        while not controller.closed:
            gone = (await controller.step(await expire(controller, cutoff))).forget
            if gone is None:
                break
            swept.jobs += len(gone.jobs)
            swept.tasks += len(gone.tasks)
            swept.workers += len(gone.workers)
            if gone.objects:
                count, size = await asyncio.to_thread(
                    delete_objects, controller.storage, gone.objects
                )
                swept.objects += count
                swept.bytes += size
            if len(gone.jobs) < BATCH and len(gone.workers) < BATCH:
                break
        while not controller.closed:  # a transaction a batch: steps run in between
            deleted = await controller.store.run(lambda db: purge_changes(db, cutoff))
            swept.changes += deleted
            if deleted < CHANGES_BATCH:
                break
        swept.db_bytes = await give_back(controller)
        if self.log_dir is not None:
            st = controller.core.state
            live = {st.workers[w].name for w in st.alive} | set(st.alive)
            swept.logs = await asyncio.to_thread(delete_logs, self.log_dir, cutoff, live)
        if controller.usage is not None:
            swept.samples = await asyncio.to_thread(
                delete_sample_pieces, controller.usage.file, cutoff
            )
        self.sweeps += 1
        self.totals.add(swept)
        self.last = swept
        if not swept.empty:
            log.info(
                "retention %s: deleted %d job(s) (%d task(s)), %d worker(s), %d object(s) "
                "(%.1f MB freed), %d stored change(s), %d worker log(s), %d samples piece(s), "
                "%.1f MB of database given back in %.2f s",
                self,
                swept.jobs,
                swept.tasks,
                swept.workers,
                swept.objects,
                swept.bytes / 1e6,
                swept.changes,
                swept.logs,
                swept.samples,
                swept.db_bytes / 1e6,
                time.monotonic() - began,
            )
        return swept


async def expire(controller: Controller, cutoff: float) -> Expire:
    """The next batch's stimulus, with the due jobs memory no longer holds read from the
    store."""
    st = controller.core.state
    missing = [i for i in core_retention.due(st, cutoff, BATCH) if i not in st.jobs]
    found = await controller.store.run(lambda db: archive.jobs(db, missing)) if missing else {}
    return Expire(cutoff, BATCH, {i: found.get(i) for i in missing})


def delete_objects(storage: Storage, names: Iterable[str]) -> tuple[int, int]:
    """Delete these outputs (best effort: one that cannot be deleted now stays); how many
    were there, and their bytes."""
    count = size = 0
    for name in names:
        key = output_key(name)
        try:
            folder = folder_of(name)  # a streaming job's: every file of its folder
            infos = (
                storage.list(OUTPUT_PREFIX + folder, metadata=False)
                if folder
                else [storage.stat(key)]
            )
            if not infos or infos[0] is None:
                continue
            for info in infos:
                storage.delete(info.key)
        except (StorageError, OSError) as exc:
            log.warning("retention could not delete %s: %s", key, exc)
            continue
        count += 1
        size += sum(info.size for info in infos if info is not None)
    return count, size


def purge_changes(db: sqlite3.Connection, cutoff: float, batch: int = CHANGES_BATCH) -> int:
    """Delete up to ``batch`` stored changes older than ``cutoff``, oldest first, in one
    transaction (they are stored in time order: the first one kept ends the search); how
    many (``batch``: there may be more)."""
    rows = db.execute("SELECT seq, at FROM changes ORDER BY seq LIMIT ?", (batch,)).fetchall()
    last = None
    for seq, at in rows:
        if at >= cutoff:
            break
        last = seq
    if last is None:
        return 0
    db.execute("BEGIN")
    try:
        deleted = db.execute("DELETE FROM changes WHERE seq <= ?", (last,)).rowcount
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return deleted


async def give_back(controller: Controller) -> int:
    """The pages the deleted rows left, given back to the disk a batch at a time (steps run
    in between), then the write-ahead log they went through emptied; the bytes. The database
    busy (another program holding it): nothing this time, the next sweep tries again."""
    given = 0
    try:
        while not controller.closed:
            freed, more = await controller.store.run(reclaim)
            given += freed
            if not more:
                break
        if given:
            await controller.store.run(truncate_log)
    except sqlite3.OperationalError as exc:
        log.warning("retention could not give the database's free pages back: %s", exc)
    return given


def truncate_log(db: sqlite3.Connection) -> None:
    """Move the write-ahead log into the database and empty it (the pages a vacuum moved went
    through it: without this the file shrinks but its log keeps their size)."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def reclaim(db: sqlite3.Connection, batch: int = RECLAIM_BATCH) -> tuple[int, bool]:
    """Give up to ``batch`` of the database's free pages back to the disk (the file shrinks),
    in one transaction: (bytes given back, whether free pages are left). Nothing in a
    database made before ``auto_vacuum`` was set (it reuses its free pages instead)."""
    if int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:  # 2: incremental
        return 0, False
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    if free == 0:
        return 0, False
    size = int(db.execute("PRAGMA page_size").fetchone()[0])
    # executescript steps the pragma to its end (``execute`` would free a single page).
    db.executescript(f"PRAGMA incremental_vacuum({min(free, batch):d});")
    left = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return (free - left) * size, 0 < left < free


def delete_logs(log_dir: Path, cutoff: float, live: set[str]) -> int:
    """Delete the worker logs (``<name>.log`` and its older piece ``.log.1``) last written
    before ``cutoff``, but those of the workers named in ``live``; how many."""
    deleted = 0
    for pattern in ("*.log", "*.log.1"):
        for path in log_dir.glob(pattern):
            if path.name.split(".log", 1)[0] in live:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except OSError:
                continue
    return deleted


def delete_sample_pieces(samples: SampleFile, cutoff: float) -> int:
    """Delete the pieces of the samples file last written before ``cutoff``, but the one
    being written; how many."""
    deleted = 0
    for _, path in sample_pieces(samples.path):
        if path == samples.current:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except OSError:
            continue
    return deleted
