"""A retention sweep over many finished jobs, and whether the API keeps answering meanwhile.

A data dir whose database holds N completed jobs that ended long ago (written straight
through the store), each with a small output file; a real `dacirco serve --retention 1d` on
it: its first sweep, at start, deletes them all. A client asks `GET /jobs?limit=1` and
`/health` all along; the script prints how long the sweep took (from /health answering to
`dacirco_retention_deleted_jobs_total` = N), the answers' median, p99 and max time, any failed
call, and the rows and files left.

    python benchmarks/retention_sweep.py [--jobs 20000]
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from dacirco.config import database_path

sys.path.insert(0, str(Path(__file__).parent))
from harness import fill, free_port, healthy

OUTPUT = b"\0" * 4096


def main(jobs: Annotated[int, typer.Option(help="finished jobs stored")] = 20000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        asyncio.run(fill(data_dir, jobs, OUTPUT))
        db_before = _db_size(data_dir)
        port = free_port()
        cmd = [
            sys.executable, "-m", "dacirco.cli", "serve", "--port", str(port),
            "--data-dir", str(data_dir), "--event-log-file", str(workdir / "tc-events-01.txt"),
            "--log-level", "info", "--retention", "1d",
        ]  # fmt: skip
        err = (workdir / "serve.log").open("wb")
        proc = healthy(subprocess.Popen(cmd, cwd=workdir, stdout=err, stderr=err), port, 600)
        times: list[float] = []
        failures: list[str] = []
        t0 = time.perf_counter()
        swept = reclaimed = None
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                while time.perf_counter() - t0 < 600:
                    for path in ("/jobs?limit=1", "/health"):
                        t = time.perf_counter()
                        try:
                            if client.get(path).status_code != 200:
                                failures.append(path)
                        except httpx.HTTPError as exc:
                            failures.append(f"{path}: {exc!r}")
                        times.append(time.perf_counter() - t)
                    text = client.get("/metrics").text
                    found = re.search(r"^dacirco_retention_deleted_jobs_total (\S+)$", text, re.M)
                    if swept is None and found and float(found.group(1)) >= jobs:
                        swept = time.perf_counter() - t0
                    given = re.search(
                        r"^dacirco_retention_database_bytes_given_back_total (\S+)$", text, re.M
                    )
                    if swept is not None and given and float(given.group(1)) > 0:
                        reclaimed = time.perf_counter() - t0  # the sweep's last part
                        break
                    time.sleep(0.02)
        finally:
            proc.terminate()
            proc.wait(30)
            err.close()
        with sqlite3.connect(database_path(data_dir)) as db:
            rows = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        files = len(list((data_dir / "videos" / "output-videos").iterdir()))
        ms = sorted(t * 1000 for t in times)
        print(f"{jobs} finished jobs: swept in {swept:.1f} s" if swept else "not swept in time")
        print(
            f"API during the sweep: {len(ms)} calls, median {statistics.median(ms):.1f} ms, "
            f"p99 {ms[int(0.99 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms, "
            f"{len(failures)} failed"
        )
        print(f"left: {rows} job rows, {files} output files")
        print(
            f"database file: {db_before / 1e6:.1f} MB before, {_db_size(data_dir) / 1e6:.1f} MB "
            + (
                f"after (given back by {reclaimed:.1f} s)"
                if reclaimed
                else "after (none given back)"
            )
        )
        for line in (workdir / "serve.log").read_text().splitlines():
            if "retention" in line:
                print(line)


def _db_size(data_dir: Path) -> int:
    """The database file and its write-ahead log."""
    db = database_path(data_dir)
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


if __name__ == "__main__":
    typer.run(main)
