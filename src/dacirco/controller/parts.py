"""Split jobs in the controller: a job the policy splits (``Split``) is encoded as K chunks
on any workers, then merged on one; each part is a task of its own.

A part waits in ``_parts`` (id ``<job>#<i>`` or ``<job>#merge``) and the policy sees it in
the view as a job (``JobView.part``) and assigns it like one. A chunk that fails or whose
worker is lost is retried alone; the job fails only when one part has used up its attempts
(or at once when ffmpeg refuses the input). The merge is queued when the last chunk is
uploaded, and the job completes when the merge has uploaded the output (EV7). A mixin of the
Controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

from dacirco.domain import Job, JobState, Task, TaskState, Worker, WorkerState, chunk_name
from dacirco.policies.base import JobView, Split
from dacirco.storage.base import StorageError, output_key

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

log = logging.getLogger(__name__)

MAX_CHUNKS = 16


def part_id(job_id: str, kind: str, index: int) -> str:
    return f"{job_id}#merge" if kind == "merge" else f"{job_id}#{index}"


class Parts:
    def part_views(self: Controller) -> list[JobView]:
        views = []
        for pid, (job_id, kind, _index) in self._parts.items():
            job = self.jobs[job_id]
            k = max(1, job.chunks)
            duration = job.input_duration / k if job.input_duration and kind == "chunk" else None
            views.append(
                JobView(
                    id=pid,
                    id_video=job.id_video,
                    bitrate=job.bitrate,
                    speed=job.speed.value,
                    received_at=job.received_at,
                    attempts=job.attempts,
                    input_duration=duration,
                    input_pixel_rate=job.input_pixel_rate,
                    part=kind,
                    parent_id=job.id,
                )
            )
        return views

    async def _apply_split(self: Controller, split: Split) -> bool:
        job = self.jobs.get(split.job_id)
        if job is None or job.state != JobState.WAITING or job.chunks:
            log.warning("refused %s: not a waiting job", split)
            return False
        if not 2 <= split.chunks <= MAX_CHUNKS or not (job.input_fps and job.input_frames):
            log.warning("refused %s: 2..%d chunks of a movie of known frames", split, MAX_CHUNKS)
            return False
        if split.chunks > job.input_frames:
            log.warning("refused %s: more chunks than frames", split)
            return False
        now = self.clock()
        job.chunks, job.chunks_done = split.chunks, []
        job.transition(JobState.STARTED, now, f"split in {split.chunks} chunks")
        self._waiting.pop(job.id, None)
        for i in range(1, split.chunks + 1):
            self._parts[part_id(job.id, "chunk", i)] = (job.id, "chunk", i)
        self.events.emit("EV15", request_id=job.id, chunks=split.chunks)
        await self.store.save(jobs=(job,))
        return True

    def _take_part(self: Controller, pid: str) -> tuple[Job, str, int] | None:
        entry = self._parts.get(pid)
        if entry is None:
            return None
        job = self.jobs[entry[0]]
        if job.state != JobState.STARTED:
            self._parts.pop(pid, None)
            return None
        del self._parts[pid]
        return job, entry[1], entry[2]

    async def _assign_part(self: Controller, pid: str, worker: Worker) -> None:
        taken = self._take_part(pid)
        if taken is None:
            log.warning("refused assignment of %s: no such part waiting", pid)
            return
        job, kind, index = taken
        now = self.clock()
        task = Task(
            id=str(uuid.uuid4()),
            job_id=job.id,
            worker_id=worker.id,
            assigned_at=now,
            part=kind,
            index=index,
        )
        job.timings.setdefault("assigned", now)
        worker.transition(WorkerState.BUSY, now, f"{kind} of job {job.id}")
        worker.job_id, worker.task_id, worker.idle_since = job.id, task.id, None
        self.tasks[task.id] = task
        self.events.emit("EV3", request_id=job.id, worker_id=worker.id, task_id=task.id)
        await self.store.save(jobs=(job,), workers=(worker,), tasks=(task,))
        self._wake_worker(worker.id)

    def _part_attempts(self: Controller, task: Task) -> int:
        return sum(
            1
            for t in self.tasks.values()
            if t.job_id == task.job_id and t.part == task.part and t.index == task.index
        )

    def _requeue_part(self: Controller, job: Job, task: Task, reason: str, charge: bool) -> None:
        """The part goes back to the queue alone; the job fails once it used its attempts."""
        attempts = self._part_attempts(task) - (0 if charge else 1)
        what = f"chunk {task.index}" if task.part == "chunk" else "merge"
        job.errors.append(f"{what}: {reason}")
        if charge and attempts >= job.max_attempts:
            self._fail(job, f"{what} gave up after {attempts} attempts: " + "; ".join(job.errors))
            return
        self._parts[part_id(job.id, task.part or "chunk", task.index)] = (
            job.id, task.part or "chunk", task.index,
        )  # fmt: skip
        self.events.emit("EV14", request_id=job.id, reason=f"{what}: {reason}")
        self.kick()

    async def _chunk_done(self: Controller, worker: Worker, task: Task) -> None:
        job = self.jobs[task.job_id]
        now = self.clock()
        task.transition(TaskState.DONE, now)
        if task.index not in job.chunks_done:
            job.chunks_done.append(task.index)
        job.progress = len(job.chunks_done) / (job.chunks + 1)
        worker.transition(WorkerState.IDLE, now, f"chunk {task.index} of job {job.id} done")
        worker.job_id = worker.task_id = None
        worker.idle_since = now
        if len(job.chunks_done) == job.chunks:
            self._parts[part_id(job.id, "merge", 0)] = (job.id, "merge", 0)
        await self.store.save(jobs=(job,), workers=(worker,), tasks=(task,))

    def _restore_parts(self: Controller, job: Job) -> None:
        """After a restart: the parts of a split job not done yet wait again."""
        for i in range(1, job.chunks + 1):
            if i not in job.chunks_done:
                self._parts[part_id(job.id, "chunk", i)] = (job.id, "chunk", i)
        if len(job.chunks_done) == job.chunks:
            self._parts[part_id(job.id, "merge", 0)] = (job.id, "merge", 0)

    def _drop_parts(self: Controller, job_id: str) -> None:
        for pid in [p for p, entry in self._parts.items() if entry[0] == job_id]:
            del self._parts[pid]

    def _clean_chunks(self: Controller, job: Job) -> None:
        """The merged output is there: the chunks go (best effort, off the event loop)."""

        async def clean() -> None:
            for i in range(1, job.chunks + 1):
                with contextlib.suppress(StorageError, OSError):
                    await asyncio.to_thread(self.storage.delete, output_key(chunk_name(job, i)))

        self.spawn(clean())
