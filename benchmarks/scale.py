"""`make bench-scale`: DaCirco as jobs pile up, each figure beside its goal.

- **Stored jobs**: a data dir whose database holds N finished jobs (100,000), a real
  `dacirco serve` on it: start-up (launch to /health), the controller's RSS, `GET /jobs/{id}`
  (p99 over random stored jobs), `/metrics` (median) and the size of `GET /jobs` (its first
  page).
- **Submissions**: a fresh service, `POST /jobs` at a fixed rate (1,000/s for 60 s) from the
  open-loop generator of `loadgen.py` on 32 connections: the answered rate, the p99 latency
  (from when each request was due), the answers, and every accepted job listed afterwards.
  The service's worker runs at the lowest CPU priority meanwhile (its transcodes would
  otherwise take a core from the API on this 2-core machine).
- **Decisions** and **simulator**: `decisions.py` and `sim_scale.py`, when present.

The machine's load average is printed with each part: these machines are shared.

    python benchmarks/scale.py [--stored 100000] [--rate 1000] [--seconds 60]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import psutil
import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from harness import fill, free_port, healthy
from loadgen import run as load

console = Console()
Row = tuple[str, str, str, str]  # figure, goal, measured, load average


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _serve(
    data_dir: Path, workdir: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--event-log-file", str(workdir / f"tc-events-{port}.txt"),
        "--log-level", "warning", *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = healthy(subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL), port, 600)
    return proc, f"http://127.0.0.1:{port}", time.perf_counter() - t0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


def stored_jobs(n: int, workdir: Path) -> list[Row]:
    data = workdir / "stored"
    from dacirco.catalog.service import seed
    from dacirco.config import open_local_storage

    seed(open_local_storage(data), count=1, duration_scale=0.05, max_height=144)
    asyncio.run(fill(data, n))
    proc, url, startup = _serve(data, workdir)
    try:
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        rng = random.Random(1)
        with httpx.Client(base_url=url, timeout=60) as client:
            reads = []
            for _ in range(1000):
                job_id = f"job-{rng.randrange(n):07d}"
                t = time.perf_counter()
                client.get(f"/jobs/{job_id}").raise_for_status()
                reads.append(time.perf_counter() - t)
            scrapes = []
            for _ in range(50):
                t = time.perf_counter()
                client.get("/metrics").raise_for_status()
                scrapes.append(time.perf_counter() - t)
            listing = client.get("/jobs")
            listing.raise_for_status()
    finally:
        _stop(proc)
    reads.sort()
    load_now = _load()
    return [
        (f"start-up, {n:,} stored jobs", "≤ 2 s", f"{startup:.2f} s", load_now),
        (f"controller RSS, {n:,} stored jobs", "≤ 150 MB", f"{rss:.0f} MB", load_now),
        ("GET /jobs/{id} p99", "< 10 ms", _ms(reads[int(0.99 * len(reads))]), load_now),
        ("/metrics median", "≤ 10 ms", _ms(statistics.median(scrapes)), load_now),
        ("GET /jobs (default page)", "paged", f"{len(listing.content) / 1000:.0f} KB", load_now),
    ]


def submissions(rate: float, seconds: float, workdir: Path) -> list[Row]:
    data = workdir / "submit"
    from dacirco.catalog.service import seed
    from dacirco.config import open_local_storage

    seed(open_local_storage(data), count=1, duration_scale=0.05, max_height=144)
    proc, url, _ = _serve(data, workdir, "--max-queue", "0", "--max-workers", "1")
    try:
        body = {"id_video": "bbb_0.mp4", "bitrate": 800, "speed": "ultrafast", "reuse": False}

        def lowest_priority() -> None:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                return  # the service is gone: the load's own error says why
            for child in children:
                with contextlib.suppress(psutil.Error):
                    if child.nice() != 19:
                        child.nice(19)

        # The worker starts with the first job, and each transcode is a new process: looked
        # for all along (a niced worker's ffmpeg inherits its priority).
        done = threading.Event()

        def keep_lowest() -> None:
            while not done.wait(0.2):
                lowest_priority()

        watcher = threading.Thread(target=keep_lowest, daemon=True)
        watcher.start()
        service = psutil.Process(proc.pid)
        cpu_before = sum(service.cpu_times()[:2])
        cpu = float("nan")
        try:
            result = asyncio.run(load(url, rate, seconds, 32, body))
        finally:
            done.set()
            watcher.join()
            with contextlib.suppress(psutil.Error):  # gone: the load's own error says why
                cpu = sum(service.cpu_times()[:2]) - cpu_before
        load_now = _load()
        with httpx.Client(base_url=url, timeout=120) as client:
            listed: set[str] = set()
            after = None
            while True:
                params = {"limit": 10_000, **({"after": after} if after else {})}
                page = client.get("/jobs", params=params).json()
                listed.update(page["items"])
                if not page["has_more"] or not page["items"]:
                    break
                after = page["items"][-1]
    finally:
        _stop(proc)
    answered = len(result.latencies) / result.seconds
    server_errors = sum(n for status, n in result.statuses.items() if status >= 500)
    missing = len(set(result.accepted) - listed)
    return [
        (f"POST /jobs, {rate:.0f}/s offered for {seconds:.0f} s", f"{rate:.0f}/s",
         f"{answered:.0f}/s answered", load_now),
        ("POST /jobs p99 (from when due)", "< 50 ms", _ms(result.quantile(0.99)), load_now),
        ("service CPU per answered POST /jobs", "",
         f"{cpu / max(1, len(result.latencies)) * 1e6:.0f} µs", load_now),
        ("answers", "201 or 429, no 5xx",
         ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
         + (f"; {server_errors} 5xx" if server_errors else ""), load_now),
        ("accepted jobs not listed afterwards", "0", str(missing), load_now),
    ]  # fmt: skip


def main(
    stored: Annotated[int, typer.Option(min=1, help="finished jobs in the database")] = 100_000,
    rate: Annotated[float, typer.Option(min=1, help="POST /jobs per second")] = 1000,
    seconds: Annotated[float, typer.Option(min=1, help="how long the submissions last")] = 60,
    only: Annotated[
        str | None, typer.Option(help="one part only: 'stored' or 'submissions'")
    ] = None,
) -> None:
    """Print DaCirco's scale figures beside their goals."""
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-scale-"))
    rows: list[Row] = []
    try:
        if only not in (None, "stored", "submissions"):
            raise typer.BadParameter("--only: 'stored' or 'submissions'")
        if only in (None, "stored"):
            with console.status("stored jobs"):
                rows += stored_jobs(stored, workdir)
        if only in (None, "submissions"):
            with console.status("submissions"):
                rows += submissions(rate, seconds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = Table(title=f"DaCirco at scale ({psutil.cpu_count()} cores)")
    for name in ("figure", "goal", "measured", "load avg"):
        table.add_column(name, justify="left" if name == "figure" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
