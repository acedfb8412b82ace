"""The local runtime with real `python -m dacirco.worker` processes: a worker's folder goes when
its process has exited, however it exited, and an unasked exit says why (its log's last lines)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from dacirco.domain import FLAVORS, ExitCause
from dacirco.runtimes.base import WorkerExit, WorkerSpec, worker_command
from dacirco.runtimes.local import LocalRuntime, log_tail
from tests.conftest import free_port

pytestmark = pytest.mark.slow


class Exits:
    """The runtime's exit handler: records each ``WorkerExit``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[WorkerExit] = asyncio.Queue()

    async def __call__(self, exit: WorkerExit) -> None:
        await self.queue.put(exit)

    async def next(self, timeout: float = 20.0) -> WorkerExit:
        return await asyncio.wait_for(self.queue.get(), timeout)


@pytest.fixture
async def runtime(tmp_path: Path):
    rt = LocalRuntime(
        cpus=2, memory_gb=4, log_dir=tmp_path / "logs", work_root=tmp_path / "work", stop_grace=5
    )
    exits = Exits()
    rt.set_exit_handler(exits)
    rt.exits = exits  # type: ignore[attr-defined]
    yield rt
    await rt.close()


def _spec(worker_id: str, token: str = "a-token") -> WorkerSpec:
    # Nothing listens there: the worker keeps trying to register until it is killed.
    dead = f"http://127.0.0.1:{free_port()}"
    return WorkerSpec(worker_id, f"worker-{worker_id}", FLAVORS["tiny"], dead, token)


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _started_with_task_files(runtime: LocalRuntime, worker_id: str, tmp: Path) -> Path:
    spec = _spec(worker_id)
    await runtime.start(spec)
    work = tmp / "work" / f"worker-{worker_id}"
    pid = runtime.pid(worker_id)
    assert pid is not None
    cmdline = psutil.Process(pid).cmdline()
    assert cmdline[1:] == ["-m", "dacirco.worker", *worker_command(spec), "--work-dir", str(work)]
    await _until(work.is_dir)  # the worker makes it at start
    task = work / "dacirco-t1-abcd"  # what a task in progress leaves there
    task.mkdir()
    (task / "input.mp4").write_bytes(os.urandom(1 << 20))
    return work


async def test_the_work_dir_goes_when_a_worker_is_killed_9(runtime, tmp_path):
    work = await _started_with_task_files(runtime, "w1", tmp_path)
    os.kill(runtime.pid("w1"), signal.SIGKILL)
    exit = await runtime.exits.next()
    assert exit.worker_id == "w1" and exit.cause is ExitCause.CRASHED
    assert exit.reason.startswith("worker process killed by signal 9")
    assert not work.exists()
    assert (tmp_path / "work").is_dir()  # only that worker's folder goes


async def test_the_work_dir_goes_when_a_worker_is_stopped(runtime, tmp_path):
    work = await _started_with_task_files(runtime, "w2", tmp_path)
    other = await _started_with_task_files(runtime, "w3", tmp_path)
    await runtime.stop("w2")
    assert not work.exists()
    assert other.is_dir()  # a live worker keeps its folder
    assert runtime.exits.queue.empty()  # asked to stop: not reported as lost
    await runtime.close()
    assert not other.exists()


async def test_an_unasked_exit_says_why_with_the_last_lines_of_the_log(runtime, tmp_path):
    log = tmp_path / "logs" / "worker-w4.log"
    log.parent.mkdir(parents=True)
    log.write_text("a line written by an earlier process of that name\n")
    await runtime.start(_spec("w4", token=" "))  # no token: the worker refuses to start
    exit = await runtime.exits.next()
    assert exit.worker_id == "w4" and exit.cause is ExitCause.CRASHED
    assert exit.reason == (
        "worker process exited with code 2: "
        "error: the worker token is missing: set DACIRCO_WORKER_TOKEN"
    )
    assert not (tmp_path / "work" / "worker-w4").exists()


def test_log_tail_keeps_the_last_non_empty_lines_short(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("old\n" + "".join(f"line {i}\n\n   \n" for i in range(500)))
    assert log_tail(log) == "line 497 | line 498 | line 499"
    since = log.stat().st_size
    with log.open("a") as f:
        f.write("Traceback (most recent call last):\n" + "x" * 1000 + "\nValueError: boom\n")
    tail = log_tail(log, since)
    assert len(tail) == 300 and tail.startswith("…") and tail.endswith(" | ValueError: boom")
    assert "line 499" not in tail
    assert log_tail(log, log.stat().st_size) == ""
    assert log_tail(tmp_path / "missing.log") == ""
