"""DaCirco's own overhead: a bare ffmpeg transcode against the same job through DaCirco.

In one run, on one generated movie, alternate R times: the worker's exact ffmpeg command run
by hand, then the same job submitted over REST to a warm idle worker (grace-period). The
default job is the classic request: bbb_5.mp4 (18 s, 1080p) at 7000 kbit/s, ultrafast.
Prints each pair, the median ratio delay/bare (goal <= 1.05), the median absolute overhead
(goal <= 0.3 s) and where a job's time goes. The job's delay is the server's own figure,
EV7 (uploaded) - EV1 (received).

    python benchmarks/overhead.py [--repeats 5] [--movie bbb_5.mp4] [--duration-scale 1]
"""

from __future__ import annotations

import shutil
import signal
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

from dacirco.catalog.service import seed
from dacirco.config import open_local_storage
from dacirco.worker.ffmpeg import build_command, probe_input

sys.path.insert(0, str(Path(__file__).parent))
from harness import STEPS, free_port, run_job, start_service

console = Console()


def _bare(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(
    repeats: Annotated[int, typer.Option(min=1, help="pairs of runs")] = 5,
    movie: Annotated[str, typer.Option(help="catalog movie to transcode")] = "bbb_5.mp4",
    duration_scale: Annotated[float, typer.Option(help="catalog duration scale")] = 1.0,
    max_height: Annotated[int, typer.Option(help="catalog resolution cap")] = 1080,
    bitrate: Annotated[int, typer.Option(help="kbit/s")] = 7000,
    speed: Annotated[str, typer.Option(help="ultrafast or fast")] = "ultrafast",
) -> None:
    """Compare bare ffmpeg with the same job through DaCirco on a warm idle worker."""
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-bench-"))
    data_dir = workdir / "data"
    index = int(movie.removeprefix("bbb_").removesuffix(".mp4"))
    console.print(f"generating the catalog up to {movie} in {data_dir} ...")
    seed(
        open_local_storage(data_dir),
        duration_scale=duration_scale,
        max_height=max_height,
        count=index + 1,
    )
    source = data_dir / "videos" / "input-videos" / movie
    info = probe_input(source)
    cmd = build_command(
        source,
        workdir / "bare.mp4",
        bitrate_kbps=bitrate,
        speed=speed,
        threads=2,  # the default flavor, small, has 2 cpus
        audio_codec=info.audio_codec,
    )
    port = free_port()
    proc = start_service(data_dir, port, workdir)
    body = {"id_video": movie, "bitrate": bitrate, "speed": speed}
    rows: list[tuple[float, float, float]] = []
    step_rows: list[dict[str, float]] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            run_job(client, body)  # boots the worker: every measured job finds it warm and idle
            for _ in range(repeats):
                bare = _bare(cmd)
                delay, wall, steps = run_job(client, body)
                rows.append((bare, delay, wall))
                step_rows.append(steps)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"{movie} ({info.duration:.1f} s), {bitrate} kbit/s, {speed}")
    for col in ("run", "bare ffmpeg s", "DaCirco delay s", "ratio", "+ s", "client wall s"):
        table.add_column(col, justify="right")
    for i, (bare, delay, wall) in enumerate(rows, 1):
        table.add_row(
            str(i), f"{bare:.3f}", f"{delay:.3f}", f"{delay / bare:.3f}",
            f"{delay - bare:+.3f}", f"{wall:.3f}",
        )  # fmt: skip
    console.print(table)
    steps = Table(title="where a job's time goes (median over the runs, seconds)")
    for label, *_ in STEPS:
        steps.add_column(label, justify="right")
    steps.add_row(*(f"{statistics.median(r[label] for r in step_rows):.3f}" for label, *_ in STEPS))
    console.print(steps)
    ratio = statistics.median(d / b for b, d, _ in rows)
    extra = statistics.median(d - b for b, d, _ in rows)
    console.print(
        f"median ratio {ratio:.3f} (goal <= 1.05), median overhead {extra:+.3f} s "
        f"(goal <= +0.3 s), over {repeats} pairs"
    )


if __name__ == "__main__":
    typer.run(main)
