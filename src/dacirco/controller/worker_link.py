"""The controller's side of the worker protocol: register, long-poll for a task, step reports.

Each call becomes a step of the core (``Registered``, ``Reported``, ``Failed``); what needs
I/O first (signed URLs, a look at the catalog after a storage failure, a look at the storage
before an upload is believed) is done here, in a thread, before the step. A task's PUT URL is
not in its spec: the worker asks for it just before it uploads (``upload_url``), and it opens
the output only while the task is open. Reports are
idempotent: a step already recorded is acknowledged and ignored, so a worker may safely retry
a report whose answer it did not get (or that could not be stored).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dacirco.controller.changes import job_record
from dacirco.controller.events import iso
from dacirco.controller.streaming_tasks import streaming_fields, task_makes
from dacirco.core.errors import (
    ReportRefused,
    StorageUnavailable,
    TaskNotYours,
    WorkerAuthError,
    WorkerGone,
)
from dacirco.core.stimuli import Failed, Registered, Released, Reported
from dacirco.domain import (
    Job,
    Task,
    TaskState,
    Worker,
    WorkerState,
    chunk_name,
    task_output,
)
from dacirco.outputs.names import FILE_NAME_RE
from dacirco.protocol import (
    RegisterReply,
    RegisterRequest,
    SamplesReport,
    TaskReport,
    TaskSpec,
    UploadGrant,
    clip,
)
from dacirco.redact import redact
from dacirco.storage.base import (
    OUTPUT_PREFIX,
    ObjectInfo,
    StorageError,
    check_key,
    folder_of,
    input_key,
    output_key,
)

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

log = logging.getLogger(__name__)

OPEN = (TaskState.ASSIGNED, TaskState.RUNNING)  # a task whose worker may still upload


# An output's bytes, at most: its video at a few times the rate asked (ffmpeg caps it with
# -maxrate: measured within 20 %), its audio no bigger than the whole input (it may be
# copied), and room for the container.
VIDEO_OVERSHOOT = 4
CONTAINER_BYTES = 1 << 20


def plausible_size(job: Job) -> int | None:
    """The most bytes a task of ``job`` may upload, or None when the input's duration or
    size is not known."""
    if not job.input_duration or job.input_size is None:
        return None
    video = VIDEO_OVERSHOOT * job.input_duration * job.bitrate * 1000 / 8
    return int(video) + job.input_size + CONTAINER_BYTES


class WorkerLink:
    def authenticate(self: Controller, token: str | None) -> Worker:
        worker_id = self._tokens.get(token or "")
        if worker_id is None:
            raise WorkerAuthError("unknown or revoked worker token")
        worker = self.workers.get(worker_id)
        if worker is None:  # forgotten by retention since
            raise WorkerAuthError("unknown or revoked worker token")
        worker.last_seen = self.clock()  # the heartbeat: memory only
        return worker

    async def register(self: Controller, worker: Worker, req: RegisterRequest) -> RegisterReply:
        if req.worker_id != worker.id:
            raise WorkerAuthError("this token belongs to another worker")
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        if worker.state == WorkerState.BOOTING:
            await self.step(Registered(worker.id, req.node, req.cpus, req.memory_gb))
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
                spec = await self._spec_or_failure(worker, task)
                if spec is not None:
                    return spec
                continue  # the task failed: its job says why; the worker waits for another
            if task is not None and task.state == TaskState.CANCELED:
                # Asking for more: it has dropped its canceled task.
                await self.step(Released(worker.id, task.id))
                continue
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

    async def watch_task(self: Controller, worker: Worker, task_id: str, wait: float) -> str:
        """The task's state as soon as it is canceled, or after ``wait`` seconds: a worker
        watches its task while it works, to drop it at once when its job is canceled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(wait, 60.0))
        while True:
            if worker.state == WorkerState.STOPPED:
                raise WorkerGone("this worker was stopped")
            task = self.tasks.get(task_id)
            if task is None or task.worker_id != worker.id:
                raise TaskNotYours(f"task {task_id!r} is not assigned to this worker")
            event = self._wake.get(worker.id)
            remaining = deadline - loop.time()
            if task.state == TaskState.CANCELED or event is None or remaining <= 0 or self.draining:
                return task.state.value
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return task.state.value
            finally:
                worker.last_seen = self.clock()

    def _progress_webhook(self: Controller, job: Job) -> None:
        """A job's progress to its webhooks, at most every ``webhook_progress_interval``
        seconds: news, sent once, not stored."""
        urls = tuple(dict.fromkeys(u for u in (job.callback_url, self.webhook) if u))
        if self.deliverer is None or not urls:
            return
        now = self.clock()
        if now - self._progress_sent.get(job.id, float("-inf")) < (
            self.config.webhook_progress_interval
        ):
            return
        self._progress_sent[job.id] = now
        body = json.dumps(
            {"event_id": f"{job.id}:progress:{now:.3f}", "type": "job.progress", "at": iso(now)}
            | {"kind": "job", "id": job.id, "state": job.state.value, "job": job_record(job)}
        )
        for url in urls:
            self.deliverer.progress(f"{job.id}:progress:{now:.3f}", url, body)

    async def _spec_or_failure(self: Controller, worker: Worker, task: Task) -> TaskSpec | None:
        """The task as the worker gets it, or None when it cannot be made: then the task has
        failed (a step), so that its job says why at once instead of the poll answering 500
        until the worker gives up. Names or URLs that cannot be made fail the job (no retry
        helps); a storage that cannot sign counts as a storage failure (retried)."""
        try:
            return await self._task_spec(worker, task)
        except StorageError as exc:
            kind, message = "storage", f"cannot sign the task's URLs: {exc}"
        except ValueError as exc:  # InvalidKey, a TaskSpec field out of its bounds
            kind, message = "unrunnable", str(exc)
        except Exception as exc:
            log.exception("task %s: its spec could not be made", task.id)
            kind, message = "internal", f"its spec could not be made: {type(exc).__name__}: {exc}"
        message = clip(" ".join(message.split()))  # one line, bounded, as a worker's would be
        log.warning("task %s cannot be handed out (%s): %s", task.id, kind, message)
        await self.step(Failed(worker.id, task.id, kind, message))
        return None

    async def upload_url(
        self: Controller, worker: Worker, task_id: str, names: list[str] | None = None
    ) -> UploadGrant:
        """The PUT URL of an open task's output, valid ``upload_url_ttl`` seconds; of each
        file in ``names`` for a streaming task (in its output's folder)."""
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        task = self.tasks.get(task_id)
        if task is None or task.worker_id != worker.id:
            raise TaskNotYours(f"task {task_id!r} is not assigned to this worker")
        if task.state not in OPEN:
            raise TaskNotYours(f"task {task_id!r} is no longer open ({task.state.value})")
        job = self.jobs[task.job_id]
        name, ttl = task_output(job, task), self.config.upload_url_ttl
        if names:
            mine = task_makes(job, task)
            keys = {n: folder_key(name, n, mine) for n in names}  # ReportRefused: a 422
            urls = await asyncio.to_thread(
                lambda: {n: self.storage.put_url(k, ttl, task.id) for n, k in keys.items()}
            )
            return UploadGrant(urls=urls, expires_in=ttl)
        url = await asyncio.to_thread(self.storage.put_url, output_key(name), ttl, task.id)
        return UploadGrant(url=url, expires_in=ttl)

    def upload_refusal(self: Controller, task_id: str, key: str) -> str | None:
        """Why an upload URL of ``task_id`` may not write ``key`` now, or None: the files
        route asks before it reads a byte and before the upload replaces anything."""
        task = self.tasks.get(task_id)
        if task is None or task.state not in OPEN:
            state = f" ({task.state.value})" if task is not None else ""
            return f"the task of this upload URL is no longer open{state}"
        name = task_output(self.jobs[task.job_id], task)
        folder = folder_of(name)
        if output_key(name) != key and not (
            folder is not None and key.rpartition("/")[0] == OUTPUT_PREFIX + folder
        ):
            return "this upload URL is for another object"
        return None

    async def _task_spec(self: Controller, worker: Worker, task: Task) -> TaskSpec:
        job = self.jobs[task.job_id]
        out = task_output(job, task)
        check_key(output_key(out))  # a name too long for the storage: said as such
        ttl = self.config.url_ttl
        get_url = await asyncio.to_thread(self.storage.get_url, input_key(job.id_video), ttl)
        chunk_urls = []
        if job.outputs:
            streaming = await streaming_fields(self.storage, job, task, ttl)
        elif task.part == "merge":
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
            outputs=job.outputs,
            quality=job.quality,
            **(streaming if job.outputs else {}),
        )

    async def report(self: Controller, worker: Worker, task_id: str, rep: TaskReport) -> None:
        if worker.state == WorkerState.STOPPED:
            raise WorkerGone("this worker was stopped")
        task = self.tasks.get(task_id)
        if task is None or task.worker_id != worker.id:
            raise TaskNotYours(f"task {task_id!r} is not assigned to this worker")
        if rep.step == "progress":
            job = self.jobs[task.job_id]
            open_task = task.state in (TaskState.ASSIGNED, TaskState.RUNNING)
            if rep.progress is not None and open_task and task.part is None:
                # Memory only: not worth a write. Jobs attached to it (reuse) show it too.
                for fid in (job.id, *self.core.state.followers.get(job.id, ())):
                    self.jobs[fid].progress = rep.progress
                    self._progress_webhook(self.jobs[fid])
            return
        if rep.step == "failed":
            gone = False
            if rep.error_kind == "storage" and task.state in (
                TaskState.ASSIGNED,
                TaskState.RUNNING,
            ):
                # The input may have left the catalog since the job was accepted: no retry helps.
                job = self.jobs[task.job_id]
                try:
                    info = await asyncio.to_thread(self.storage.stat, input_key(job.id_video))
                    gone = info is None
                except StorageError:
                    gone = False
            message = redact(rep.message or "")  # it goes to the event log and the API
            await self.step(Failed(worker.id, task_id, rep.error_kind or "internal", message, gone))
            return
        if rep.step == "uploaded" and task.state in (TaskState.ASSIGNED, TaskState.RUNNING):
            await self._check_upload(task, rep)
        quality = rep.quality.model_dump() if rep.quality is not None else None
        await self.step(Reported(worker.id, task_id, rep.step, rep.seconds, quality))

    async def _check_upload(self: Controller, task: Task, rep: TaskReport) -> None:
        """An ``uploaded`` report is believed once the storage holds the object (looked at in
        a thread), not empty, as big as the worker says and no bigger than the job can make
        (``plausible_size``); else it is refused (422) and the worker fails the task. A storage
        that cannot be asked gives 503: the worker retries the report."""
        job = self.jobs[task.job_id]
        try:
            key = output_key(task_output(job, task))
        except ValueError as exc:
            raise ReportRefused(f"uploaded: {exc}") from None
        try:
            info = await asyncio.to_thread(self.storage.stat, key)
        except StorageError as exc:
            raise StorageUnavailable(f"uploaded: cannot look at {key}: {exc}") from exc
        if info is None:
            raise ReportRefused(f"uploaded: {key} is not in the storage")
        if job.outputs:  # a streaming job: its main file is there; its files are measured
            info = await self._folder_size(key, task_makes(job, task))
        if info.size <= 0:
            raise ReportRefused(f"uploaded: {key} is empty")
        if rep.bytes is not None and rep.bytes != info.size:
            raise ReportRefused(
                f"uploaded: {key} holds {info.size} bytes, not the {rep.bytes} reported"
            )
        most = plausible_size(job)
        if most is not None and info.size > most:
            raise ReportRefused(
                f"uploaded: {key} holds {info.size} bytes, more than this job can make "
                f"({most} bytes at most)"
            )

    async def _folder_size(self: Controller, key: str, mine: Callable[[str], bool]) -> ObjectInfo:
        """A streaming task's files as one object: the bytes of those it makes, summed."""
        folder = key.rpartition("/")[0] + "/"
        try:
            infos = await asyncio.to_thread(self.storage.list, folder, False)
        except StorageError as exc:
            raise StorageUnavailable(f"uploaded: cannot list {folder}: {exc}") from exc
        size = sum(i.size for i in infos if mine(i.key.rpartition("/")[2]))
        return ObjectInfo(folder, size, 0.0)


def folder_key(name: str, file: str, mine: Callable[[str], bool]) -> str:
    """The key of ``file`` in the folder of a streaming task's output ``name``; ``mine``:
    whether the task makes that file (a part makes its own renditions' alone)."""
    folder = folder_of(name)
    if folder is None:
        raise ReportRefused("upload-url: this task has one output: it names no files")
    if not FILE_NAME_RE.fullmatch(file):
        raise ReportRefused(f"upload-url: {file[:80]!r} is not a file a streaming task makes")
    if not mine(file):
        raise ReportRefused(f"upload-url: {file[:80]!r} is not a file this part makes")
    return output_key(f"{folder}/{file}")
