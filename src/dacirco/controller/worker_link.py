"""The controller's side of the worker protocol: register, long-poll for a task, step reports.

A mixin of the Controller. Reports are idempotent: a step already recorded is acknowledged
and ignored, so a worker may safely retry a report whose answer it did not get.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from dacirco.controller.errors import TaskNotYours, WorkerAuthError, WorkerGone
from dacirco.domain import (
    JobState,
    Task,
    TaskState,
    Worker,
    WorkerState,
    chunk_name,
    output_name,
)
from dacirco.policies.work import work_units
from dacirco.protocol import (
    RegisterReply,
    RegisterRequest,
    SamplesReport,
    TaskReport,
    TaskSpec,
)
from dacirco.storage.base import StorageError, input_key, output_key

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

log = logging.getLogger(__name__)

# step -> (event code, key in the job's timings)
STEP_EVENTS = {
    "started": ("EV4", "started"),
    "downloaded": ("EV5", "downloaded"),
    "transcoded": ("EV6", "transcoded"),
    "uploaded": ("EV7", "uploaded"),
}


class WorkerLink:
    def authenticate(self: Controller, token: str | None) -> Worker:
        worker_id = self._tokens.get(token or "")
        if worker_id is None:
            raise WorkerAuthError("unknown or revoked worker token")
        worker = self.workers[worker_id]
        worker.last_seen = self.clock()
        return worker

    async def register(self: Controller, worker: Worker, req: RegisterRequest) -> RegisterReply:
        if req.worker_id != worker.id:
            raise WorkerAuthError("this token belongs to another worker")
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        if worker.state == WorkerState.BOOTING:
            now = self.clock()
            worker.transition(WorkerState.IDLE, now, "registered")
            worker.registered_at = worker.idle_since = now
            # The runtime's placement stays the node of record: capacity is counted on it.
            worker.node = worker.node or req.node
            worker.cpus, worker.memory_gb = req.cpus, req.memory_gb
            self.stats.booted(now - worker.created_at)
            self._boot_failures, self._start_blocked_until = 0, 0.0
            self.events.emit(
                "EV11",
                name=worker.name,
                worker_id=worker.id,
                node=req.node,
                cpus=str(req.cpus),
                memory=f"{req.memory_gb:g}",
            )
            await self.store.save(workers=(worker,))
            self.kick()
        return RegisterReply(
            worker_id=worker.id,
            poll_wait=self.config.poll_wait,
            sample_interval=self.config.sample_interval,
        )

    def record_samples(self: Controller, worker: Worker, body: SamplesReport) -> None:
        """Resource samples of a live worker go to the run's samples file."""
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        if self.usage is not None and body.samples:
            self.usage.add(worker.id, body.samples)

    async def next_task(self: Controller, worker: Worker, wait: float) -> TaskSpec | None:
        """The worker's task, as soon as there is one, or None after ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(wait, 60.0))
        while True:
            if worker.state == WorkerState.STOPPED:
                raise WorkerGone("this worker was stopped")
            if self.draining:
                raise WorkerGone("the controller is shutting down")
            task = self.tasks.get(worker.task_id or "")
            # Delivered again until the worker says "started": a poll answer lost on the way
            # never loses the task.
            if task is not None and task.state == TaskState.ASSIGNED:
                return await self._task_spec(worker, task)
            event = self._wake.get(worker.id)
            remaining = deadline - loop.time()
            if event is None or remaining <= 0:
                return None
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return None
            finally:
                worker.last_seen = self.clock()

    async def _task_spec(self: Controller, worker: Worker, task: Task) -> TaskSpec:
        job = self.jobs[task.job_id]
        out = chunk_name(job, task.index) if task.part == "chunk" else output_name(job)
        ttl = self.config.url_ttl
        get_url = await asyncio.to_thread(self.storage.get_url, input_key(job.id_video), ttl)
        put_url = await asyncio.to_thread(self.storage.put_url, output_key(out), ttl)
        chunk_urls = []
        if task.part == "merge":
            for i in range(1, job.chunks + 1):
                key = output_key(chunk_name(job, i))
                chunk_urls.append(await asyncio.to_thread(self.storage.get_url, key, ttl))
        deadline = None
        if job.input_duration:
            # Generous: the slowest preset on one core is several times real time.
            deadline = 120.0 + 30.0 * job.input_duration
        return TaskSpec(
            task_id=task.id,
            job_id=job.id,
            input_name=job.id_video,
            output_name=out,
            input_url=get_url,
            output_url=put_url,
            bitrate_kbps=job.bitrate,
            speed=job.speed.value,
            codec=job.codec.value,
            threads=worker.flavor.cpus,
            input_duration=job.input_duration,
            deadline_seconds=deadline,
            kind=task.part or "whole",
            chunk_index=task.index,
            chunks=job.chunks,
            input_fps=job.input_fps,
            input_frames=job.input_frames,
            chunk_urls=chunk_urls,
        )

    async def report(self: Controller, worker: Worker, task_id: str, rep: TaskReport) -> None:
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        task = self.tasks.get(task_id)
        if task is None or task.worker_id != worker.id:
            raise TaskNotYours(f"task {task_id!r} is not assigned to this worker")
        if task.state in (TaskState.DONE, TaskState.FAILED, TaskState.LOST):
            if rep.step in task.timings or (rep.step == "failed" and task.error):
                return  # a retried report: already recorded
            raise TaskNotYours(f"task {task_id!r} is {task.state.value.lower()}")
        job = self.jobs[task.job_id]
        now = self.clock()
        if rep.step == "progress":
            if rep.progress is not None:
                job.progress = rep.progress
            return
        if rep.step == "failed":
            await self._task_failed(worker, task, rep)
            return
        if rep.step in task.timings:
            return
        if task.state == TaskState.ASSIGNED:
            task.transition(TaskState.RUNNING, now)
        code, key = STEP_EVENTS[rep.step]
        task.timings[rep.step] = now
        if rep.seconds is not None:
            task.worker_seconds[rep.step] = rep.seconds
        if task.part != "chunk" or rep.step != "uploaded":  # a chunk's upload is not the output
            job.timings[key] = now
        if task.part == "chunk" and rep.step == "uploaded":
            code = "EV16"
        self.events.emit(code, request_id=job.id, worker_id=worker.id, task_id=task.id)
        if rep.step == "uploaded":
            if task.part == "chunk":
                await self._chunk_done(worker, task)
            else:
                await self._task_done(worker, task)
                if task.part == "merge":
                    self._clean_chunks(job)
            self.kick()
            return
        await self.store.save(jobs=(job,), tasks=(task,))

    async def _task_done(self: Controller, worker: Worker, task: Task) -> None:
        job = self.jobs[task.job_id]
        now = self.clock()
        task.transition(TaskState.DONE, now)
        job.transition(JobState.COMPLETED, now, f"done by {worker.id}")
        job.output, job.progress = output_name(job), 1.0
        worker.transition(WorkerState.IDLE, now, f"job {job.id} done")
        worker.job_id = worker.task_id = None
        worker.idle_since = now
        worker.jobs_done += 1
        work = work_units(job.input_duration, job.input_pixel_rate, job.speed.value)
        self.stats.task_done(worker.flavor.name, work, now - task.assigned_at)
        await self.store.save(jobs=(job,), workers=(worker,), tasks=(task,))

    async def _task_failed(self: Controller, worker: Worker, task: Task, rep: TaskReport) -> None:
        job = self.jobs[task.job_id]
        now = self.clock()
        message = (rep.message or "no reason given").strip()
        kind = rep.error_kind or "internal"
        if kind == "storage":
            # The input may have left the catalog since the job was accepted: no retry helps.
            try:
                gone = await asyncio.to_thread(self.storage.stat, input_key(job.id_video)) is None
            except StorageError:
                gone = False
            if gone:
                message = f"movie {job.id_video!r} is no longer in the catalog ({message})"
                kind = "transcoding"
        if worker.state == WorkerState.STOPPED or task.state not in (
            TaskState.ASSIGNED,
            TaskState.RUNNING,
        ):
            return  # stopped or lost meanwhile: that path already requeued the job
        task.transition(TaskState.FAILED, now, message)
        task.error = message
        worker.transition(WorkerState.IDLE, now, f"job {job.id} failed")
        worker.job_id = worker.task_id = None
        worker.idle_since = now
        code = "EV10" if rep.error_kind == "storage" else "EV9"
        self.events.emit(code, worker_id=worker.id, task_id=task.id, error_message=message)
        if kind == "transcoding":
            # ffmpeg refused this input or these parameters: another attempt would fail alike.
            job.errors.append(message)
            self._fail(job, f"transcoding failed: {message}")
        elif task.part is not None:
            self._requeue_part(job, task, f"{kind} error: {message}", charge=True)
        else:
            self._requeue_or_fail(job, f"{kind} error: {message}")
        await self.store.save(jobs=(job,), workers=(worker,), tasks=(task,))
        self.kick()
