"""The real worker process against a small stand-in controller speaking the worker protocol."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import psutil
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from dacirco.ffmpeg_bin import ffmpeg_exe
from dacirco.protocol import (
    TOKEN_ENV,
    RegisterReply,
    RegisterRequest,
    TaskReport,
    TaskSpec,
    UploadGrant,
)

pytestmark = pytest.mark.slow

TOKEN = "test-token"


class Standin:
    """The controller's worker routes and signed-file routes, with everything recorded."""

    def __init__(self, files: Path) -> None:
        self.files = files
        self.base_url = ""
        self.tasks: queue.Queue[TaskSpec] = queue.Queue()
        self.gone: set[str] = set()  # tasks whose reports get 409
        self.dismiss = False
        self.stopped: set[str] = set()  # tasks whose reports get 410 (worker stopped)
        self.refused: set[str] = set()  # tasks whose "uploaded" gets 422 (not in the storage)
        self.registered: list[RegisterRequest] = []
        self.reports: list[tuple[str, TaskReport]] = []
        self.uploads: dict[str, dict[str, str]] = {}
        self.changed = threading.Condition()

    def task(self, input_name: str, **fields: Any) -> TaskSpec:
        task_id = f"t{self.tasks.qsize()}-{time.monotonic_ns()}"
        spec = TaskSpec(
            task_id=task_id,
            job_id=f"j-{task_id}",
            input_name=input_name,
            output_name=f"out-{task_id}.mp4",
            input_url=f"{self.base_url}/files/{input_name}",
            **{"bitrate_kbps": 1000, "speed": "ultrafast", **fields},
        )
        self.tasks.put(spec)
        return spec

    def steps(self, task_id: str) -> list[TaskReport]:
        with self.changed:
            return [report for tid, report in self.reports if tid == task_id]

    def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        with self.changed:
            result = self.changed.wait_for(predicate, timeout)
        assert result, "timed out waiting for the worker"
        return result

    def wait_end(self, task_id: str, timeout: float = 90.0) -> list[TaskReport]:
        # A worker's start and a transcode take seconds, but tens on a machine busy elsewhere.
        self.wait_for(
            lambda: any(r.step in ("uploaded", "failed") for r in self.steps(task_id)), timeout
        )
        return self.steps(task_id)

    def app(self) -> FastAPI:
        app = FastAPI()

        def authorized(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {TOKEN}"

        @app.post("/worker/register")
        async def register(body: RegisterRequest, request: Request) -> Any:
            if not authorized(request):
                return JSONResponse({"detail": "bad token"}, status_code=401)
            with self.changed:
                self.registered.append(body)
                self.changed.notify_all()
            return RegisterReply(worker_id=body.worker_id, poll_wait=1.0)

        @app.get("/worker/task")
        async def poll(request: Request, wait: float = 20.0) -> Any:
            if not authorized(request):
                return JSONResponse({"detail": "bad token"}, status_code=401)
            until = time.monotonic() + wait
            while time.monotonic() < until:
                if self.dismiss:
                    return Response(status_code=410)
                if await request.is_disconnected():  # a worker killed by the last test's end:
                    return Response(status_code=204)  # its poll must not take the next task
                try:
                    return self.tasks.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.01)
            return Response(status_code=204)

        @app.post("/worker/tasks/{task_id}/report")
        async def report(task_id: str, body: TaskReport, request: Request) -> Any:
            if not authorized(request):
                return JSONResponse({"detail": "bad token"}, status_code=401)
            with self.changed:
                self.reports.append((task_id, body))
                self.changed.notify_all()
            if task_id in self.gone:
                return JSONResponse({"detail": "not yours"}, status_code=409)
            if task_id in self.stopped:
                return JSONResponse({"detail": "this worker was stopped"}, status_code=410)
            if task_id in self.refused and body.step == "uploaded":
                message = f"uploaded: output-videos/out-{task_id}.mp4 is not in the storage"
                return JSONResponse({"detail": message, "message": message}, status_code=422)
            return {"ok": True}

        @app.post("/worker/tasks/{task_id}/upload-url")
        async def upload_url(task_id: str, request: Request) -> Any:
            if not authorized(request):
                return JSONResponse({"detail": "bad token"}, status_code=401)
            if task_id in self.gone:
                return JSONResponse({"detail": "not yours"}, status_code=409)
            url = f"{self.base_url}/files/out-{task_id}.mp4"
            return UploadGrant(url=url, expires_in=600)

        @app.get("/files/{name}")
        async def get_file(name: str) -> Any:
            path = self.files / name
            return FileResponse(path) if path.is_file() else Response(status_code=404)

        @app.put("/files/{name}")
        async def put_file(name: str, request: Request) -> Any:
            with (self.files / name).open("wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
            self.uploads[name] = dict(request.headers)
            return Response(status_code=201)

        return app


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _make_clip(path: Path, seconds: float, size: str) -> None:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25,noise=alls=12:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    files = tmp_path_factory.mktemp("files")
    _make_clip(files / "clip.mp4", 2.5, "640x360")
    _make_clip(files / "long.mp4", 10.0, "640x360")
    (files / "corrupt.mp4").write_bytes((files / "clip.mp4").read_bytes()[:50_000])

    stand = Standin(files)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    stand.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(stand.app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield stand
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def start_worker(standin: Standin, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def start(token: str = TOKEN, controller: str | None = None, *extra: str) -> subprocess.Popen:
        worker_id = f"w{len(procs)}"
        cmd = [
            sys.executable, "-m", "dacirco.worker",
            "--controller", controller or standin.base_url,
            "--worker-id", worker_id, "--name", f"worker-{worker_id}",
            "--cpus", "2", "--memory-gb", "4", "--work-dir", str(tmp_path / "work"), *extra,
        ]  # fmt: skip
        env = {**os.environ, TOKEN_ENV: token}
        log = (tmp_path / f"{worker_id}.log").open("w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    standin.dismiss = False
    for log in tmp_path.glob("w*.log"):
        sys.stderr.write(f"--- {log.name}\n{log.read_text()}")


def _video(path: Path) -> tuple[str, float, float]:
    """Codec, duration (s) and video bitrate (kbit/s, from the packets) of a movie."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        duration = float(stream.duration * stream.time_base)
        size = sum(packet.size for packet in container.demux(stream))
    return codec, duration, size * 8 / duration / 1000


def test_transcode_then_bad_inputs(
    standin: Standin, start_worker: Callable, tmp_path: Path
) -> None:
    start_worker()
    ok = standin.task("clip.mp4", bitrate_kbps=1000)
    reports = standin.wait_end(ok.task_id)

    steps = [r.step for r in reports]
    assert [s for s in steps if s != "progress"] == [
        "started",
        "downloaded",
        "transcoded",
        "uploaded",
    ]
    first, last = steps.index("downloaded"), steps.index("transcoded")
    assert all(first < i < last for i, s in enumerate(steps) if s == "progress")
    assert reports[1].bytes == (standin.files / "clip.mp4").stat().st_size
    output = standin.files / ok.output_name
    assert reports[-1].bytes == output.stat().st_size
    assert all(
        r.seconds is not None and r.seconds >= 0 for r in reports[1:] if r.step != "progress"
    )
    assert standin.uploads[ok.output_name]["content-length"] == str(output.stat().st_size)

    codec, duration, kbps = _video(output)
    _, input_duration, _ = _video(standin.files / "clip.mp4")
    assert codec == "h264"
    assert abs(duration - input_duration) <= 0.2
    assert 800 <= kbps <= 1200, kbps
    # The per-task folder is gone once the task is over.
    standin.wait_for(lambda: not any((tmp_path / "work").iterdir()), 2.0)

    # A task the controller took back (409) is dropped; the next task is served.
    standin.gone.add(gone := standin.task("clip.mp4").task_id)
    corrupt = standin.task("corrupt.mp4")
    reports = standin.wait_end(corrupt.task_id)
    assert [r.step for r in standin.steps(gone)] == ["started"]
    assert [r.step for r in reports] == ["started", "downloaded", "failed"]
    assert reports[-1].error_kind == "transcoding"
    assert "Invalid data found" in (reports[-1].message or "")

    missing = standin.task("no-such-movie.mp4")
    reports = standin.wait_end(missing.task_id)
    assert [r.step for r in reports] == ["started", "failed"]
    assert reports[-1].error_kind == "storage"
    assert "404" in (reports[-1].message or "")

    late = standin.task("long.mp4", codec="hevc", speed="fast", deadline_seconds=0.5)
    reports = standin.wait_end(late.task_id)
    assert reports[-1].error_kind == "transcoding"
    assert "deadline" in (reports[-1].message or "")


def test_a_refused_upload_report_fails_the_task_with_the_reason(
    standin: Standin, start_worker: Callable
) -> None:
    """The controller does not find the upload: the task fails as a storage failure (the job
    may be retried), saying why; the worker serves the next task."""
    start_worker()
    standin.refused.add((refused := standin.task("clip.mp4")).task_id)
    standin.wait_end(refused.task_id)
    standin.wait_for(lambda: standin.steps(refused.task_id)[-1].step == "failed", 60)
    reports = standin.steps(refused.task_id)
    last = reports[-1]
    assert last.error_kind == "storage"
    assert "report 'uploaded' refused by the controller: uploaded: output-videos/" in (
        last.message or ""
    )
    assert "is not in the storage" in (last.message or "")
    # The refused "uploaded" report was the last before the failure (read once both are in:
    # the failure follows the refusal within milliseconds).
    assert [r.step for r in reports if r.step != "progress"][-2:] == ["uploaded", "failed"]
    following = standin.task("clip.mp4")
    assert standin.wait_end(following.task_id)[-1].step == "uploaded"


def _start_long_transcode(standin: Standin, worker: subprocess.Popen) -> tuple[TaskSpec, list]:
    task = standin.task("long.mp4", codec="hevc", speed="fast")
    # A worker's start (interpreter, imports, registration) can take tens of seconds on a
    # busy machine: wait long, it returns as soon as the input is downloaded.
    standin.wait_for(lambda: any(r.step == "downloaded" for r in standin.steps(task.task_id)), 60)
    parent = psutil.Process(worker.pid)
    deadline = time.monotonic() + 5
    while not (children := parent.children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert children, "ffmpeg did not start"
    return task, children


def _gone(processes: list[psutil.Process], timeout: float = 2.0) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return all(p.status() == psutil.STATUS_ZOMBIE for p in alive if p.is_running())


def test_sigterm_kills_ffmpeg_and_exits(standin: Standin, start_worker: Callable) -> None:
    worker = start_worker()
    task, children = _start_long_transcode(standin, worker)
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert time.monotonic() - sent < 3
    assert _gone(children, timeout=0)
    last = standin.steps(task.task_id)[-1]
    assert (last.step, last.error_kind) == ("failed", "internal")


def test_ffmpeg_dies_with_a_killed_worker(standin: Standin, start_worker: Callable) -> None:
    # No handler runs on SIGKILL: the kernel must end ffmpeg (parent-death signal).
    worker = start_worker()
    _, children = _start_long_transcode(standin, worker)
    worker.kill()
    worker.wait(timeout=5)
    assert _gone(children, timeout=1.0)


def test_exits_on_401_and_410(standin: Standin, start_worker: Callable) -> None:
    assert start_worker(token="wrong-token").wait(timeout=10) == 0
    worker = start_worker()
    standin.wait_for(lambda: any(r.worker_id == "w1" for r in standin.registered), 10)
    standin.dismiss = True
    assert worker.wait(timeout=5) == 0


def test_a_410_on_a_report_ends_the_transcode_and_the_worker(
    standin: Standin, start_worker: Callable
) -> None:
    # The controller stopped this worker while it worked: finishing the job is wasted work.
    worker = start_worker()
    task, children = _start_long_transcode(standin, worker)
    standin.stopped.add(task.task_id)  # the next report (progress, at most 1 s away) gets 410
    assert worker.wait(timeout=10) == 0
    assert _gone(children)
    assert not any(r.step == "uploaded" for r in standin.steps(task.task_id))


def test_gives_up_on_an_unreachable_controller(start_worker: Callable) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    worker = start_worker(TOKEN, closed, "--give-up-after", "1")
    assert worker.wait(timeout=10) == 1


def test_idle_exit_leaves_after_that_long_without_a_task(
    standin: Standin, start_worker: Callable
) -> None:
    # A node agent's pilot: no task for --idle-exit seconds, and it leaves (code 0).
    started = time.monotonic()
    worker = start_worker(TOKEN, None, "--idle-exit", "2")
    assert worker.wait(timeout=60) == 0
    assert time.monotonic() - started >= 2.0  # after polls that found nothing, not at once
