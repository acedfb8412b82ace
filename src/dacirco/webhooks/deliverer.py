"""The deliverer: takes due rows from the outbox and POSTs them, retrying with backoff until
each is delivered (2xx) or given up; its own SQLite connection on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dacirco.webhooks import outbox, send
from dacirco.webhooks.addresses import shown_target
from dacirco.webhooks.outbox import Delivery

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH = 200  # rows taken per pass
POLL = 2.0  # seconds between looks when nothing is notified (a missed notify costs this)
PURGE_EVERY = 3600.0
MAX_PROGRESS = 64  # progress deliveries in flight; more are dropped


def backoff(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next attempt after ``failures`` failed ones: exponential backoff
    with full jitter, uniform in ``[0, min(cap, base * 2 ** (failures - 1))]``."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** max(0, min(failures - 1, 60))))


class Deliverer:
    """Delivers the outbox of ``db_path`` at least once, signed with ``secret``."""

    def __init__(
        self,
        db_path: Path,
        secret: bytes,
        *,
        give_up_after: float = 86400.0,
        timeout: float = 10.0,
        allow_private: bool = False,
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
        backoff_base: float = 1.0,
        backoff_cap: float = 600.0,
        keep_for: float = 7 * 86400.0,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db_path = Path(db_path)
        self._secret = secret
        self._give_up_after = give_up_after
        self._timeout = timeout
        self._allow_private = allow_private
        self._concurrency = concurrency
        self._clock = clock
        self._base = backoff_base
        self._cap = backoff_cap
        self._keep_for = keep_for
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dacirco-webhooks")
        self._conn: sqlite3.Connection | None = None
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._main: asyncio.Task[None] | None = None
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._progress: set[asyncio.Task[None]] = set()
        self._closing = False
        self._paused_until = 0.0  # after a lane failed on the database

    # The database, on the deliverer's own thread.
    def _open(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=10.0)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(outbox.SCHEMA)
        self._conn = conn

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            if self._conn is None:
                raise RuntimeError("the deliverer's database is closed")
            return fn(self._conn, *args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def start(self) -> None:
        """Open the database (creating the table if needed) and start delivering. Rows left
        pending by a previous process are due again at once."""
        if self._main is not None:
            return
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._executor, self._open)
        self._client = send.new_client(self._timeout)
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self._concurrency)
        self._main = asyncio.create_task(self._run(), name="webhook-deliverer")

    def notify(self) -> None:
        """New rows were committed: look at once. Safe from any thread; a no-op before start
        and after close."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or self._closing:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(wake.set)

    def progress(self, event_id: str, url: str, body: str | bytes) -> None:
        """Send one delivery now, once, best effort: not stored, not retried, dropped when
        too many are in flight. Called on the deliverer's event loop."""
        if self._main is None or self._closing:
            return
        if len(self._progress) >= MAX_PROGRESS:
            log.info(
                "webhook progress %s to %s dropped: too many in flight", event_id, shown_target(url)
            )
            return
        data = body.encode() if isinstance(body, str) else body
        task = asyncio.create_task(self._progress_once(event_id, url, data))
        self._progress.add(task)
        task.add_done_callback(self._progress.discard)

    async def close(self) -> None:
        """Stop: deliveries under way are abandoned (their rows stay pending and are sent
        again by the next start), the database is closed."""
        if self._closing:
            return
        self._closing = True
        tasks = [t for t in (self._main, *self._lanes.values(), *self._progress) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        with contextlib.suppress(RuntimeError):
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_db)
        self._executor.shutdown(wait=False)

    # The loop: each pass starts one lane per URL that has due rows and no lane running.
    async def _run(self) -> None:
        assert self._wake is not None
        last_purge = float("-inf")
        while not self._closing:
            self._wake.clear()
            wait = POLL
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            try:
                now = self._clock()
                if now - last_purge >= PURGE_EVERY:
                    last_purge = now
                    purged = await self._db(outbox.purge, now - self._keep_for)
                    if purged:
                        log.info("webhook outbox: %d old rows purged", purged)
                busy = tuple(self._lanes)
                rows = await self._db(outbox.due, now, busy, BATCH)
                for url, items in _by_url(rows).items():
                    self._start_lane(url, items)
                next_at = await self._db(outbox.next_due, tuple(self._lanes))
                if next_at is not None:
                    wait = min(POLL, max(0.0, next_at - self._clock()))
            except Exception:
                log.exception("webhook deliverer: a pass failed; trying again in %g s", POLL)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await asyncio.sleep(0)

    def _start_lane(self, url: str, items: list[Delivery]) -> None:
        task = asyncio.create_task(self._lane(items), name=f"webhook-lane {url}")
        self._lanes[url] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._lanes.get(url) is t:
                del self._lanes[url]
            if t.cancelled():
                return
            if t.exception() is not None:
                # Its rows stay pending; they are taken again after a pause, not at once, so
                # that a database refusing writes does not turn into a flood of deliveries.
                self._paused_until = time.monotonic() + POLL
                log.error(
                    "webhook deliveries to %s stopped", shown_target(url), exc_info=t.exception()
                )
            elif self._wake is not None:
                self._wake.set()

        task.add_done_callback(done)

    async def _lane(self, items: list[Delivery]) -> None:
        """One URL's due rows, one at a time, in id order; a failed one is retried later and
        does not hold back the next."""
        for row in items:
            if self._closing:
                return
            error = await self._attempt(row.url, row.event_id, row.body.encode())
            now = self._clock()
            if error is None:
                await self._db(outbox.mark_delivered, row.id, now)
                continue
            attempts = row.attempts + 1
            deadline = row.created_at + self._give_up_after
            if now >= deadline:
                reason = (
                    f"{error} (gave up after {attempts} attempt{'s' * (attempts > 1)} "
                    f"in {now - row.created_at:.0f} s)"
                )
                shown = shown_target(row.url)
                log.warning(
                    "webhook %s to %s: %s", row.event_id, shown, reason.replace(row.url, shown)
                )
                await self._db(outbox.mark_gave_up, row.id, reason)
            else:
                next_at = min(now + backoff(attempts, self._base, self._cap, self._rng), deadline)
                await self._db(outbox.mark_retry, row.id, next_at, error)

    async def _attempt(self, url: str, event_id: str, body: bytes) -> str | None:
        assert self._slots is not None and self._client is not None
        async with self._slots:
            return await send.post(
                self._client,
                self._secret,
                url,
                event_id,
                body,
                timestamp=int(self._clock()),
                timeout=self._timeout,
                allow_private=self._allow_private,
            )

    async def _progress_once(self, event_id: str, url: str, body: bytes) -> None:
        error = await self._attempt(url, event_id, body)
        if error is not None:
            log.info(
                "webhook progress %s to %s not delivered: %s", event_id, shown_target(url), error
            )


def _by_url(rows: list[Delivery]) -> dict[str, list[Delivery]]:
    lanes: dict[str, list[Delivery]] = {}
    for row in rows:
        lanes.setdefault(row.url, []).append(row)
    return lanes
