"""What the public routes need, from a controller in this process or one reached over HTTP."""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx

from dacirco.api.schemas import JobCreate, JobPublic, Page, Timings, WorkerPublic
from dacirco.controller.core import Controller
from dacirco.controller.errors import ControllerError, NotFound, NotReady, StorageUnavailable
from dacirco.controller.events import iso
from dacirco.domain import Job, JobState, Worker
from dacirco.storage.base import StorageError, output_key


class ApiError(Exception):
    def __init__(self, status: int, detail: object) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


class Backend(Protocol):
    async def submit(self, body: JobCreate) -> str: ...
    async def jobs(self, limit: int, after: str | None) -> Page: ...
    async def job(self, job_id: str) -> JobPublic: ...
    async def workers(self, limit: int, after: str | None) -> Page: ...
    async def worker(self, worker_id: str) -> WorkerPublic: ...
    async def output_url(self, job_id: str) -> str: ...


def page(ids: list[str], limit: int, after: str | None, kind: str) -> Page:
    start = 0
    if after is not None:
        try:
            start = ids.index(after) + 1
        except ValueError:
            raise ApiError(404, f"after: {kind} {after!r} not found") from None
    chunk = ids[start : start + limit]
    return Page(items=chunk, has_more=start + limit < len(ids))


def _t(value: float | None) -> str | None:
    return iso(value) if value is not None else None


def job_public(job: Job) -> JobPublic:
    t = job.timings
    delay = None
    if job.state == JobState.COMPLETED and "uploaded" in t:
        delay = round(t["uploaded"] - job.received_at, 3)
    return JobPublic(
        id=job.id,
        id_video=job.id_video,
        bitrate=job.bitrate,
        speed=job.speed.value,
        codec=job.codec.value,
        state=job.state.value,
        attempts=job.attempts,
        worker_id=job.worker_id,
        progress=round(job.progress, 4),
        output=job.output,
        output_url=f"/jobs/{job.id}/output" if job.state == JobState.COMPLETED else None,
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
        ),
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
    )


class LocalBackend:
    """The controller runs in this process."""

    def __init__(self, controller: Controller) -> None:
        self.c = controller

    async def submit(self, body: JobCreate) -> str:
        try:
            job = await self.c.submit(body.id_video, body.bitrate, body.speed, body.codec)
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        return job.id

    async def jobs(self, limit: int, after: str | None) -> Page:
        return page(list(self.c.jobs), limit, after, "job")

    async def job(self, job_id: str) -> JobPublic:
        try:
            return job_public(self.c.job(job_id))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc

    async def workers(self, limit: int, after: str | None) -> Page:
        return page(list(self.c.workers), limit, after, "worker")

    async def worker(self, worker_id: str) -> WorkerPublic:
        try:
            return worker_public(self.c.worker(worker_id))
        except NotFound as exc:
            raise ApiError(404, str(exc)) from exc

    async def output_url(self, job_id: str) -> str:
        try:
            job = self.c.job(job_id)
            if job.state != JobState.COMPLETED or job.output is None:
                raise NotReady(f"job {job_id!r} is {job.state.value}: no output yet")
            try:
                return await asyncio.to_thread(
                    self.c.storage.get_url, output_key(job.output), 3600.0
                )
            except StorageError as exc:
                raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc


class RemoteBackend:
    """The controller runs apart (``dacirco controller``): forward to its API over HTTP."""

    def __init__(self, controller_url: str, timeout: float = 30.0) -> None:
        self.client = httpx.AsyncClient(base_url=controller_url.rstrip("/"), timeout=timeout)

    async def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            resp = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise ApiError(503, f"controller unreachable at {self.client.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise ApiError(resp.status_code, detail)
        return resp

    async def submit(self, body: JobCreate) -> str:
        resp = await self._call("POST", "/jobs", json=body.model_dump(mode="json"))
        return str(resp.json())

    async def jobs(self, limit: int, after: str | None) -> Page:
        params = {"limit": limit, **({"after": after} if after else {})}
        return Page.model_validate((await self._call("GET", "/jobs", params=params)).json())

    async def job(self, job_id: str) -> JobPublic:
        return JobPublic.model_validate((await self._call("GET", f"/jobs/{job_id}")).json())

    async def workers(self, limit: int, after: str | None) -> Page:
        params = {"limit": limit, **({"after": after} if after else {})}
        return Page.model_validate((await self._call("GET", "/workers", params=params)).json())

    async def worker(self, worker_id: str) -> WorkerPublic:
        resp = await self._call("GET", f"/workers/{worker_id}")
        return WorkerPublic.model_validate(resp.json())

    async def output_url(self, job_id: str) -> str:
        resp = await self._call("GET", f"/jobs/{job_id}/output", follow_redirects=False)
        location = resp.headers.get("location")
        if not location:
            raise ApiError(502, "controller gave no output location")
        return location

    async def aclose(self) -> None:
        await self.client.aclose()
