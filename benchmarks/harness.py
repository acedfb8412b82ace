"""What the benchmarks share: a real `dacirco serve` on a free port, and one timed job."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

STEPS = (  # (label, from timing, to timing)
    ("queue", "received", "assigned"),
    ("dispatch", "assigned", "started"),
    ("download", "started", "downloaded"),
    ("transcode", "downloaded", "transcoded"),
    ("upload", "transcoded", "uploaded"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WARM = ("--algorithm", "grace-period", "--max-idle-time", "3600", "--max-workers", "1")


def start_service(
    data_dir: Path,
    port: int,
    workdir: Path,
    extra: list[str] | tuple[str, ...] = (),
    policy: tuple[str, ...] = WARM,
) -> subprocess.Popen[bytes]:
    """The service; by default (``policy``) grace-period with one worker kept for an hour:
    every measured job finds it warm."""
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--event-log-file", str(workdir / f"tc-events-{port}.txt"),
        *policy, "--log-level", "warning", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL)
    return healthy(proc, port)


T0 = 1_700_000_000.0


async def fill(data_dir: Path, n: int, output: bytes | None = None) -> None:
    """``n`` completed jobs written straight into ``data_dir``'s database (as a long-running
    service would have left them), in batches of 5,000 rows; with ``output``, each job's
    output file too, holding it."""
    from dacirco.config import database_path
    from dacirco.controller.store import Store
    from dacirco.domain import Job, JobState, Speed

    outputs = data_dir / "videos" / "output-videos"
    if output is not None:
        outputs.mkdir(parents=True, exist_ok=True)
    store = Store(database_path(data_dir))
    try:
        for start in range(0, n, 5000):
            batch = []
            for i in range(start, min(n, start + 5000)):
                job = Job(f"job-{i:07d}", "bbb_1.mp4", 500 + i % 7500, Speed.FAST, T0 + i)
                job.transition(JobState.STARTED, T0 + i + 1, "assigned")
                job.transition(JobState.COMPLETED, T0 + i + 9, "done")
                job.timings = {
                    "assigned": T0 + i + 1,
                    "started": T0 + i + 2,
                    "uploaded": T0 + i + 9,
                }
                job.output = f"bbb_1-{job.bitrate}k-fast-{job.id}.mp4"
                if output is not None:
                    (outputs / job.output).write_bytes(output)
                batch.append(job)
            await store.save(jobs=tuple(batch))
    finally:
        store.close()


def healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """``proc`` once its /health answers on ``port``; killed, and the run ended, if it does
    not within ``timeout`` seconds (or exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("dacirco serve did not start")


def steps(job: dict) -> dict[str, float]:
    t = {k: datetime.fromisoformat(v).timestamp() for k, v in job["timings"].items() if v}
    return {label: t[b] - t[a] for label, a, b in STEPS}


def submit_and_wait(client: httpx.Client, body: dict) -> tuple[float, dict]:
    """Submit ``body`` and wait for its end: the wall time seen by the client, and the job
    (a failed job stops the benchmark with its error)."""
    t0 = time.perf_counter()
    job_id = client.post("/jobs", json=body).raise_for_status().json()
    while (state := client.get(f"/jobs/{job_id}/state").json()) not in ("Completed", "Error"):
        # Slow polling on purpose: a busy client would steal CPU from the transcode it measures.
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    job = client.get(f"/jobs/{job_id}").json()
    if state != "Completed":
        raise SystemExit(f"job failed: {job['error']}")
    return wall, job


def run_job(client: httpx.Client, body: dict) -> tuple[float, float, dict[str, float]]:
    """(server delay EV7-EV1, wall time seen by the client, seconds of each step)."""
    # Measured: a transcode each time, never a reused output.
    wall, job = submit_and_wait(client, {"reuse": False, **body})
    return float(job["delay"]), wall, steps(job)
