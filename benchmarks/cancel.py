"""Cancel latency: from `DELETE /jobs/{id}` to the job's worker Idle again, ffmpeg stopped.

A real `dacirco serve` (grace-period, one worker kept warm), a generated 60 s movie: N times,
submit it at "fast", wait until ffmpeg is under way, cancel, and time (from just before the
DELETE) the answer, the end of the ffmpeg process and the worker's return to Idle (polled
every 5 ms). Prints each cancel and the median and max of each figure.

    python benchmarks/cancel.py [--repeats 20]
"""

from __future__ import annotations

import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import psutil
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.catalog.service import add
from dacirco.config import open_local_storage

sys.path.insert(0, str(Path(__file__).parent))
from harness import free_port, start_service

console = Console()
JOB = {"id_video": "long.mp4", "bitrate": 1500, "speed": "fast", "reuse": False}


def _ffmpeg(service: psutil.Process) -> psutil.Process | None:
    """The transcoding ffmpeg (not the worker's short warm-up run)."""
    for child in service.children(recursive=True):
        try:
            if "ffmpeg" in child.name() and "output.mp4" in child.cmdline():
                return child
        except psutil.Error:
            continue
    return None


def _transcoding(service: psutil.Process, timeout: float = 60.0) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ffmpeg = _ffmpeg(service)
        if ffmpeg is not None:
            return ffmpeg
        time.sleep(0.005)
    raise SystemExit(f"no ffmpeg transcoding within {timeout} s")


def _until(predicate, what: str, timeout: float = 60.0, step: float = 0.005) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(step)
    raise SystemExit(f"{what}: not within {timeout} s")


def main(repeats: Annotated[int, typer.Option(min=1, help="cancels to time")] = 20) -> None:
    work = Path(tempfile.mkdtemp(prefix="dacirco-cancel-"))
    proc = None
    try:
        data = work / "data"
        movie = work / "long.mp4"
        generate_movie(movie_spec(9, max_height=360), movie)
        add(open_local_storage(data), [movie], name="long.mp4")
        port = free_port()
        proc = start_service(data, port, work)
        service = psutil.Process(proc.pid)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        rows = []
        for _ in track(range(repeats), description="cancels", console=console):
            job_id = client.post("/jobs", json=JOB).json()
            ffmpeg = _transcoding(service)
            worker_id = client.get(f"/jobs/{job_id}").json()["worker_id"]
            start = time.perf_counter()
            resp = client.delete(f"/jobs/{job_id}")
            answered = time.perf_counter()
            assert resp.status_code == 200 and resp.json()["state"] == "Canceled", resp.text
            gone = _until(lambda f=ffmpeg: not f.is_running(), "ffmpeg stopped")
            state = f"/workers/{worker_id}/state"
            idle = _until(lambda s=state: client.get(s).json() == "Idle", "worker idle")
            rows.append((answered - start, gone - start, idle - start))
        table = Table(title=f"cancel of a running job, {repeats} times (seconds from DELETE)")
        for name in ("answer", "ffmpeg gone", "worker Idle"):
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(*(f"{x:.3f}" for x in row))
        console.print(table)
        for i, name in enumerate(("answer", "ffmpeg gone", "worker Idle")):
            values = [r[i] for r in rows]
            console.print(
                f"{name}: median {statistics.median(values):.3f} s, max {max(values):.3f} s"
            )
        workers = client.get("/workers").json()["items"]
        console.print(f"workers started for {repeats} cancels: {len(workers)} (none rebooted)")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
