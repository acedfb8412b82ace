"""`/metrics` (and the dashboard's overview, `/ui`) against the number of stored jobs: the same
request with few and with many.

For each size, a data dir whose database holds that many finished jobs (written straight
through the store, as a long-running service would have left them), a real `dacirco serve`
on it, and `GET /metrics` timed from a client (the whole request: HTTP, the collector, the
text format) after a few warm-up scrapes. Prints the start-up time (launch to /health), the
median and p99 scrape time per size, and the ratio of the largest size's median to the
smallest's: near 1 when a scrape does not depend on how many jobs are stored.

    python benchmarks/metrics_scale.py [--sizes 1000,100000] [--scrapes 50]
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from harness import fill, free_port, healthy

console = Console()


def measure(n: int, scrapes: int, workdir: Path) -> tuple[float, list[float], list[float]]:
    """Start-up seconds, then the times of ``/metrics`` and of the dashboard's ``/ui``."""
    data_dir = workdir / f"data-{n}"
    asyncio.run(fill(data_dir, n))
    port = free_port()
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--event-log-file", str(workdir / f"tc-events-{n}.txt"),
        "--log-level", "warning",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = healthy(subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL), port, 300)
    url = f"http://127.0.0.1:{port}"
    try:
        startup = time.perf_counter() - t0
        times: list[float] = []
        pages: list[float] = []
        with httpx.Client(base_url=url) as client:
            for i in range(scrapes + 5):
                t = time.perf_counter()
                resp = client.get("/metrics")
                elapsed = time.perf_counter() - t
                resp.raise_for_status()
                assert f'dacirco_jobs{{state="Completed"}} {float(n)}' in resp.text
                t = time.perf_counter()
                page = client.get("/ui")
                page_time = time.perf_counter() - t
                page.raise_for_status()
                assert f"({n}; page 1 of" in page.text  # counts from the server, paged
                if i >= 5:  # warm-up scrapes left out
                    times.append(elapsed)
                    pages.append(page_time)
        return startup, times, pages
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main(
    sizes: Annotated[str, typer.Option(help="numbers of stored jobs, comma-separated")] = (
        "1000,100000"
    ),
    scrapes: Annotated[int, typer.Option(min=5, help="timed scrapes per size")] = 50,
) -> None:
    """Time GET /metrics with few and many stored jobs."""
    counts = [int(s) for s in sizes.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-metrics-"))
    table = Table(title="GET /metrics against stored jobs (whole request, from a client)")
    names = ("stored jobs", "start-up (s)", "/metrics median (ms)", "p99 (ms)", "/ui median (ms)")
    for name in names:
        table.add_column(name, justify="right")
    medians = []
    try:
        for n in counts:
            startup, times, pages = measure(n, scrapes, workdir)
            times.sort()
            median = statistics.median(times)
            medians.append(median)
            p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
            page = statistics.median(pages)
            table.add_row(
                f"{n:,}",
                f"{startup:.2f}",
                f"{1000 * median:.1f}",
                f"{1000 * p99:.1f}",
                f"{1000 * page:.1f}",
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(table)
    if len(medians) > 1:
        console.print(
            f"median at {counts[-1]:,} jobs / median at {counts[0]:,} jobs: "
            f"{medians[-1] / medians[0]:.2f}"
        )


if __name__ == "__main__":
    typer.run(main)
