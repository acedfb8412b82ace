"""What the public routes need, from a controller in this process or one reached over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi.responses import JSONResponse

from dacirco.api.job_figures import JobFigures, job_figures
from dacirco.api.playback import Playback
from dacirco.api.schemas import (
    JobCreate,
    JobPublic,
    OutputsPublic,
    Page,
    Timings,
    WorkerPublic,
)
from dacirco.controller.changes import sse
from dacirco.controller.core import Controller
from dacirco.controller.errors import (
    ControllerError,
    NotFound,
    NotReady,
    StorageUnavailable,
)
from dacirco.controller.events import iso
from dacirco.domain import Job, JobState, Speed, Worker, rendition_parts, shown
from dacirco.outputs.names import media_type
from dacirco.outputs.part_files import partials
from dacirco.outputs.presets import PresetBody, PresetPublic, PresetsPublic, public
from dacirco.storage.base import StorageError, folder_of, output_key
from dacirco.storage.signing import UrlSigner


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_answer(status: int, detail: object, message: str, headers: Any = None) -> JSONResponse:
    """Every error answer: ``detail`` (as it always was) and a one-line ``message``."""
    return JSONResponse(
        status_code=status,
        content={"detail": detail, "message": one_line(message, 1000)},
        headers=headers,
    )


class ApiError(Exception):
    """An answer of the public API: a status, a ``detail`` and a one-line ``message``."""

    def __init__(
        self,
        status: int,
        detail: object,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.message = one_line(message if message is not None else detail)
        self.headers = headers  # Retry-After on a 429


def error_headers(exc: ControllerError) -> dict[str, str] | None:
    """The headers a controller error's answer carries: ``Retry-After`` when the queue is full
    (429) or a change could not be stored (503)."""
    retry = getattr(exc, "retry_after", None)
    if isinstance(retry, int):
        return {"Retry-After": str(retry)}
    return None


class Backend(Protocol):
    async def submit(self, body: JobCreate) -> str: ...
    async def jobs(self, limit: int | None, after: str | None) -> Page: ...
    async def job(self, job_id: str) -> JobPublic: ...
    async def workers(self, limit: int | None, after: str | None) -> Page: ...
    async def worker(self, worker_id: str) -> WorkerPublic: ...
    async def output_url(self, job_id: str) -> str: ...
    async def outputs(self, job_id: str) -> OutputsPublic: ...
    async def cancel(self, job_id: str) -> JobPublic: ...
    async def presets(self) -> PresetsPublic: ...
    async def preset(self, name: str) -> PresetPublic: ...
    async def put_preset(self, name: str, body: PresetBody) -> tuple[PresetPublic, bool]: ...
    async def delete_preset(self, name: str) -> None: ...
    async def events(
        self, job_id: str | None, after: int | None, follow: bool = True
    ) -> AsyncIterator[bytes]: ...


DEFAULT_PAGE = 1000  # ids in a page when the client gives no ``limit``


def page(ids: list[str], limit: int | None, after: str | None, kind: str) -> Page:
    """One page of ``ids`` after the id ``after``, of ``limit`` ids (``DEFAULT_PAGE`` when
    None): ``has_more`` says whether the client should ask again with ``after`` = its last.

    An empty ``after`` is the same as none (``?after=`` is how some clients send "nothing").
    """
    start = 0
    if after:
        try:
            start = ids.index(after) + 1
        except ValueError:
            raise ApiError(404, f"after: {kind} {after!r} not found") from None
    limit = DEFAULT_PAGE if limit is None else limit
    chunk = ids[start : start + limit]
    return Page(items=chunk, has_more=start + limit < len(ids))


def _t(value: float | None) -> str | None:
    return iso(value) if value is not None else None


def job_public(job: Job, figures: JobFigures | None = None, leader: Job | None = None) -> JobPublic:
    """``leader``: the job it is attached to, whose progress it shows."""
    t = job.timings
    ready = job.ready_at()
    delay = None if ready is None else round(ready - job.received_at, 3)
    return JobPublic(
        id=job.id,
        id_video=job.id_video,
        bitrate=job.bitrate,
        speed=job.speed.value,
        codec=job.codec.value,
        preset=job.preset,
        outputs=job.outputs,
        state=job.state.value,
        priority=job.priority,
        callback_url=job.callback_url,
        reuse=job.reuse,
        reused_from=job.reused_from,
        attempts=job.attempts,
        worker_id=job.worker_id,
        progress=round(job.progress, 4),
        output=job.output,
        output_url=f"/jobs/{job.id}/output" if job.state == JobState.COMPLETED else None,
        outputs_url=f"/jobs/{job.id}/outputs"
        if job.outputs and job.state == JobState.COMPLETED
        else None,
        error=job.error,
        errors=list(job.errors),
        input_duration=job.input_duration,
        delay=delay,
        timings=Timings(
            received=_t(job.received_at),
            assigned=_t(t.get("assigned")),
            started=_t(t.get("started")),
            downloaded=_t(t.get("downloaded")),
            transcoded=_t(t.get("transcoded")),
            uploaded=_t(t.get("uploaded")),
            failed=_t(t.get("failed")),
            canceled=_t(t.get("canceled")),
            reused=_t(t.get("reused")),
        ),
        thumbnails=job.thumbnails,
        quality=job.quality,
        quality_figures=job.quality_figures,
        figures=figures,
    )


def worker_public(worker: Worker) -> WorkerPublic:
    return WorkerPublic(
        name=worker.name,
        id=worker.id,
        cpus=str(worker.cpus if worker.cpus is not None else worker.flavor.cpus),
        memory=f"{worker.memory_gb if worker.memory_gb is not None else worker.flavor.memory_gb:g}",
        node=worker.node or "",
        flavor=worker.flavor.name,
        state=worker.state.value,
        created_at=iso(worker.created_at),
        registered_at=_t(worker.registered_at),
        stopped_at=_t(worker.stopped_at),
        job_id=worker.job_id,
        jobs_done=worker.jobs_done,
        stop_reason=worker.stop_reason,
        preemptible=worker.preemptible,
        preempted=worker.preempted,
    )


class LocalBackend:
    """The controller runs in this process."""

    def __init__(self, controller: Controller, playback: Playback | None = None) -> None:
        self.c = controller
        self._playback = playback

    @property
    def playback(self) -> Playback:
        if self._playback is None:  # a backend made without the app's (tests)
            self._playback = Playback(self.c.storage, UrlSigner(), self.c.config.controller_url)
        return self._playback

    async def submit(self, body: JobCreate) -> str:
        preset = None
        if body.preset is not None:
            preset = await self.c.presets.get(body.preset)
            if preset is None:
                known = await self.c.presets.known()
                raise ApiError(422, f"preset: unknown preset {shown(body.preset)} (known: {known})")
        # Streaming outputs are passed only when asked for: a classic call stays as it was.
        streaming = body.streaming(preset)
        extra: dict[str, Any] = {}
        if streaming is not None:
            extra |= {"outputs": streaming, "preset": body.preset}
        if body.wants_quality(preset):
            extra["quality"] = True
        if (thumbnails := body.wants_thumbnails(preset)) is not None:
            extra["thumbnails"] = thumbnails
        try:
            job = await self.c.submit(
                body.id_video,
                body.bitrate or 0,
                body.speed or Speed.FAST,
                body.codec,
                priority=body.priority,
                callback_url=body.callback_url,
                reuse=body.reuse,
                **extra,
            )
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc), headers=error_headers(exc)) from exc
        return job.id

    async def jobs(self, limit: int | None, after: str | None) -> Page:
        try:
            items, more = await self.c.job_ids(DEFAULT_PAGE if limit is None else limit, after)
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc
        return Page(items=items, has_more=more)

    async def job(self, job_id: str) -> JobPublic:
        try:
            job, tasks = await self.c.find_job(job_id)
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc
        figures = job_figures(job, tasks, self.c.workers, self.c.clock())
        public = job_public(job, figures)
        if job.quality and job.reused_from and job.quality_figures is None:
            with contextlib.suppress(NotFound):  # its source's output, its source's figures
                source, _ = await self.c.find_job(job.reused_from)
                public.quality_figures = job_public(source).quality_figures
        return public

    async def cancel(self, job_id: str) -> JobPublic:
        try:
            await self.c.cancel(job_id)
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc), headers=error_headers(exc)) from exc
        return await self.job(job_id)

    async def events(
        self, job_id: str | None, after: int | None, follow: bool = True
    ) -> AsyncIterator[bytes]:
        if job_id is not None:
            await self.job(job_id)  # 404 before the stream starts

        async def stream() -> AsyncIterator[bytes]:
            yield b": stream of job and worker changes\n\n"
            async for item in self.c.changes(after, job_id, follow=follow):
                yield b": keepalive\n\n" if item is None else sse(*item)

        return stream()

    async def workers(self, limit: int | None, after: str | None) -> Page:
        return page(list(self.c.workers), limit, after, "worker")

    async def worker(self, worker_id: str) -> WorkerPublic:
        try:
            return worker_public(self.c.worker(worker_id))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc

    async def output_url(self, job_id: str) -> str:
        try:
            job, _ = await self.c.find_job(job_id)
            if job.state != JobState.COMPLETED or job.output is None:
                what = "no output yet" if job.state.value in ("Waiting", "Started") else "no output"
                raise NotReady(f"job {job_id!r} is {job.state.value}: {what}")
            folder, _, name = job.output.rpartition("/")
            try:
                if folder and media_type(name):  # a streaming job's playlist: playable
                    return self.playback.play_url(folder, name)
                return await asyncio.to_thread(
                    self.c.storage.get_url, output_key(job.output), 3600.0
                )
            except StorageError as exc:
                raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc

    async def presets(self) -> PresetsPublic:
        return PresetsPublic(items=[public(p) for p in (await self.c.presets.all()).values()])

    async def preset(self, name: str) -> PresetPublic:
        found = await self.c.presets.get(name)
        if found is None:
            raise ApiError(404, f"preset {shown(name)} not found")
        return public(found)

    async def put_preset(self, name: str, body: PresetBody) -> tuple[PresetPublic, bool]:
        try:
            new = await self.c.presets.put(name, body)
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        return await self.preset(name), new

    async def delete_preset(self, name: str) -> None:
        try:
            await self.c.presets.delete(name)
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc

    async def outputs(self, job_id: str) -> OutputsPublic:
        try:
            job, _ = await self.c.find_job(job_id)
            folder = folder_of(job.output or "")
            if not job.outputs and (job.state == JobState.COMPLETED or job.output):
                raise NotReady(
                    f"job {job_id!r} has one output, no streaming outputs: "
                    f"GET /jobs/{job_id}/output"
                )
            if job.state != JobState.COMPLETED or folder is None:
                raise NotReady(f"job {job_id!r} is {job.state.value}: no outputs yet")
            try:
                hidden = frozenset(
                    partials(job.outputs, rendition_parts(job)) if job.chunks else ()
                )
                return await asyncio.to_thread(self.playback.listing, job.id, folder, hidden)
            except StorageError as exc:
                raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc
