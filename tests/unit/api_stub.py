"""In-process public API apps for the API tests: the "controller" app runs the real routes and
handlers on a LocalBackend over a stub controller; the "split" app is the real `rest-api` app,
forwarding through a real RemoteBackend to the first one (over ASGI instead of TCP)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from dacirco.api.app import create_api_app
from dacirco.api.backend import LocalBackend
from dacirco.controller.errors import InvalidRequest, NotFound
from dacirco.controller.presets import PresetBook
from dacirco.domain import FLAVORS, Codec, Job, Speed, Worker

CONTROLLER_URL = "http://controller.test"
T0 = 1_700_000_000.0


class StubController:
    """What LocalBackend reads from a Controller: ``jobs``, ``workers``, ``job``, ``find_job``,
    ``job_ids``, ``worker``, ``submit`` (any movie but ``bbb_*.mp4`` is not in the catalog),
    ``presets``."""

    def __init__(self, jobs: int = 0, workers: int = 0) -> None:
        self.jobs = {
            f"j{i:05d}": Job(f"j{i:05d}", "bbb_1.mp4", 1000, Speed.FAST, T0) for i in range(jobs)
        }
        self.workers = {
            f"w{i:05d}": Worker(f"w{i:05d}", f"worker-{i}", FLAVORS["small"], T0)
            for i in range(workers)
        }
        self.presets = PresetBook(None)  # the shipped presets only

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise NotFound(f"job {job_id!r} not found") from None

    async def find_job(self, job_id: str) -> tuple[Job, list]:
        return self.job(job_id), []

    async def job_ids(self, limit: int, after: str | None) -> tuple[list[str], bool]:
        ids = list(self.jobs)
        start = 0
        if after:
            if after not in self.jobs:
                raise NotFound(f"after: job {after!r} not found")
            start = ids.index(after) + 1
        return ids[start : start + limit], start + limit < len(ids)

    def clock(self) -> float:
        return T0

    def tasks_of(self, job_id: str) -> list:
        return []

    def worker(self, worker_id: str) -> Worker:
        try:
            return self.workers[worker_id]
        except KeyError:
            raise NotFound(f"worker {worker_id!r} not found") from None

    async def submit(
        self,
        id_video: str,
        bitrate: int,
        speed: Speed,
        codec: Codec,
        *,
        priority: int = 0,
        callback_url: str | None = None,
        reuse: bool = True,
    ) -> Job:
        if not id_video.startswith("bbb_"):
            raise InvalidRequest(f"movie {id_video!r} is not in the catalog")
        job = Job(
            f"j{len(self.jobs):05d}",
            id_video,
            bitrate,
            speed,
            T0,
            codec=codec,
            priority=priority,
            reuse=reuse,
        )
        self.jobs[job.id] = job
        return job


def _unused(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected forwarded call {request.method} {request.url}")


def controller_app(stub: StubController) -> FastAPI:
    """The public routes and handlers of the service, on ``stub``."""
    # The same routes and handlers as the service's app, with its backend swapped.
    app = create_api_app(CONTROLLER_URL, transport=httpx.MockTransport(_unused))
    app.state.backend = LocalBackend(stub)  # type: ignore[arg-type]
    return app


def split_app(controller: FastAPI | httpx.AsyncBaseTransport) -> FastAPI:
    """The `rest-api` app forwarding to ``controller`` (an app, or any transport)."""
    transport = (
        controller
        if isinstance(controller, httpx.AsyncBaseTransport)
        else httpx.ASGITransport(app=controller)
    )
    return create_api_app(CONTROLLER_URL, transport=transport)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")
