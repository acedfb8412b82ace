"""What the public routes need, from a controller in this process or one reached over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from dacirco.api.job_figures import JobFigures, job_figures
from dacirco.api.responses import error_fields
from dacirco.api.schemas import JobCreate, JobPublic, Page, Timings, WorkerPublic
from dacirco.controller.changes import sse
from dacirco.controller.core import Controller
from dacirco.controller.errors import (
    ControllerError,
    NotFound,
    NotReady,
    StorageUnavailable,
)
from dacirco.controller.events import iso
from dacirco.domain import Job, JobState, Worker
from dacirco.storage.base import StorageError, output_key

M = TypeVar("M", bound=BaseModel)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
    async def cancel(self, job_id: str) -> JobPublic: ...
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


def _segment(value: str) -> str:
    """``value`` as one path segment: nothing in it may end the path or walk out of it."""
    if value in (".", ".."):
        return "%2E" * len(value)  # quote() keeps dots, and "." would be normalised away
    return quote(value, safe="")


def _page_params(limit: int | None, after: str | None) -> dict[str, object]:
    params: dict[str, object] = {}
    if limit is not None:
        params["limit"] = limit
    if after:
        params["after"] = after
    return params


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
    )


class LocalBackend:
    """The controller runs in this process."""

    def __init__(self, controller: Controller) -> None:
        self.c = controller

    async def submit(self, body: JobCreate) -> str:
        try:
            job = await self.c.submit(
                body.id_video,
                body.bitrate,
                body.speed,
                body.codec,
                priority=body.priority,
                callback_url=body.callback_url,
                reuse=body.reuse,
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
        return job_public(job, figures)

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
            try:
                return await asyncio.to_thread(
                    self.c.storage.get_url, output_key(job.output), 3600.0
                )
            except StorageError as exc:
                raise StorageUnavailable(f"storage is unavailable: {exc}") from exc
        except ControllerError as exc:
            raise ApiError(exc.status, str(exc)) from exc


class RemoteBackend:
    """The controller runs apart (``dacirco controller``): forward to its API over HTTP.

    Ids are quoted into one path segment each. An answer the controller should not give (a
    redirect where none is expected, a body that is not JSON or not of the expected shape) is
    a 502, never a 500.
    """

    def __init__(
        self,
        controller_url: str,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.client = httpx.AsyncClient(
            base_url=controller_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers=headers,
        )

    async def _call(
        self, method: str, path: str, *, redirect: bool = False, **kwargs: object
    ) -> httpx.Response:
        try:
            resp = await self.client.request(
                method,
                path,
                follow_redirects=False,
                **kwargs,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise ApiError(503, f"controller unreachable at {self.client.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            raise _refusal(resp, method, path)
        if (300 <= resp.status_code < 400) != redirect:
            where = resp.headers.get("location")
            what = f"{resp.status_code} to {where}" if where else str(resp.status_code)
            raise _invalid(f"{method} {path} answered {what}")
        return resp

    @staticmethod
    def _model(resp: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                for e in exc.errors()
            )
            raise _invalid(f"{resp.request.method} {resp.request.url.path}: {errors}") from exc

    async def submit(self, body: JobCreate) -> str:
        # Fields left at their defaults are not sent: a classic controller keeps working.
        data = body.model_dump(mode="json", exclude_defaults=True)
        data.update(body.model_dump(mode="json", include={"id_video", "bitrate", "speed"}))
        resp = await self._call("POST", "/jobs", json=data)
        try:
            job_id = resp.json()
        except ValueError:
            job_id = None
        if not isinstance(job_id, str) or not job_id:
            raise _invalid(f"POST /jobs answered {resp.text[:100]!r}, not a job id")
        return job_id

    async def jobs(self, limit: int | None, after: str | None) -> Page:
        resp = await self._call("GET", "/jobs", params=_page_params(limit, after))
        return self._model(resp, Page)

    async def job(self, job_id: str) -> JobPublic:
        return self._model(await self._call("GET", f"/jobs/{_segment(job_id)}"), JobPublic)

    async def cancel(self, job_id: str) -> JobPublic:
        return self._model(await self._call("DELETE", f"/jobs/{_segment(job_id)}"), JobPublic)

    async def events(
        self, job_id: str | None, after: int | None, follow: bool = True
    ) -> AsyncIterator[bytes]:
        """The controller's stream, passed through as it comes."""
        params: dict[str, object] = {"follow": "true" if follow else "false"}
        if job_id is not None:
            params["job"] = job_id
        if after is not None:
            params["after"] = after
        request = self.client.build_request(
            "GET", "/events", params=params, timeout=httpx.Timeout(30.0, read=None)
        )
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(503, f"controller unreachable at {self.client.base_url}: {exc}") from exc
        if resp.status_code != 200:
            await resp.aread()
            await resp.aclose()
            if resp.status_code >= 400:
                raise _refusal(resp, "GET", "/events")
            raise _invalid(f"GET /events answered {resp.status_code}")

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the controller went away: the client reconnects with Last-Event-ID
            finally:
                await resp.aclose()

        return stream()

    async def workers(self, limit: int | None, after: str | None) -> Page:
        resp = await self._call("GET", "/workers", params=_page_params(limit, after))
        return self._model(resp, Page)

    async def worker(self, worker_id: str) -> WorkerPublic:
        resp = await self._call("GET", f"/workers/{_segment(worker_id)}")
        return self._model(resp, WorkerPublic)

    async def output_url(self, job_id: str) -> str:
        resp = await self._call("GET", f"/jobs/{_segment(job_id)}/output", redirect=True)
        location = resp.headers.get("location")
        if not location:
            raise _invalid("no output location")
        return location

    async def aclose(self) -> None:
        await self.client.aclose()


def _refusal(resp: httpx.Response, method: str, path: str) -> ApiError:
    """The controller's refusal, as this API answers it."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail, message = error_fields(body, resp.text)
    if resp.status_code in (401, 403):
        # The controller refused this API's own token: the client can do nothing.
        return _invalid(
            f"{method} {path} refused this API's controller token "
            f"({resp.status_code}: {message or detail}); check --controller-token"
        )
    retry = resp.headers.get("retry-after")
    headers = {"Retry-After": retry} if resp.status_code in (429, 503) and retry else None
    return ApiError(resp.status_code, detail, message, headers)


def _invalid(what: str) -> ApiError:
    return ApiError(502, one_line(f"controller gave an invalid answer: {what}"))
