"""The controller: observes jobs and workers, asks the policy, checks and applies its decisions.

It never makes a scheduling choice of its own. Each step first records what happened
(state in memory, then SQLite, then the event log), then asks the policy, then acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dacirco.controller.backpressure import check_queue
from dacirco.controller.errors import InvalidRequest, NotFound, StorageUnavailable
from dacirco.controller.events import EventLog
from dacirco.controller.lifecycle import Lifecycle
from dacirco.controller.parts import Parts
from dacirco.controller.store import Store
from dacirco.controller.usage import Usage
from dacirco.controller.worker_link import WorkerLink
from dacirco.domain import (
    FLAVORS,
    Codec,
    Job,
    JobState,
    Speed,
    Task,
    Worker,
    WorkerState,
    valid_movie_name,
)
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    Limits,
    NodeView,
    Policy,
    StartWorker,
    StopWorker,
    WorkerView,
)
from dacirco.policies.stats import StatsTracker
from dacirco.policies.work import work_units
from dacirco.runtimes.base import CapacityRefused, Runtime, WorkerSpec
from dacirco.storage.base import Storage, StorageError, input_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerConfig:
    algorithm: str = "grace-period"
    max_workers: int = 2
    max_idle_time: float = 60.0
    call_interval: float = 1.0
    flavor: str = "small"
    controller_url: str = "http://127.0.0.1:8000"  # what workers call back
    poll_wait: float = 20.0
    url_ttl: float = 6 * 3600.0
    max_attempts: int = 3
    boot_timeout: float = 120.0
    heartbeat_timeout: float = 90.0
    max_boot_failures: int = 5  # in a row, before the waiting jobs are failed
    boot_backoff_max: float = 60.0
    capacity_backoff: float = 10.0  # seconds before a new start after the cloud had no room
    can_split: bool = True  # policies may split jobs in chunks (Limits.can_split)
    max_queue: int = 1000  # waiting jobs past which submissions get a 429; 0: no limit
    sample_interval: float = 1.0  # asked of the workers; 0: they do not sample


class Controller(Lifecycle, WorkerLink, Parts):
    def __init__(
        self,
        config: ControllerConfig,
        policy: Policy,
        runtime: Runtime,
        storage: Storage,
        store: Store,
        events: EventLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.policy = policy
        self.runtime = runtime
        self.storage = storage
        self.store = store
        self.events = events
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.workers: dict[str, Worker] = {}
        self.tasks: dict[str, Task] = {}
        self._waiting: dict[str, None] = {}  # ids of waiting jobs, insertion-ordered
        self._parts: dict[str, tuple[str, str, int]] = {}  # waiting parts of split jobs
        self._tokens: dict[str, str] = {}  # token -> worker id
        self._wake: dict[str, asyncio.Event] = {}  # per worker: a task is there for you
        self._kick = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._worker_seq = 0
        self.closed = False
        self.draining = False
        self._boot_failures = 0  # workers lost before registering, in a row
        self._start_blocked_until = 0.0
        self._admitting = 0  # submissions past the queue check, not yet in _waiting
        self.usage: Usage | None = None  # resource samples; set by the service
        self.stats = StatsTracker()  # arrivals, boots, task times: part of every view

    def drain(self) -> None:
        """Shutting down: answer every pending long-poll now, so the server need not wait."""
        self.draining = True
        for event in self._wake.values():
            event.set()

    # ---- the loop --------------------------------------------------------------------------
    def kick(self) -> None:
        """Something happened: run the policy now rather than at the next tick."""
        self._kick.set()

    async def _run(self) -> None:
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.config.call_interval)
            self._kick.clear()
            if self.closed:
                return
            if self.draining:
                continue
            try:
                await self.check_liveness()
                await self.reconcile()
            except Exception:
                log.exception("reconcile step failed; going on")

    def spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- jobs from clients -----------------------------------------------------------------
    async def submit(self, id_video: str, bitrate: int, speed: Speed, codec: Codec) -> Job:
        if not valid_movie_name(id_video):
            raise InvalidRequest(f"id_video: {id_video!r} is not a valid movie name")
        check_queue(self)  # before any storage call: a refused job costs nothing
        try:
            info = await asyncio.to_thread(self.storage.stat, input_key(id_video))
        except StorageError as exc:
            raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        if info is None:
            raise InvalidRequest(f"id_video: movie {id_video!r} is not in the catalog")
        meta = {k.lower(): v for k, v in info.metadata.items()}
        width, height, fps = (_positive(meta.get(k)) for k in ("width", "height", "fps"))
        frames = _positive(meta.get("frames"))
        job = Job(
            id=str(uuid.uuid4()),
            id_video=id_video,
            bitrate=bitrate,
            speed=speed,
            codec=codec,
            received_at=self.clock(),
            max_attempts=self.config.max_attempts,
            input_size=info.size,
            input_duration=_positive(meta.get("duration")),
            input_pixel_rate=width * height * fps if width and height and fps else None,
            input_fps=fps,
            input_frames=int(frames) if frames else None,
        )
        check_queue(self)  # again: others may have been admitted during the stat
        self._admitting += 1
        try:
            await self.store.save(jobs=(job,))  # persisted before the client hears "201"
        finally:
            self._admitting -= 1
        self.jobs[job.id] = job
        self._waiting[job.id] = None
        work = work_units(job.input_duration, job.input_pixel_rate, job.speed.value)
        self.stats.arrival(job.received_at, job.input_duration, work)
        self.events.emit(
            "EV1", request_id=job.id, input_video=id_video, bitrate=bitrate, speed=speed.value
        )
        self.kick()
        return job

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise NotFound(f"job {job_id!r} not found") from None

    def worker(self, worker_id: str) -> Worker:
        try:
            return self.workers[worker_id]
        except KeyError:
            raise NotFound(f"worker {worker_id!r} not found") from None

    # ---- policy ----------------------------------------------------------------------------
    def snapshot(self) -> ClusterView:
        now = self.clock()
        whole = sorted((self.jobs[i] for i in self._waiting), key=lambda j: j.received_at)
        alive = [w for w in self.workers.values() if w.state != WorkerState.STOPPED]
        nodes = []
        for node in self.runtime.nodes():
            on_node = [w for w in alive if w.node == node.name]
            nodes.append(
                NodeView(
                    name=node.name,
                    cpus=node.cpus,
                    memory_gb=node.memory_gb,
                    free_cpus=node.cpus - sum(w.flavor.cpus for w in on_node),
                    free_memory_gb=node.memory_gb - sum(w.flavor.memory_gb for w in on_node),
                )
            )
        waiting = [
            JobView(
                id=j.id,
                id_video=j.id_video,
                bitrate=j.bitrate,
                speed=j.speed.value,
                received_at=j.received_at,
                attempts=j.attempts,
                input_duration=j.input_duration,
                input_size=j.input_size,
                input_pixel_rate=j.input_pixel_rate,
            )
            for j in whole
        ]
        if self._parts:  # parts of split jobs, in their job's arrival order
            waiting = sorted(waiting + self.part_views(), key=lambda v: v.received_at)
        return ClusterView(
            now=now,
            waiting=tuple(waiting),
            workers=tuple(
                WorkerView(
                    id=w.id,
                    flavor=w.flavor,
                    state=w.state,
                    created_at=w.created_at,
                    node=w.node,
                    idle_since=w.idle_since,
                    job_id=w.job_id,
                    **self._busy_with(w),
                )
                for w in alive
            ),
            nodes=tuple(nodes),
            limits=Limits(
                max_workers=self.config.max_workers,
                default_flavor=self.config.flavor,
                can_split=self.config.can_split,
            ),
            stats=self.stats.snapshot(now),
        )

    def _busy_with(self, w: Worker) -> dict[str, float | None]:
        """When a busy worker got its job, and that job's predicted work."""
        task, job = self.tasks.get(w.task_id or ""), self.jobs.get(w.job_id or "")
        if task is None or job is None:
            return {}
        work = work_units(job.input_duration, job.input_pixel_rate, job.speed.value)
        return {"busy_since": task.assigned_at, "job_work": work}

    async def reconcile(self) -> Decisions:
        if self.closed or self.draining:
            return Decisions()
        decisions = self.policy.decide(self.snapshot())
        split = False
        for s in decisions.split:
            if self.config.can_split:
                split = await self._apply_split(s) or split
            else:
                log.warning("refused %s: splitting is off", s)
        for stop in decisions.stop:
            await self._apply_stop(stop)
        for assign in decisions.assign:
            await self._apply_assign(assign)
        for start in decisions.start:
            await self._apply_start(start)
        if split:  # its parts are waiting now: place them at once
            return await self.reconcile()
        return decisions

    async def _apply_stop(self, stop: StopWorker) -> None:
        worker = self.workers.get(stop.worker_id)
        if worker is None or worker.state in (WorkerState.STOPPED, WorkerState.BUSY):
            log.warning("refused %s: worker busy, stopped or unknown", stop)
            return
        await self.stop_worker(worker, stop.reason or f"stopped by {self.policy.name}")

    async def _apply_assign(self, assign: Assign) -> None:
        if assign.job_id in self._parts:
            worker = self.workers.get(assign.worker_id)
            if worker is None or worker.state != WorkerState.IDLE:
                log.warning("refused %s: worker not idle", assign)
                return
            await self._assign_part(assign.job_id, worker)
            return
        job = self.jobs.get(assign.job_id)
        worker = self.workers.get(assign.worker_id)
        if job is None or job.state != JobState.WAITING:
            log.warning("refused %s: job not waiting", assign)
            return
        if worker is None or worker.state != WorkerState.IDLE:
            log.warning("refused %s: worker not idle", assign)
            return
        now = self.clock()
        task = Task(id=str(uuid.uuid4()), job_id=job.id, worker_id=worker.id, assigned_at=now)
        job.attempts += 1
        job.transition(JobState.STARTED, now, f"assigned to {worker.id}")
        job.worker_id, job.task_id, job.progress = worker.id, task.id, 0.0
        job.timings.setdefault("assigned", now)
        worker.transition(WorkerState.BUSY, now, f"job {job.id}")
        worker.job_id, worker.task_id, worker.idle_since = job.id, task.id, None
        self._waiting.pop(job.id, None)
        self.tasks[task.id] = task
        self.events.emit("EV3", request_id=job.id, worker_id=worker.id, task_id=task.id)
        await self.store.save(jobs=(job,), workers=(worker,), tasks=(task,))
        self._wake_worker(worker.id)  # the task leaves only once its assignment is stored

    async def _apply_start(self, start: StartWorker) -> None:
        flavor = FLAVORS.get(start.flavor)
        view = self.snapshot()
        if flavor is None:
            log.warning("refused %s: unknown flavor", start)
            return
        if view.now < self._start_blocked_until:
            log.debug("refused %s: backing off after failed boots", start)
            return
        if view.room <= 0:
            log.warning("refused %s: max_workers (%d) reached", start, self.config.max_workers)
            return
        node = start.node or self.runtime.place(flavor)
        free = next((n for n in view.nodes if n.name == node), None)
        if free is not None and (
            free.free_cpus < flavor.cpus or free.free_memory_gb < flavor.memory_gb
        ):
            log.warning("refused %s: node %s lacks capacity", start, node)
            return
        now = self.clock()
        self._worker_seq += 1
        worker = Worker(
            id=str(uuid.uuid4()),
            name=f"dacirco-worker-{self._worker_seq:03d}",
            flavor=flavor,
            created_at=now,
            node=node,
        )
        token = secrets.token_urlsafe(32)
        self.workers[worker.id] = worker
        self._tokens[token] = worker.id
        self._wake[worker.id] = asyncio.Event()
        self.events.emit(
            "EV2", name=worker.name, worker_id=worker.id, flavor=flavor.name, node=node
        )
        await self.store.save(workers=(worker,))
        spec = WorkerSpec(
            worker_id=worker.id,
            name=worker.name,
            flavor=flavor,
            controller_url=self.config.controller_url,
            token=token,
            node=node,
        )
        try:
            await self.runtime.start(spec)
        except CapacityRefused as exc:
            # No room now: try again later; the jobs wait, no boot failure is counted.
            self._start_blocked_until = self.clock() + self.config.capacity_backoff
            log.warning("no room for %s: %s; next start in %.0f s", worker.name, exc,
                        self.config.capacity_backoff)  # fmt: skip
            await self.stop_worker(worker, f"no room: {exc}", lost=True, charge=False)
        except Exception as exc:
            log.error("runtime could not start %s: %s", worker.name, exc)
            await self.stop_worker(worker, f"runtime could not start it: {exc}", lost=True)

    def _wake_worker(self, worker_id: str) -> None:
        event = self._wake.get(worker_id)
        if event is not None:
            event.set()


def _positive(value: str | None) -> float | None:
    """A catalog metadata number, or None if missing, malformed or not positive."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 and number != float("inf") else None
