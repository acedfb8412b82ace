"""What the runtime contract tests share: a stand-in controller that records registrations,
and the registry of runtimes to test (``FACTORIES``: name -> async context manager factory).

Every runtime under test runs REAL ``dacirco worker`` processes (wherever the runtime puts
them: a local process, a Ray actor, a pod or a server of a fake cloud that runs the container's
command on this machine); they register over HTTP with the stand-in below, which answers
``GET /worker/task`` with 204 so that the workers stay idle until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from dacirco.api.thread_server import free_port, serve_in_thread  # noqa: F401
from dacirco.domain import FLAVORS
from dacirco.runtimes.base import Runtime, WorkerSpec
from dacirco.runtimes.local import LocalRuntime


@dataclass
class Sink:
    """A stand-in controller on 127.0.0.1: records each registration body by worker id."""

    url: str = ""
    registered: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # worker id -> bearer token seen
    polls: dict[str, float] = field(default_factory=dict)  # worker id -> last poll time
    refuse: set[str] = field(default_factory=set)  # worker ids whose registration gets a 401

    def wait_registered(self, worker_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker_id in self.registered:
                return self.registered[worker_id]
            time.sleep(0.05)
        raise AssertionError(f"worker {worker_id} did not register within {timeout} s")


@contextlib.contextmanager
def sink_server() -> Any:
    sink = Sink()
    app = FastAPI()

    @app.post("/worker/register", response_model=None)
    async def register(request: Request) -> dict | Response:
        body = await request.json()
        if body["worker_id"] in sink.refuse:
            return Response(status_code=401)
        sink.registered[body["worker_id"]] = body
        sink.tokens[body["worker_id"]] = request.headers.get("authorization", "")
        return {"worker_id": body["worker_id"], "poll_wait": 1.0, "sample_interval": 0.0}

    @app.get("/worker/task")
    async def task(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        for wid, token in sink.tokens.items():
            if token == auth:
                sink.polls[wid] = time.monotonic()
        return Response(status_code=204)

    with serve_in_thread(app) as url:
        sink.url = url
        yield sink


def worker_spec(
    url: str, flavor: str = "tiny", node: str | None = None, prefix: str = "w"
) -> WorkerSpec:
    """A worker of ``flavor`` calling ``url`` back, with a fresh id and token of its own."""
    wid = str(uuid.uuid4())
    return WorkerSpec(wid, f"{prefix}-{wid[:8]}", FLAVORS[flavor], url, f"tok-{uuid.uuid4()}", node)


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


# name -> factory(tmp_path) -> async context manager yielding a Runtime, closed by the test.
RuntimeFactory = Callable[[Path], contextlib.AbstractAsyncContextManager[Runtime]]


@contextlib.asynccontextmanager
async def local_runtime(tmp: Path) -> AsyncIterator[Runtime]:
    runtime = LocalRuntime(log_dir=tmp / "logs", work_root=tmp / "work", stop_grace=5.0)
    try:
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def pod_runtime(tmp: Path) -> AsyncIterator[Runtime]:
    """Kubernetes through the fake API server (tests/fakes/k8s_api.py)."""
    from tests.fakes.k8s_api import fake_runtime

    async with fake_runtime(tmp) as (runtime, _cluster):
        yield runtime


@contextlib.asynccontextmanager
async def vm_runtime(tmp: Path) -> AsyncIterator[Runtime]:
    """OpenStack through the fake compute API (tests/fakes/compute_api.py)."""
    from tests.fakes.compute_api import fake_runtime

    async with fake_runtime(tmp) as (runtime, _cloud):
        yield runtime


@contextlib.asynccontextmanager
async def ray_runtime(tmp: Path) -> AsyncIterator[Runtime]:
    """A RayRuntime on the session's local multi-node Ray cluster (started on first use)."""
    import pytest

    pytest.importorskip("ray", reason="Ray is not installed: pip install 'dacirco[ray]'")
    from dacirco.runtimes.ray import RayRuntime
    from dacirco.runtimes.ray_cluster import shared_cluster

    runtime = RayRuntime(shared_cluster().address, stop_grace=5.0)
    try:
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def slurm_runtime(tmp: Path) -> AsyncIterator[Runtime]:
    """A SlurmRuntime on the session's real single-node SLURM cluster (the ``slurm_cluster``
    fixture, which the contract suite requests for this runtime)."""
    from dacirco.runtimes.slurm import SlurmRuntime
    from dacirco.runtimes.slurm_cluster import shared_cluster

    runtime = SlurmRuntime(conf=shared_cluster().conf, log_dir=tmp / "logs", poll_interval=0.5)
    try:
        yield runtime
    finally:
        await runtime.close()


FACTORIES: dict[str, RuntimeFactory] = {
    "local": local_runtime,
    "pod": pod_runtime,
    "vm": vm_runtime,
    "ray": ray_runtime,
    "slurm": slurm_runtime,
}
# Runtimes that need a session fixture first (a real cluster): name -> the fixture's name.
FIXTURES = {"slurm": "slurm_cluster"}
