"""The worker's protocol loop: register, long-poll for a task, download, transcode, upload,
report each step (see dacirco.protocol), clean up, poll again; stop on a signal or when told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from dacirco.protocol import NODE_ENV, RegisterReply, RegisterRequest, TaskReport, TaskSpec
from dacirco.worker.channel import (
    ControllerUnreachable,
    Dismissed,
    MustExit,
    ReportRefused,
    TaskChannel,
    TaskGone,
    Unauthorized,
)
from dacirco.worker.execute import execute
from dacirco.worker.ffmpeg import TranscodeError, warm_up
from dacirco.worker.samples import SamplePusher
from dacirco.worker.transfer import StorageError

log = logging.getLogger("dacirco.worker")

EXIT_OK = 0
EXIT_FAILURE = 1


@dataclass(frozen=True)
class AgentConfig:
    controller: str
    worker_id: str
    name: str
    cpus: int
    memory_gb: float
    token: str
    work_dir: Path | None = None
    give_up_after: float = 60.0
    backoff_cap: float = 2.0
    storage_attempts: int = 8  # with transfer.MAX_BACKOFF: ~20 s of storage outage per try
    storage_backoff: float = 0.5
    progress_interval: float = 1.0
    keepalive_interval: float = 5.0
    idle_exit: float = 0.0  # seconds without a task before it exits by itself (0: never)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._ctl: httpx.AsyncClient | None = None
        self._store: httpx.AsyncClient | None = None
        self.poll_wait = 20.0
        self._sample_interval = 0.0
        self._failing_since: float | None = None
        self._stopping: str | None = None
        self._main: asyncio.Task[Any] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._samples: SamplePusher | None = None

    async def run(self) -> int:
        """Serve tasks until told to stop; the process exit code."""
        self._main = asyncio.current_task()
        headers = {"Authorization": f"Bearer {self.config.token}"}
        base_url = self.config.controller.rstrip("/")
        async with (
            httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0) as self._ctl,
            # No bearer token here: storage URLs are signed, and the token is the controller's.
            httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as self._store,
        ):
            try:
                await self._register()
                if self._sample_interval > 0:
                    self._samples = SamplePusher(
                        self._ctl, self.config.worker_id, self._sample_interval
                    )
                    self._samples.start()
                # While the first poll waits, not when the first task arrives.
                self._warming = asyncio.create_task(asyncio.to_thread(warm_up))
                await self._serve_forever()
                return EXIT_OK  # idle for --idle-exit seconds
            except asyncio.CancelledError:
                if self._stopping is None:
                    raise
                if self._main is not None:
                    self._main.uncancel()
                log.info("stopped by %s", self._stopping)
                return EXIT_OK
            except Unauthorized:
                log.warning("the controller refused the token (401): exiting")
                return EXIT_OK
            except Dismissed:
                log.info("dismissed by the controller (410): exiting")
                return EXIT_OK
            except ControllerUnreachable as exc:
                log.error("giving up: %s", exc)
                return EXIT_FAILURE
            finally:
                if self._samples is not None:
                    await self._samples.stop()

    def stop(self, reason: str) -> None:
        """Signal handler: cancel whatever runs (ffmpeg is killed and reaped), then exit 0."""
        if self._stopping is not None:
            return
        self._stopping = reason
        if self._main is not None:
            self._main.cancel()

    async def _register(self) -> None:
        body = RegisterRequest(
            worker_id=self.config.worker_id,
            name=self.config.name,
            node=os.environ.get(NODE_ENV) or socket.gethostname(),
            cpus=self.config.cpus,
            memory_gb=self.config.memory_gb,
            pid=os.getpid(),
        )
        resp = await self.call("POST", "/worker/register", json=body.model_dump())
        if resp.status_code >= 400:
            raise ControllerUnreachable(f"registration refused: {_describe(resp)}")
        reply = RegisterReply.model_validate(resp.json())
        self.poll_wait, self._sample_interval = reply.poll_wait, reply.sample_interval
        log.info("registered with %s (poll wait %g s)", self.config.controller, self.poll_wait)

    async def _serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            try:
                spec = await self._poll()
                if spec is not None:
                    await self._serve(spec)
                    idle_since = loop.time()
                elif self.config.idle_exit and loop.time() - idle_since >= self.config.idle_exit:
                    log.info("idle for %.0f s: exiting (--idle-exit)", loop.time() - idle_since)
                    return
            except MustExit:
                raise
            except Exception:
                # This loop must live: log it all, breathe, and poll again.
                log.exception("unexpected error in the worker loop")
                await asyncio.sleep(self.config.backoff_cap)

    async def _poll(self) -> TaskSpec | None:
        wait = self.poll_wait
        resp = await self.call("GET", "/worker/task", params={"wait": wait}, timeout=wait + 10)
        if resp.status_code == 204:
            return None
        if resp.status_code == 410:
            raise Dismissed()
        if resp.status_code != 200:
            log.warning("unexpected answer to the poll: %s", _describe(resp))
            await asyncio.sleep(self.config.backoff_cap)
            return None
        data = resp.json()
        try:
            return TaskSpec.model_validate(data)
        except ValidationError as exc:
            task_id = data.get("task_id") if isinstance(data, dict) else None
            log.error("malformed task %s: %s", task_id, exc)
            if isinstance(task_id, str):
                await TaskChannel(self, task_id).fail("internal", f"malformed task: {exc}")
            return None

    async def call(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One controller call; connection errors and 5xx are retried with a capped backoff
        until the controller has been failing for ``give_up_after`` seconds."""
        assert self._ctl is not None
        delay = 0.1
        while True:
            try:
                resp = await self._ctl.request(
                    method, path, timeout=timeout or httpx.USE_CLIENT_DEFAULT, **kwargs
                )
                reason = None if resp.status_code < 500 else _describe(resp)
            except httpx.TransportError as exc:
                resp, reason = None, f"{type(exc).__name__}: {exc}"
            if reason is None and resp is not None:
                if self._failing_since is not None:
                    log.info("the controller answers again")
                    self._failing_since = None
                if resp.status_code == 401:
                    raise Unauthorized()
                return resp
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
                log.warning("controller call %s %s failed (%s); retrying", method, path, reason)
            else:
                log.debug("controller call %s %s failed again (%s)", method, path, reason)
            failing_for = now - self._failing_since
            left = self.config.give_up_after - failing_for
            if left <= 0:
                raise ControllerUnreachable(
                    f"no answer from {self.config.controller} for {failing_for:.0f} s ({reason})"
                )
            if not retry:
                raise ConnectionError(reason)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, self.config.backoff_cap)

    async def report(self, task_id: str, report: TaskReport, *, retry: bool = True) -> None:
        """Send one report. Without ``retry``, a failed send is dropped (progress is only
        news) while a 409 or 401 still counts."""
        path = f"/worker/tasks/{task_id}/report"
        try:
            resp = await self.call("POST", path, json=report.model_dump(), retry=retry)
        except ConnectionError as exc:
            log.debug("report %s of task %s not sent: %s", report.step, task_id, exc)
            return
        if resp.status_code in (404, 409):
            raise TaskGone()
        if resp.status_code == 410:
            raise Dismissed()  # stopped while working: its job is already back in the queue
        if resp.status_code == 422:
            raise ReportRefused(report.step, resp)
        if resp.status_code >= 400:
            log.error("report %s of task %s refused: %s", report.step, task_id, _describe(resp))

    @property
    def _retries(self) -> dict[str, Any]:
        return {"attempts": self.config.storage_attempts, "backoff": self.config.storage_backoff}

    async def _serve(self, spec: TaskSpec) -> None:
        channel = TaskChannel(self, spec.task_id)
        safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", spec.task_id)[:40]
        work: Path | None = None
        keepalive = asyncio.create_task(channel.keepalive())
        canceled = asyncio.Event()
        watch: asyncio.Task[None] | None = None
        try:
            work = Path(tempfile.mkdtemp(prefix=f"dacirco-{safe_id}-", dir=self.config.work_dir))
            execute = asyncio.create_task(self._execute(spec, channel, work))
            watch = asyncio.create_task(channel.watch(execute, canceled))
            try:
                await execute
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not canceled.is_set() or (current is not None and current.cancelling()):
                    raise
                log.info("task %s: its job was canceled; stopped and dropped", spec.task_id)
        except TaskGone:
            log.info("task %s is no longer this worker's: dropped", spec.task_id)
        except TranscodeError as exc:
            await channel.fail("transcoding", exc.message)
        except StorageError as exc:
            await channel.fail("storage", str(exc))
        except ReportRefused as exc:
            # An upload the controller cannot find is a storage failure: another try may do.
            await channel.fail("storage" if exc.step == "uploaded" else "internal", str(exc))
        except MustExit:
            raise
        except asyncio.CancelledError:
            if self._stopping is not None:
                # Best effort and brief: the controller can requeue at once instead of
                # waiting for this worker to be declared lost.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await channel.fail(
                            "internal", f"worker stopped by {self._stopping}", retry=False
                        )
            raise
        except Exception as exc:
            log.exception("task %s: unexpected error", spec.task_id)
            await channel.fail("internal", f"{type(exc).__name__}: {exc}")
        finally:
            for helper in (keepalive, watch):
                if helper is not None:
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)

    async def _execute(self, spec: TaskSpec, channel: TaskChannel, work: Path) -> None:
        assert self._store is not None
        flush = self._samples.flush_soon if self._samples is not None else None
        await execute(spec, channel, work, self._store, self._retries, flush)


def _describe(resp: httpx.Response) -> str:
    text = (
        resp.text[:200] if resp.headers.get("content-type", "").startswith(("text", "app")) else ""
    )
    return f"HTTP {resp.status_code} {resp.reason_phrase} {text}".strip()


async def run_agent(config: AgentConfig) -> int:
    """Run an agent with SIGTERM and SIGINT wired to a graceful stop."""
    agent = Agent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop, sig.name)
    try:
        return await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
