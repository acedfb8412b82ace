"""One task's reports to the controller, in order, with keepalives, and its watch (a canceled
job stops it); and the exceptions that end a task (TaskGone) or the whole worker (MustExit)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import httpx

from dacirco.protocol import ErrorKind, TaskReport, UploadGrant, UploadRequest
from dacirco.worker.transfer import StorageError

if TYPE_CHECKING:
    from dacirco.worker.agent import Agent

log = logging.getLogger("dacirco.worker")


class MustExit(Exception):
    """The worker must stop working and exit (the task at hand is abandoned)."""


class Unauthorized(MustExit):
    """401: the token is not (or no longer) valid; the worker exits."""


class Dismissed(MustExit):
    """410 on the poll or a report: the controller wants the worker gone."""


class ControllerUnreachable(MustExit):
    """The controller did not answer for longer than ``give_up_after``."""


class TaskGone(Exception):
    """409: the task is no longer this worker's."""


class ReportRefused(Exception):
    """422: the controller refused a report of the task (an upload it cannot find in the
    storage, a value out of bounds): the task fails, with the controller's reason."""

    def __init__(self, step: str, resp: httpx.Response) -> None:
        try:
            reason = resp.json().get("message")
        except (ValueError, AttributeError):
            reason = None
        if not isinstance(reason, str):
            reason = f"HTTP {resp.status_code} {resp.text[:200]}"
        super().__init__(f"report {step!r} refused by the controller: {reason}")
        self.step = step


class TaskChannel:
    """The reports of one task, sent one at a time so the controller sees them in order.

    A keepalive (a ``progress`` report) goes out when nothing else was said for a while, so
    a long download or upload does not make the worker look lost. A 409, or anything that
    makes the worker exit (401, 410, giving up on the controller), is kept in ``abort`` and
    raised by the task's next ``check()``.
    """

    def __init__(self, agent: Agent, task_id: str) -> None:
        self.agent = agent
        self.task_id = task_id
        self.lock = asyncio.Lock()
        self.last_sent = time.monotonic()
        self.progress = 0.0
        self.abort: Exception | None = None

    def check(self) -> None:
        if self.abort is not None:
            raise self.abort

    async def send(self, report: TaskReport, *, retry: bool = True) -> None:
        self.check()
        async with self.lock:
            await self.agent.report(self.task_id, report, retry=retry)
            self.last_sent = time.monotonic()

    async def on_progress(self, fraction: float) -> None:
        self.progress = fraction
        self.check()
        if time.monotonic() - self.last_sent >= self.agent.config.progress_interval:
            await self.send(TaskReport(step="progress", progress=fraction), retry=False)

    async def keepalive(self) -> None:
        interval = self.agent.config.keepalive_interval
        while True:
            await asyncio.sleep(min(1.0, interval))
            if time.monotonic() - self.last_sent < interval:
                continue
            try:
                await self.send(TaskReport(step="progress", progress=self.progress), retry=False)
            except (TaskGone, MustExit) as exc:
                self.abort = exc
                return
            except Exception:
                log.exception("keepalive of task %s failed", self.task_id)

    async def watch(self, execute: asyncio.Task[None], canceled: asyncio.Event) -> None:
        """Watch the task while it runs: when its job is canceled, stop it at once (ffmpeg is
        killed and reaped, transfers dropped) and go back to the pool."""
        agent, task_id = self.agent, self.task_id
        wait = agent.poll_wait
        while not execute.done():
            asked = time.monotonic()
            try:
                resp = await agent.call(
                    "GET",
                    f"/worker/tasks/{task_id}/watch",
                    params={"wait": wait},
                    timeout=wait + 10,
                    retry=False,
                )
            except MustExit:
                return  # the task's own calls will meet it too
            except Exception as exc:
                log.debug("watch of task %s: %s", task_id, exc)
                await asyncio.sleep(1.0)
                continue
            if resp.status_code in (404, 405):
                return  # a controller without the route: the task's reports will tell
            if resp.status_code == 200 and resp.json() == "Canceled":
                canceled.set()
                execute.cancel()
                return
            if resp.status_code != 200 or time.monotonic() - asked < 0.5:
                await asyncio.sleep(1.0)  # refused, or answered early: never a busy loop

    async def upload_url(self) -> str:
        """The PUT URL of the task's output, asked for just before the upload: it lives
        minutes, and opens the output only while the task is open."""
        resp = await self.agent.call("POST", f"/worker/tasks/{self.task_id}/upload-url")
        if resp.status_code in (404, 409):
            raise TaskGone()
        if resp.status_code == 410:
            raise Dismissed()
        if resp.status_code != 200:
            raise StorageError(f"no upload URL for the output: HTTP {resp.status_code}")
        return UploadGrant.model_validate(resp.json()).url

    async def upload_urls(self, names: list[str]) -> dict[str, str]:
        """A streaming task's PUT URLs, one per file of its output's folder."""
        resp = await self.agent.call(
            "POST",
            f"/worker/tasks/{self.task_id}/upload-url",
            json=UploadRequest(names=names).model_dump(),
        )
        if resp.status_code in (404, 409):
            raise TaskGone()
        if resp.status_code == 410:
            raise Dismissed()
        if resp.status_code != 200:
            raise StorageError(f"no upload URLs for the outputs: HTTP {resp.status_code}")
        urls = UploadGrant.model_validate(resp.json()).urls
        if set(urls) != set(names):
            raise StorageError("the controller did not sign every file of the outputs")
        return urls

    async def fail(self, kind: ErrorKind, message: str, *, retry: bool = True) -> None:
        log.warning("task %s failed (%s): %s", self.task_id, kind, message)
        try:
            await self.agent.report(
                self.task_id,
                TaskReport(step="failed", error_kind=kind, message=message),
                retry=retry,
            )
        except TaskGone:
            pass
        except ReportRefused as exc:
            # Nothing more to say: the task's fate is the controller's (a lost worker's).
            log.error("task %s: %s", self.task_id, exc)
