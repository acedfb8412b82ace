"""Fixtures shared by the unit tests: a fast scratch folder, and a controller harness (a real
Controller, Store, EventLog, LocalStorage and policy; a fake runtime and a fake clock)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dacirco.controller.core import Controller, ControllerConfig
from dacirco.controller.events import EventLog, next_free_path
from dacirco.controller.store import Store
from dacirco.core.machine import Core
from dacirco.domain import Codec, ExitCause, Job, Node, Speed, Worker
from dacirco.policies.base import PolicyParams, make_policy
from dacirco.protocol import RegisterRequest, TaskReport, TaskSpec
from dacirco.runtimes.base import ExitHandler, RuntimeError_, WorkerExit, WorkerSpec
from dacirco.storage.local import LocalStorage
from dacirco.storage.signing import UrlSigner


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder on tmpfs when there is one, else ``tmp_path``.

    The files are real (real SQLite, real JSON Lines), but SQLite's fsyncs cost nothing on
    tmpfs, which keeps these tests in milliseconds even when the disk is busy.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="dacirco-unit-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- the controller harness ----------------------------------------------------------------
T0 = 1_700_000_000.0
NODE = "node-1"
BASE_URL = "http://127.0.0.1:1"
MAX_IDLE = 60.0
STEPS = ("started", "downloaded", "transcoded", "uploaded")


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeRuntime:
    """In memory: records what the controller asks; ``crash`` reports an exit as a runtime would."""

    name = "fake"

    def __init__(self) -> None:
        self.specs: list[WorkerSpec] = []
        self.stopped: list[str] = []
        self.on_exit: ExitHandler | None = None
        self.closed = False
        self.refuse_start = False

    def nodes(self) -> list[Node]:
        return [Node(NODE, 8, 32.0)]

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self.on_exit = handler

    async def start(self, spec: WorkerSpec) -> None:
        if self.refuse_start:
            raise RuntimeError_("no capacity left")
        self.specs.append(spec)

    async def stop(self, worker_id: str) -> None:
        self.stopped.append(worker_id)

    async def close(self) -> None:
        self.closed = True

    async def crash(self, worker_id: str) -> None:
        assert self.on_exit is not None
        await self.on_exit(WorkerExit(worker_id, ExitCause.CRASHED, "exited with code 137"))


@dataclass
class Harness:
    controller: Controller
    runtime: FakeRuntime
    clock: FakeClock
    signer: UrlSigner
    db: Path
    log_path: Path
    crashed: bool = False

    def events(self, *codes: str) -> list[dict]:
        lines = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [e for e in lines if not codes or e["code"] in codes]

    def codes(self) -> list[str]:
        return [e["code"] for e in self.events()]

    def token(self, worker_id: str) -> str:
        return next(s.token for s in self.runtime.specs if s.worker_id == worker_id)

    def auth(self, worker_id: str) -> Worker:
        """What the API does on every worker call (it is also the heartbeat)."""
        return self.controller.authenticate(self.token(worker_id))

    async def submit(self, movie: str = "bbb_1.mp4", reuse: bool = False) -> Job:
        """A job; each runs on its own unless ``reuse`` (they all ask for the same output)."""
        return await self.controller.submit(movie, 1000, Speed.ULTRAFAST, Codec.H264, reuse=reuse)

    async def register(self, spec: WorkerSpec, node: str = NODE) -> Worker:
        worker = self.controller.authenticate(spec.token)
        req = RegisterRequest(
            worker_id=spec.worker_id, name=spec.name, node=node, cpus=2, memory_gb=4.0
        )
        await self.controller.register(worker, req)
        return worker

    async def poll(self, worker: Worker) -> TaskSpec | None:
        return await self.controller.next_task(self.auth(worker.id), wait=0)

    async def report(self, worker: Worker, task: TaskSpec, step: str, **kw: object) -> None:
        rep = TaskReport(step=step, **kw)  # type: ignore[arg-type]
        await self.controller.report(self.auth(worker.id), task.task_id, rep)

    async def assigned(self) -> tuple[Job, Worker, TaskSpec]:
        """One job submitted, its worker started and registered, the task polled."""
        job = await self.submit()
        await self.controller.reconcile()
        worker = await self.register(self.runtime.specs[-1])
        await self.controller.reconcile()
        task = await self.poll(worker)
        assert task is not None
        return job, worker, task

    def upload(self, output_name: str, data: bytes = b"output") -> None:
        """What a worker's upload does: a task's output lands in the storage."""
        path = self.log_path.with_name("upload.part")
        path.write_bytes(data)
        self.controller.storage.put_file(f"output-videos/{output_name}", path)
        path.unlink()

    async def finish(self, worker: Worker, task: TaskSpec) -> None:
        for step in STEPS:
            self.clock.advance(1)
            if step == "uploaded":
                self.upload(task.output_name)
            await self.report(worker, task, step)

    async def settle(self) -> None:
        """Let the runtime.stop calls the controller spawned in the background run."""
        for _ in range(3):
            await asyncio.sleep(0)

    def crash(self) -> None:
        """The controller process dies: what is on disk stays, nothing is cleaned up."""
        self.controller.store.close()
        self.controller.events.close()
        self.crashed = True


Make = Callable[..., Harness]


@pytest.fixture
async def make(fast_tmp: Path) -> AsyncIterator[Make]:
    made: list[Harness] = []
    signer = UrlSigner(b"unit-test-secret")
    movie = fast_tmp / "movie.bin"
    movie.write_bytes(b"\0" * 100)

    def build(
        algorithm: str = "grace-period",
        db: Path | None = None,
        clock: FakeClock | None = None,
        new_id: Callable[[str], str] | None = None,
        **config: object,
    ) -> Harness:
        clock = clock or FakeClock()
        storage = LocalStorage(fast_tmp / "data", base_url=BASE_URL, signer=signer, clock=clock)
        storage.put_file("input-videos/bbb_1.mp4", movie, metadata={"duration": "10"})
        log_path = next_free_path(fast_tmp)
        db = db or fast_tmp / "dacirco.sqlite"
        runtime = FakeRuntime()
        controller = Controller(
            ControllerConfig(algorithm=algorithm, max_idle_time=MAX_IDLE, **config),  # type: ignore[arg-type]
            make_policy(algorithm, PolicyParams(max_idle_time=MAX_IDLE)),
            runtime,
            storage,
            Store(db),
            EventLog(log_path, clock),
            clock=clock,
            new_id=new_id,
        )
        runtime.set_exit_handler(controller.on_worker_exit)  # as Controller.start() does
        made.append(Harness(controller, runtime, clock, signer, db, log_path))
        return made[-1]

    yield build
    for h in made:
        if not h.crashed:
            await h.controller.close()


@pytest.fixture
def cores() -> Iterator[list[Core]]:
    """Cores made by a test (``new_core``); their invariants are checked after it."""
    from tests.unit.test_core import check_invariants

    made: list[Core] = []
    yield made
    for core in made:
        check_invariants(core)
