"""Start, recovery after a restart, stopping and losing workers, requeueing and failing jobs.

A mixin of the Controller: these are the paths where a job could be lost, kept in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from dacirco.domain import Job, JobState, Task, TaskState, Worker, WorkerState
from dacirco.runtimes.base import NO_CAPACITY

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

log = logging.getLogger(__name__)


class Lifecycle:
    async def start(self: Controller) -> None:
        """Load the state of a previous run, then start the loop."""
        await self.recover()
        self.runtime.set_exit_handler(self.on_worker_exit)
        if self.usage is not None:
            self.usage.start()
        self._loop_task = asyncio.create_task(self._run(), name="dacirco-controller")
        self.kick()

    async def recover(self: Controller) -> None:
        jobs, workers, tasks = await self.store.load()
        now = self.clock()
        self._worker_seq = len(workers)
        for worker in workers:
            self.workers[worker.id] = worker
        for task in tasks:
            self.tasks[task.id] = task
        for job in jobs:
            self.jobs[job.id] = job
            if job.state == JobState.WAITING:
                self._waiting[job.id] = None
        # Workers of a previous run cannot be reached (their tokens died with it): stop them and
        # give their jobs back to the queue.
        for worker in workers:
            if worker.state != WorkerState.STOPPED:
                await self.stop_worker(worker, "controller restarted", lost=True, charge=False)
        # A task still open whose worker was already stopped (crash between two writes).
        for task in tasks:
            if task.state in (TaskState.ASSIGNED, TaskState.RUNNING):
                task.transition(TaskState.LOST, now, "controller restarted")
                await self.store.save(tasks=(task,))
                job = self.jobs.get(task.job_id)
                if job is not None and job.state == JobState.STARTED and not job.chunks:
                    await self.requeue_or_fail(
                        job, "controller restarted during the job", charge=False
                    )
        # Whatever a crash between two writes left behind: no worker is alive after a restart,
        # so a job still Started goes back to the queue (a split one: its parts not done).
        for job in jobs:
            if job.state == JobState.STARTED and job.chunks:
                self._restore_parts(job)
            elif job.state == JobState.STARTED:
                await self.requeue_or_fail(job, "controller restarted during the job", charge=False)

    async def close(self: Controller) -> None:
        """Stop accepting work, stop every worker this controller started, flush the log."""
        if self.closed:
            return
        self.closed = self.draining = True
        if self._loop_task is not None:
            # Let the loop finish the step it is in (a half-applied decision would log a
            # worker that was never launched); cancel only if it does not end in time.
            self.kick()
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), 10.0)
            except TimeoutError:
                self._loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._loop_task
        for worker in list(self.workers.values()):
            if worker.state != WorkerState.STOPPED:
                await self.stop_worker(worker, "controller shutting down", charge=False)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.runtime.close()
        if self.usage is not None:
            self.usage.close()
        self.events.close()
        self.store.close()

    async def stop_worker(
        self: Controller,
        worker: Worker,
        reason: str,
        *,
        lost: bool = False,
        charge: bool = True,
    ) -> None:
        """Mark the worker stopped (EV8, or EV12 + EV8 when lost) and have the runtime stop it.

        Its job, if any, goes back to the queue (or to Error past its attempts). ``charge``
        False: the stop is not the job's fault (shutdown, restart), the attempt is not counted.
        Every change and event happens before the first ``await``, so no report can slip in
        between a stopped worker and its requeued job.
        """
        if worker.state == WorkerState.STOPPED:
            return
        now = self.clock()
        was_booting = worker.state == WorkerState.BOOTING
        job_id, task_id = worker.job_id, worker.task_id
        worker.transition(WorkerState.STOPPED, now, reason)
        worker.stopped_at, worker.stop_reason = now, reason
        worker.job_id = worker.task_id = None
        worker.idle_since = None
        for token, wid in list(self._tokens.items()):
            if wid == worker.id:
                del self._tokens[token]
        if lost:
            self.events.emit("EV12", name=worker.name, worker_id=worker.id, reason=reason)
        self.events.emit("EV8", name=worker.name, worker_id=worker.id)
        if self.usage is not None:
            self.usage.forget(worker.id)
        tasks: tuple[Task, ...] = ()
        task = self.tasks.get(task_id or "")
        if task is not None and task.state in (TaskState.ASSIGNED, TaskState.RUNNING):
            task.transition(TaskState.LOST, now, reason)
            task.error = reason
            tasks = (task,)
        jobs: tuple[Job, ...] = ()
        job = self.jobs.get(job_id or "")
        if job is not None and job.state == JobState.STARTED:
            if task is not None and task.part is not None:  # only that part goes back
                self._requeue_part(job, task, f"worker {worker.name}: {reason}", charge=charge)
            else:
                self._requeue_or_fail(job, f"worker {worker.name}: {reason}", charge=charge)
            jobs = (job,)
        # Recovery (charge False) stops the previous run's workers: not a boot failure.
        failed_boot = lost and charge and was_booting and not self.draining
        if failed_boot:
            jobs += self._boot_failed(reason)
        self._wake_worker(worker.id)  # a pending long-poll answers "gone"
        self._wake.pop(worker.id, None)
        await self.store.save(jobs=jobs, workers=(worker,), tasks=tasks)
        self.spawn(self.runtime.stop(worker.id))
        self.kick()

    def _boot_failed(self: Controller, reason: str) -> tuple[Job, ...]:
        """A worker died before registering: back off further starts; after several in a row,
        fail the waiting jobs rather than restart workers forever."""
        self._boot_failures += 1
        delay = min(self.config.boot_backoff_max, 2.0 ** (self._boot_failures - 1))
        self._start_blocked_until = self.clock() + delay
        log.warning(
            "worker failed to boot (%d in a row): %s; next start in %.0f s",
            self._boot_failures, reason, delay,
        )  # fmt: skip
        if self._boot_failures < self.config.max_boot_failures:
            return ()
        failed = []
        for job_id in list(self._waiting):
            job = self.jobs[job_id]
            self._fail(
                job,
                f"no worker could start ({self._boot_failures} tries in a row); last: {reason}",
            )
            failed.append(job)
        return tuple(failed)

    def _requeue_or_fail(self: Controller, job: Job, reason: str, *, charge: bool = True) -> None:
        now = self.clock()
        job.worker_id = job.task_id = None
        if not charge:
            job.attempts = max(0, job.attempts - 1)
        else:
            job.errors.append(reason)
        if job.attempts >= job.max_attempts:
            self._fail(job, f"gave up after {job.attempts} attempts: " + "; ".join(job.errors))
            return
        job.transition(JobState.WAITING, now, reason)
        job.progress = 0.0
        self._waiting[job.id] = None
        self.events.emit("EV14", request_id=job.id, reason=reason)
        self.kick()

    def _fail(self: Controller, job: Job, message: str) -> None:
        now = self.clock()
        job.transition(JobState.ERROR, now, message)
        job.error = message
        job.worker_id = job.task_id = None
        job.timings["failed"] = now
        self._waiting.pop(job.id, None)
        self._drop_parts(job.id)
        self.events.emit("EV13", request_id=job.id, error_message=message)

    async def requeue_or_fail(
        self: Controller, job: Job, reason: str, *, charge: bool = True
    ) -> None:
        self._requeue_or_fail(job, reason, charge=charge)
        await self.store.save(jobs=(job,))

    async def fail_job(self: Controller, job: Job, message: str) -> None:
        self._fail(job, message)
        await self.store.save(jobs=(job,))

    async def on_worker_exit(self: Controller, worker_id: str, reason: str) -> None:
        """The runtime saw a worker end that nobody asked to stop: it is lost (or, while the
        controller shuts down, it left as asked)."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.state != WorkerState.STOPPED:
            if self.draining:
                await self.stop_worker(worker, "controller shutting down", charge=False)
            elif reason.startswith(NO_CAPACITY):
                # The cloud found no room after accepting the start: wait as for a refusal.
                self._start_blocked_until = self.clock() + self.config.capacity_backoff
                await self.stop_worker(worker, reason, lost=True, charge=False)
            else:
                await self.stop_worker(worker, reason, lost=True)

    async def check_liveness(self: Controller) -> None:
        """A worker that never registers, or falls silent, is lost; its job goes back."""
        now = self.clock()
        for worker in list(self.workers.values()):
            if worker.state == WorkerState.BOOTING:
                if now - worker.created_at > self.config.boot_timeout:
                    await self.stop_worker(
                        worker,
                        f"did not register within {self.config.boot_timeout:g} s",
                        lost=True,
                    )
            elif worker.state != WorkerState.STOPPED:
                seen = worker.last_seen or worker.registered_at or worker.created_at
                if now - seen > self.config.heartbeat_timeout:
                    await self.stop_worker(worker, f"silent for {now - seen:.0f} s", lost=True)
