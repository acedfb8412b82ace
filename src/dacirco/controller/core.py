"""The controller: the core's lifecycle run for real, with runtimes, storage, SQLite and HTTP.

It never makes a scheduling choice of its own: every change is a step of the core
(``dacirco.core``), stored before it takes effect (``shell.py``). Here: the loop (every
event and every ``call_interval``), submissions, the policy's view, start, recovery and close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from dacirco.controller import archive
from dacirco.controller.backpressure import check_queue
from dacirco.controller.events import EventLog
from dacirco.controller.presets import PresetBook
from dacirco.controller.retention import Retention
from dacirco.controller.shell import Shell
from dacirco.controller.single_flight import SPACING, SingleFlight
from dacirco.controller.store import Store
from dacirco.controller.submissions import Request, checked, new_job
from dacirco.controller.tally import Tally
from dacirco.controller.worker_link import WorkerLink
from dacirco.core.errors import Conflict, NotFound, StorageUnavailable
from dacirco.core.lifecycle import cancel_refusal
from dacirco.core.machine import Core
from dacirco.core.state import CoreConfig
from dacirco.core.stimuli import Cancel, Decide, Recover, Shutdown, Tick
from dacirco.domain import (
    Codec,
    ExitCause,
    Job,
    Speed,
    Task,
    Worker,
)
from dacirco.outputs.spec import OutputSpec, ThumbnailSpec
from dacirco.policies.base import DEFAULT_POLICY, ClusterView, Decisions, Policy
from dacirco.runtimes.base import Runtime, WorkerExit
from dacirco.storage.base import Storage, StorageError, input_key

log = logging.getLogger(__name__)
# Seconds at least between two of the loop's steps: a worker's step or a batch of submissions
# each asks for one, and at hundreds a second most would find nothing new to decide.
KICK_GAP = 0.005


@dataclass(frozen=True)
class ControllerConfig:
    algorithm: str = DEFAULT_POLICY
    max_workers: int = 2
    max_idle_time: float = 60.0
    call_interval: float = 1.0
    flavor: str = "small"
    controller_url: str = "http://127.0.0.1:8000"  # what workers call back
    poll_wait: float = 20.0
    url_ttl: float = 6 * 3600.0  # a task's GET URLs (its input, a merge's chunks)
    # A PUT URL is asked for just before the upload and lives this long: S3 cannot revoke a
    # presigned URL, so its life after the task is kept short (the local route refuses it
    # as soon as the task is no longer open).
    upload_url_ttl: float = 600.0
    max_attempts: int = 3
    boot_timeout: float = 120.0
    heartbeat_timeout: float = 90.0
    max_boot_failures: int = 5  # in a row, before the waiting jobs are failed
    boot_backoff_max: float = 60.0
    capacity_backoff: float = 10.0  # seconds before a new start after the cloud had no room
    can_split: bool = True  # policies may split jobs in chunks (Limits.can_split)
    max_queue: int = 1000  # waiting jobs past which submissions get a 429; 0: no limit
    sample_interval: float = 1.0  # asked of the workers; 0: they do not sample
    priority_aging: float = 60.0  # seconds of waiting worth one priority level
    reuse: bool = True  # identical requests share one output (a request may opt out)
    webhook_allow_private: bool = False  # callback URLs on loopback/private networks allowed
    webhook_progress_interval: float = 10.0  # at most one progress webhook per job so often
    # Seconds a finished job (its rows, its output) and a stopped worker are kept; None:
    # forever (``controller/retention.py``).
    retention: float | None = None

    def core(self) -> CoreConfig:
        return CoreConfig(
            max_workers=self.max_workers,
            flavor=self.flavor,
            can_split=self.can_split,
            boot_timeout=self.boot_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            max_boot_failures=self.max_boot_failures,
            boot_backoff_max=self.boot_backoff_max,
            capacity_backoff=self.capacity_backoff,
            priority_aging=self.priority_aging,
            reuse=self.reuse,
            retention=self.retention is not None,
        )


class Controller(WorkerLink, Shell):
    def __init__(
        self,
        config: ControllerConfig,
        policy: Policy,
        runtime: Runtime,
        storage: Storage,
        store: Store,
        events: EventLog,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[str], str] | None = None,
    ) -> None:
        """``new_id(kind)`` names new jobs, workers and tasks (default: random UUIDs)."""
        core = Core(config.core(), policy, new_id=new_id or (lambda kind: str(uuid.uuid4())))
        super().__init__(core, runtime, storage, store, events, clock, config.controller_url)
        self.config = config
        self.draining = False
        self._loop_task: asyncio.Task[None] | None = None
        self._admitting = 0  # submissions past the queue check, not yet waiting
        self.retention = Retention(config.retention) if config.retention else None
        self.presets = PresetBook(store)  # the shipped ones and the operators'
        # One storage call answers the submissions for a movie that arrive while it runs.
        self._input_info = SingleFlight(lambda key: self.storage.stat(key), SPACING)

    # ---- what the core holds, for the API ----------------------------------------------
    @property
    def policy(self) -> Policy:
        return self.core.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self.core.policy = policy

    @property
    def jobs(self) -> dict[str, Job]:
        return self.core.state.jobs

    @property
    def workers(self) -> dict[str, Worker]:
        return self.core.state.workers

    @property
    def tasks(self) -> dict[str, Task]:
        return self.core.state.tasks

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker (the parts of split jobs are not counted)."""
        return sum(1 for ref in self.core.state.waiting.values() if ref is None)

    @property
    def boot_failures(self) -> int:
        return self.core.state.counters.boot_failures

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            why = f"job {job_id!r} not found"
            if self.retention is not None:
                why += f": unknown, or finished more than {self.retention} ago and deleted"
            raise NotFound(why) from None

    async def find_job(self, job_id: str) -> tuple[Job, list[Task]]:
        """A job and its tasks: from memory, else from the store (a finished job)."""
        if job_id in self.jobs:
            return self.jobs[job_id], self.tasks_of(job_id)
        found = await self.store.run(lambda db: archive.job(db, job_id))
        if found is None:
            self.job(job_id)  # not in memory either now: NotFound, with its message
            return self.jobs[job_id], self.tasks_of(job_id)  # it just came
        return found

    async def job_ids(self, limit: int, after: str | None) -> tuple[list[str], bool]:
        """A page of job ids, oldest first (every job is stored once its step is)."""
        try:
            return await self.store.run(lambda db: archive.ids(db, after, limit))
        except archive.UnknownAfter:
            raise NotFound(f"after: job {after!r} not found") from None

    async def newest_jobs(self, offset: int, limit: int) -> list[Job]:
        """Jobs newest first, from the ``offset``-th: memory's copy where it has one."""
        stored = await self.store.run(lambda db: archive.newest(db, offset, limit))
        return [self.jobs.get(job.id, job) for job in stored]

    def tasks_of(self, job_id: str) -> list[Task]:
        """A job's tasks (attempts, parts), in order."""
        st = self.core.state
        return [st.tasks[t] for t in st.job_tasks.get(job_id, ())]

    def worker(self, worker_id: str) -> Worker:
        try:
            return self.workers[worker_id]
        except KeyError:
            raise NotFound(f"worker {worker_id!r} not found") from None

    def snapshot(self) -> ClusterView:
        self.core.state.set_nodes(tuple(self.runtime.nodes()))
        return self.core.state.view(self.clock())

    # ---- the loop ----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the state of a previous run, then start the loop."""
        await self.recover()
        self.runtime.set_exit_handler(self.on_worker_exit)
        if self.usage is not None:
            self.usage.start()
        if self.deliverer is not None:
            await self.deliverer.start()  # the webhooks a previous run left pending go too
        self._loop_task = asyncio.create_task(self._run(), name="dacirco-controller")
        self.kick()
        if self.retention is not None:
            self.retention.start(self)

    async def recover(self) -> None:
        self.hub.last = await self.store.last_change()
        jobs, workers, tasks = await self.store.load(live=True)  # the finished stay on disk
        done = await self.store.run(archive.summary)
        # Counted as stored; what the recovery changes moves the counts like any step.
        self.tally = Tally.of_stored(done.counts, done.delays, workers)
        await self.step(Recover(tuple(jobs), tuple(workers), tuple(tasks), done.finished))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = -math.inf
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.config.call_interval)
            if (gap := last + KICK_GAP - loop.time()) > 0:
                await asyncio.sleep(gap)  # the kicks of a burst (of submissions) make one step
            self._kick.clear()
            last = loop.time()
            if self.closed:
                return
            if self.draining:
                continue
            try:
                await self.step(Tick())
            except Exception:
                log.exception("controller step failed; going on")

    async def reconcile(self) -> Decisions:
        """Ask the policy now (the loop does it on every event and tick)."""
        if self.closed or self.draining:
            return Decisions()
        return (await self.step(Decide())).decisions or Decisions()

    async def check_liveness(self) -> None:
        """Workers that never registered, or fell silent, are lost (no policy call)."""
        await self.step(Tick(decide=False))

    def drain(self) -> None:
        """Shutting down: answer every pending long-poll now, so the server need not wait."""
        self.draining = True
        self.hub.close()
        for event in self._wake.values():
            event.set()

    async def close(self) -> None:
        """Stop accepting work, stop every worker this controller started, flush the log."""
        if self.closed:
            return
        self.closed = self.draining = True
        self.hub.close()
        if self.retention is not None:
            await self.retention.stop()
        if self._loop_task is not None:
            # Let the loop finish the step it is in; cancel only if it does not end in time.
            self.kick()
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), 10.0)
            except TimeoutError:
                self._loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._loop_task
        try:
            await self.step(Shutdown("controller shutting down"))
        except Exception as exc:  # the next start stops them in the books (Recover)
            log.error("could not record the workers' stop: %s", exc)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.runtime.close()
        if self.deliverer is not None:
            await self.deliverer.close()  # what is not delivered stays stored, for the next run
        if self.usage is not None:
            self.usage.close()
        self.events.close()
        self.store.close()

    # ---- workers ending -----------------------------------------------------------------
    async def on_worker_exit(self, exit: WorkerExit) -> None:
        """The runtime saw a worker end that nobody asked to stop: it is lost (or, while the
        controller shuts down, it left as asked)."""
        if self.draining:
            exit = WorkerExit(exit.worker_id, ExitCause.STOPPED, "controller shutting down")
        await self._exited(exit.worker_id, exit.cause, exit.reason)

    async def stop_worker(self, worker: Worker, reason: str, *, lost: bool = False) -> None:
        """Stop a worker (lost: counted against its job, as a crash)."""
        cause = ExitCause.CRASHED if lost else ExitCause.STOPPED
        await self._exited(worker.id, cause, reason)

    # ---- jobs from clients --------------------------------------------------------------
    async def submit(
        self,
        id_video: str,
        bitrate: int,
        speed: Speed,
        codec: Codec,
        *,
        priority: int = 0,
        callback_url: str | None = None,
        reuse: bool = True,
        outputs: list[OutputSpec] | None = None,
        preset: str | None = None,
        quality: bool = False,
        thumbnails: ThumbnailSpec | None = None,
    ) -> Job:
        request = Request(
            id_video, bitrate, speed, codec, priority, callback_url, reuse, outputs, preset,
            quality, thumbnails,
        )  # fmt: skip
        url = checked(request, self.config.webhook_allow_private)
        check_queue(self)  # before any storage call: a refused job costs nothing
        try:
            info = await self._input_info(input_key(id_video))
        except StorageError as exc:
            raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        job = new_job(
            request, info, self.core.new_id("job"), url, self.clock(), self.config.max_attempts
        )
        check_queue(self)  # again: others may have been admitted during the stat
        self._admitting += 1
        try:
            await self.admit(job)  # stored before the client hears "201"
        finally:
            self._admitting -= 1
        return self.jobs[job.id]

    async def changes(
        self,
        after: int | None,
        job_id: str | None,
        keepalive: float = 15.0,
        *,
        follow: bool = True,
    ) -> AsyncIterator[tuple[int, str, dict[str, Any]] | None]:
        """Changes after ``after`` (None: from now on), of job ``job_id`` only if given, as
        (seq, kind, data), then (``follow``) live ones as they come; None every ``keepalive``
        seconds of silence. Ends when the controller shuts down."""
        hub = self.hub
        seq = hub.last if after is None else min(max(0, after), hub.last)
        while True:
            items = hub.since(seq)
            if items is None:  # older than the ring: from the store
                last = hub.last
                rows = await self.store.changes_after(seq, job_id, 1000)
                for row_seq, kind, data in rows:
                    yield row_seq, kind, {"seq": row_seq, **json.loads(data)}
                seq = rows[-1][0] if len(rows) == 1000 else max(last, rows[-1][0] if rows else 0)
                continue
            for item_seq, change in items:
                if job_id is None or (change.kind == "job" and change.id == job_id):
                    yield item_seq, change.kind, change.data(item_seq)
                seq = item_seq
            if hub.closed or not follow:
                return
            if not await hub.wait(seq, keepalive):
                if hub.closed:
                    return
                yield None

    async def cancel(self, job_id: str, reason: str = "canceled by the client") -> Job:
        """Cancel a job (stored before the answer); canceling it again answers the same."""
        if job_id not in self.jobs:  # finished long ago (or unknown): read, nothing to do
            job, _ = await self.find_job(job_id)
            if (refusal := cancel_refusal(job)) is not None:
                raise Conflict(refusal)
            return job  # Canceled already: the same answer
        await self.step(Cancel(job_id, reason))
        return self.job(job_id)
