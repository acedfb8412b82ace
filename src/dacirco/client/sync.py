"""``Client``: the public API over ``httpx.Client`` (blocking)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from dacirco.api.schemas import JobPublic, OutputsPublic, Page, WorkerPublic
from dacirco.client import calls, sse
from dacirco.client.calls import DEFAULT_CODEC, DEFAULT_URL, FINAL_STATES, Call
from dacirco.client.errors import Unavailable, WaitTimeout, error_for, unreachable
from dacirco.client.sse import Event
from dacirco.outputs.presets import PresetPublic, PresetsPublic


class Client:
    """The job and worker routes of a DaCirco service; every error answer raised as an
    :class:`~dacirco.client.errors.ApiError` of its kind, no answer as ``Unreachable``.

    ``transport`` replaces the network (``httpx.MockTransport``, ``httpx.WSGITransport``);
    ``limits`` bounds the connections.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        *,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        extra: dict[str, Any] = {"limits": limits} if limits is not None else {}
        self.http = httpx.Client(
            transport=transport, **calls.client_args(base_url, token, timeout), **extra
        )
        # Signed download URLs carry their own proof: no API token goes with them.
        self._files = httpx.Client(transport=transport, timeout=timeout, follow_redirects=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self._files.close()

    def _send(self, call: Call) -> httpx.Response:
        try:
            resp = self.http.request(call.method, call.path, **call.send_args())
        except httpx.TransportError as exc:
            raise unreachable(exc, self.base_url) from exc
        return calls.checked(resp, call)

    # ---- jobs ------------------------------------------------------------------------------
    def submit(
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
        """Submit a job; its id. ``priority``, ``callback_url`` and ``reuse`` (False: run
        it even if an identical job exists) are sent only when given (a classic server does
        not know them); so are ``preset`` (a streaming job: its bitrates are the preset's,
        ``bitrate`` may be None), ``quality`` (measure VMAF, PSNR and SSIM) and
        ``thumbnails_every`` (a poster and a frame every N seconds)."""
        call = calls.submit_call(
            id_video, bitrate, speed, codec, priority, callback_url, reuse,
            preset=preset, quality=quality, thumbnails_every=thumbnails_every,
        )  # fmt: skip
        return calls.text(self._send(call), "a job id")

    def outputs(self, job_id: str) -> OutputsPublic:
        """A completed streaming job's files, playlists and thumbnails, with signed URLs;
        ``Conflict`` for a classic job or one not completed."""
        return calls.model(self._send(calls.outputs_call(job_id)), OutputsPublic)

    def jobs(self, limit: int | None = None, after: str | None = None) -> Page:
        """One page of job ids, oldest first (every id when ``limit`` is None)."""
        return calls.model(self._send(calls.page_call("jobs", limit, after)), Page)

    def iter_jobs(self, page_size: int | None = None) -> Iterator[str]:
        """Every job id, oldest first, following the pages."""
        return self._iter("jobs", page_size)

    def job(self, job_id: str) -> JobPublic:
        return calls.model(self._send(Call("GET", calls.job_path(job_id))), JobPublic)

    def state(self, job_id: str) -> str:
        """``Waiting``, ``Started``, ``Completed``, ``Error`` or ``Canceled``."""
        resp = self._send(Call("GET", calls.job_path(job_id) + "/state"))
        return calls.text(resp, "a state")

    def output_url(self, job_id: str) -> str:
        """The signed, expiring URL of a completed job's output (the redirect is not
        followed); ``Conflict`` when the job has none."""
        call = Call("GET", calls.job_path(job_id) + "/output", redirect=True)
        return calls.location(self._send(call))

    def download(self, job_id: str, path: str | Path) -> Path:
        """Stream a completed job's output into ``path`` (a file, or a folder to put it in
        under its own name); the file written."""
        url = self.output_url(job_id)
        target = calls.download_target(path, url)
        part = target.with_name(f".{target.name}.part")
        try:
            with self._files.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_for(resp)
                with part.open("wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
            part.replace(target)
        except httpx.TransportError as exc:
            raise unreachable(exc, url) from exc
        finally:
            part.unlink(missing_ok=True)
        return target

    def cancel(self, job_id: str) -> JobPublic:
        """Cancel a job (``DELETE /jobs/{id}``); its body, state ``Canceled``. ``Conflict``
        for a job already Completed or in Error."""
        return calls.model(self._send(Call("DELETE", calls.job_path(job_id))), JobPublic)

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 1.0) -> JobPublic:
        """Poll the job until it is Completed, Error or Canceled; its last body.
        ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.state in FINAL_STATES:
                return job
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(job, timeout or 0.0)
                time.sleep(min(poll, left))
            else:
                time.sleep(poll)

    # ---- workers ---------------------------------------------------------------------------
    def workers(self, limit: int | None = None, after: str | None = None) -> Page:
        """One page of worker ids (stopped ones included)."""
        return calls.model(self._send(calls.page_call("workers", limit, after)), Page)

    def iter_workers(self, page_size: int | None = None) -> Iterator[str]:
        return self._iter("workers", page_size)

    def worker(self, worker_id: str) -> WorkerPublic:
        return calls.model(self._send(Call("GET", calls.worker_path(worker_id))), WorkerPublic)

    def worker_state(self, worker_id: str) -> str:
        """``Booting``, ``Busy``, ``Idle`` or ``Stopped``."""
        resp = self._send(Call("GET", calls.worker_path(worker_id) + "/state"))
        return calls.text(resp, "a state")

    def _iter(self, kind: str, page_size: int | None) -> Iterator[str]:
        after: str | None = None
        while True:
            page = calls.model(self._send(calls.page_call(kind, page_size, after)), Page)
            yield from page.items
            if not page.has_more or not page.items:
                return
            after = page.items[-1]

    # ---- presets ---------------------------------------------------------------------------
    def presets(self) -> PresetsPublic:
        """Every preset, the shipped ones first."""
        return calls.model(self._send(Call("GET", "/presets")), PresetsPublic)

    def preset(self, name: str) -> PresetPublic:
        return calls.model(self._send(Call("GET", calls.preset_path(name))), PresetPublic)

    def put_preset(self, name: str, body: dict[str, Any]) -> PresetPublic:
        """Add or replace an operator's preset (the body of ``PUT /presets/{name}``)."""
        resp = self._send(Call("PUT", calls.preset_path(name), json=body))
        return calls.model(resp, PresetPublic)

    def delete_preset(self, name: str) -> None:
        self._send(Call("DELETE", calls.preset_path(name)))

    # ---- the service -----------------------------------------------------------------------
    def metrics_text(self) -> str:
        """``GET /metrics``: the Prometheus exposition text."""
        return self._send(Call("GET", "/metrics")).text

    def health(self) -> bool:
        """Whether ``GET /health`` answers ok."""
        return calls.healthy(self._send(Call("GET", "/health")))

    def events(
        self, job: str | None = None, after: int | None = None, *, reconnect: bool = True
    ) -> Generator[Event, None, None]:
        """The event stream (``GET /events``), live, endlessly; ``job``: that job's events
        only, ending with its final state; ``after``: start after that event.

        A stream that breaks or is closed is resumed from the last event received
        (``Last-Event-ID``), up to ``sse.MAX_RETRIES`` failed reconnections in a row; a
        first connection that fails raises at once. ``reconnect=False``: end instead.
        """
        last: int | None = None
        delay = sse.RETRY
        failures = 0
        connected = False
        while True:
            args = sse.stream_args(job, after, last, self.timeout)
            try:
                with connect_sse(self.http, "GET", "/events", **args) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                    sse.check_stream(source.response)
                    connected, failures = True, 0
                    for message in source.iter_sse():
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
            time.sleep(delay)
