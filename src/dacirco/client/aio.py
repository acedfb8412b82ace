"""``AsyncClient``: the public API over ``httpx.AsyncClient``; the same methods as
:class:`~dacirco.client.sync.Client`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
from httpx_sse import aconnect_sse

from dacirco.api.schemas import JobPublic, OutputsPublic, Page, WorkerPublic
from dacirco.client import calls, sse
from dacirco.client.calls import DEFAULT_CODEC, DEFAULT_URL, FINAL_STATES, Call
from dacirco.client.errors import Unavailable, WaitTimeout, error_for, unreachable
from dacirco.client.sse import Event
from dacirco.outputs.presets import PresetPublic, PresetsPublic


class AsyncClient:
    """The job and worker routes of a DaCirco service, for asyncio; see ``Client``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        extra: dict[str, Any] = {"limits": limits} if limits is not None else {}
        self.http = httpx.AsyncClient(
            transport=transport, **calls.client_args(base_url, token, timeout), **extra
        )
        # Signed download URLs carry their own proof: no API token goes with them.
        self._files = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()
        await self._files.aclose()

    async def _send(self, call: Call) -> httpx.Response:
        try:
            resp = await self.http.request(call.method, call.path, **call.send_args())
        except httpx.TransportError as exc:
            raise unreachable(exc, self.base_url) from exc
        return calls.checked(resp, call)

    # ---- jobs ------------------------------------------------------------------------------
    async def submit(
        self,
        id_video: str,
        bitrate: int | None,
        speed: str | None,
        codec: str = DEFAULT_CODEC,
        priority: int | None = None,
        callback_url: str | None = None,
        reuse: bool | None = None,
        *,
        preset: str | None = None,
        quality: bool | None = None,
        thumbnails_every: float | None = None,
    ) -> str:
        """Submit a job; its id (optional fields sent only when given; ``preset``: a
        streaming job, whose bitrates are the preset's)."""
        call = calls.submit_call(
            id_video, bitrate, speed, codec, priority, callback_url, reuse,
            preset=preset, quality=quality, thumbnails_every=thumbnails_every,
        )  # fmt: skip
        return calls.text(await self._send(call), "a job id")

    async def outputs(self, job_id: str) -> OutputsPublic:
        """A completed streaming job's files, playlists and thumbnails, with signed URLs;
        ``Conflict`` for a classic job or one not completed."""
        return calls.model(await self._send(calls.outputs_call(job_id)), OutputsPublic)

    async def jobs(self, limit: int | None = None, after: str | None = None) -> Page:
        return calls.model(await self._send(calls.page_call("jobs", limit, after)), Page)

    def iter_jobs(self, page_size: int | None = None) -> AsyncIterator[str]:
        """Every job id, oldest first, following the pages."""
        return self._iter("jobs", page_size)

    async def job(self, job_id: str) -> JobPublic:
        return calls.model(await self._send(Call("GET", calls.job_path(job_id))), JobPublic)

    async def state(self, job_id: str) -> str:
        resp = await self._send(Call("GET", calls.job_path(job_id) + "/state"))
        return calls.text(resp, "a state")

    async def output_url(self, job_id: str) -> str:
        call = Call("GET", calls.job_path(job_id) + "/output", redirect=True)
        return calls.location(await self._send(call))

    async def download(self, job_id: str, path: str | Path) -> Path:
        """Stream a completed job's output into ``path`` (a file, or a folder)."""
        url = await self.output_url(job_id)
        target = calls.download_target(path, url)
        part = target.with_name(f".{target.name}.part")
        try:
            async with self._files.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise error_for(resp)
                async with await anyio.open_file(part, "wb") as out:
                    async for chunk in resp.aiter_bytes():
                        await out.write(chunk)
            part.replace(target)
        except httpx.TransportError as exc:
            raise unreachable(exc, url) from exc
        finally:
            part.unlink(missing_ok=True)
        return target

    async def cancel(self, job_id: str) -> JobPublic:
        """``DELETE /jobs/{id}``: the job's body, state ``Canceled``."""
        return calls.model(await self._send(Call("DELETE", calls.job_path(job_id))), JobPublic)

    async def wait(self, job_id: str, timeout: float | None = None, poll: float = 1.0) -> JobPublic:
        """Poll the job until it is Completed, Error or Canceled (``WaitTimeout`` after
        ``timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            job = await self.job(job_id)
            if job.state in FINAL_STATES:
                return job
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    raise WaitTimeout(job, timeout or 0.0)
                await asyncio.sleep(min(poll, left))
            else:
                await asyncio.sleep(poll)

    # ---- workers ---------------------------------------------------------------------------
    async def workers(self, limit: int | None = None, after: str | None = None) -> Page:
        return calls.model(await self._send(calls.page_call("workers", limit, after)), Page)

    def iter_workers(self, page_size: int | None = None) -> AsyncIterator[str]:
        return self._iter("workers", page_size)

    async def worker(self, worker_id: str) -> WorkerPublic:
        resp = await self._send(Call("GET", calls.worker_path(worker_id)))
        return calls.model(resp, WorkerPublic)

    async def worker_state(self, worker_id: str) -> str:
        resp = await self._send(Call("GET", calls.worker_path(worker_id) + "/state"))
        return calls.text(resp, "a state")

    async def _iter(self, kind: str, page_size: int | None) -> AsyncIterator[str]:
        after: str | None = None
        while True:
            page = calls.model(await self._send(calls.page_call(kind, page_size, after)), Page)
            for item in page.items:
                yield item
            if not page.has_more or not page.items:
                return
            after = page.items[-1]

    # ---- presets ---------------------------------------------------------------------------
    async def presets(self) -> PresetsPublic:
        """Every preset, the shipped ones first."""
        return calls.model(await self._send(Call("GET", "/presets")), PresetsPublic)

    async def preset(self, name: str) -> PresetPublic:
        return calls.model(await self._send(Call("GET", calls.preset_path(name))), PresetPublic)

    async def put_preset(self, name: str, body: dict[str, Any]) -> PresetPublic:
        """Add or replace an operator's preset (the body of ``PUT /presets/{name}``)."""
        resp = await self._send(Call("PUT", calls.preset_path(name), json=body))
        return calls.model(resp, PresetPublic)

    async def delete_preset(self, name: str) -> None:
        await self._send(Call("DELETE", calls.preset_path(name)))

    # ---- the service -----------------------------------------------------------------------
    async def metrics_text(self) -> str:
        return (await self._send(Call("GET", "/metrics"))).text

    async def health(self) -> bool:
        return calls.healthy(await self._send(Call("GET", "/health")))

    async def events(
        self, job: str | None = None, after: int | None = None, *, reconnect: bool = True
    ) -> AsyncIterator[Event]:
        """The event stream, resumed with ``Last-Event-ID``; see ``Client.events``."""
        last: int | None = None
        delay = sse.RETRY
        failures = 0
        connected = False
        while True:
            args = sse.stream_args(job, after, last, self.timeout)
            try:
                async with aconnect_sse(self.http, "GET", "/events", **args) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                    sse.check_stream(source.response)
                    connected, failures = True, 0
                    async for message in source.aiter_sse():
                        delay = sse.retry_delay(message, delay)
                        event = sse.parse_event(message)
                        if event is None:
                            continue
                        last = event.seq
                        yield event
                        if sse.done(event, job):
                            return
            except (httpx.TransportError, Unavailable) as exc:
                failures += 1
                if not (reconnect and connected) or failures > sse.MAX_RETRIES:
                    if isinstance(exc, Unavailable):
                        raise
                    raise unreachable(exc, self.base_url) from exc
            if not reconnect:
                return
            await asyncio.sleep(delay)
