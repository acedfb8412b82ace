"""What the storage costs a job: download and upload MB/s, local folder against SeaweedFS S3.

In one run, on one generated movie: the same job (warm idle worker, grace-period) R times on
``--storage local`` (signed /files URLs served by the API), then R times on ``--storage s3``
(presigned URLs to a SeaweedFS started here on free ports). The figures are the server's own
step timings: download = started → downloaded, upload = transcoded → uploaded.

    python benchmarks/storage.py [--repeats 3] [--movie bbb_5.mp4] [--duration-scale 1]
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dacirco.catalog.service import add, seed
from dacirco.config import open_local_storage, open_storage
from dacirco.storage.s3 import S3Config
from dacirco.storage.seaweed import SeaweedServer, free_port

sys.path.insert(0, str(Path(__file__).parent))
from harness import run_job, start_service

console = Console()


def _run(data_dir: Path, workdir: Path, extra: list[str], body: dict, repeats: int) -> list:
    port = free_port()
    proc = start_service(data_dir, port, workdir, extra)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            run_job(client, body)  # boots the worker
            return [run_job(client, body)[2] for _ in range(repeats)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main(
    repeats: Annotated[int, typer.Option(min=1, help="jobs per backend")] = 3,
    movie: Annotated[str, typer.Option(help="catalog movie to transcode")] = "bbb_5.mp4",
    duration_scale: Annotated[float, typer.Option(help="catalog duration scale")] = 1.0,
    max_height: Annotated[int, typer.Option(help="catalog resolution cap")] = 1080,
    bitrate: Annotated[int, typer.Option(help="kbit/s")] = 7000,
) -> None:
    """Download/upload MB/s of one job through the local backend and through SeaweedFS."""
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-bench-storage-"))
    data_dir = workdir / "data"
    index = int(movie.removeprefix("bbb_").removesuffix(".mp4"))
    console.print(f"generating the catalog up to {movie} in {data_dir} ...")
    local = open_local_storage(data_dir)
    seed(local, duration_scale=duration_scale, max_height=max_height, count=index + 1)
    source = data_dir / "videos" / "input-videos" / movie
    body = {"id_video": movie, "bitrate": bitrate, "speed": "ultrafast"}
    in_mb = source.stat().st_size / 1e6
    out_mb = bitrate * 1000 / 8 * _duration(local, movie) / 1e6  # the output's nominal size
    results: dict[str, list] = {}
    results["local"] = _run(data_dir, workdir, [], body, repeats)
    with SeaweedServer(workdir / "weed", s3_port=free_port()) as weed:
        host, port = weed.endpoint.rsplit(":", 1)
        add(open_storage("s3", data_dir, S3Config(host, int(port))), [source])
        extra = ["--storage", "s3", "--minio-server", host, "--minio-port", port]
        results["SeaweedFS S3"] = _run(data_dir / "s3run", workdir, extra, body, repeats)
    table = Table(title=f"{movie}: {in_mb:.1f} MB in, ~{out_mb:.1f} MB out; medians of {repeats}")
    for column in ("storage", "download s", "MB/s", "upload s", "MB/s", "added to the job s"):
        table.add_column(column, justify="right")
    for name, steps in results.items():
        down = statistics.median(s["download"] for s in steps)
        up = statistics.median(s["upload"] for s in steps)
        table.add_row(
            name, f"{down:.3f}", f"{in_mb / down:.0f}", f"{up:.3f}", f"{out_mb / up:.0f}",
            f"{down + up:.3f}",
        )  # fmt: skip
    console.print(table)


def _duration(storage: object, movie: str) -> float:
    info = storage.stat(f"input-videos/{movie}")  # type: ignore[attr-defined]
    return float(info.metadata["duration"])


if __name__ == "__main__":
    typer.run(main)
