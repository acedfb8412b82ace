"""A streaming preset on one catalog movie, through a real service: how long the ladder
takes on one worker, and what a player gets from its playlist.

Generates ``bbb_<i>.mp4`` at its catalog size, runs one job with the preset (default:
hls-ladder, ultrafast) on a `dacirco serve` with one small worker, then plays the playlist
with ffmpeg over HTTP from the service and measures every rendition (resolution, video
bitrate against the one asked, duration, keyframes at the segment boundaries).

    python benchmarks/ladder.py [--movie bbb_9.mp4] [--preset hls-ladder] [--speed ultrafast]
                                [--quality]

With ``--quality`` the job also measures each rendition's VMAF, PSNR and SSIM against the
input (``"quality": true``): they are printed, with the seconds the measurement added.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import av
import httpx
import typer
from rich.console import Console
from rich.table import Table

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.catalog.service import add
from dacirco.config import open_local_storage
from dacirco.ffmpeg_bin import ffmpeg_exe

sys.path.insert(0, str(Path(__file__).parent))
from harness import free_port, start_service, submit_and_wait

console = Console()


def measure(path: Path) -> list[tuple[int, int, float, float, int]]:
    """(width, height, seconds, kbit/s, keyframes) of each video stream of ``path``."""
    with av.open(str(path)) as container:
        sizes: dict[int, list[tuple[int, int, int, bool]]] = {}
        for p in container.demux(video=list(range(len(container.streams.video)))):
            if p.size and p.pts is not None:
                sizes.setdefault(p.stream.index, []).append(
                    (p.pts, p.duration or 0, p.size, p.is_keyframe)
                )
        rows = []
        for stream in container.streams.video:
            got = sizes[stream.index]
            tb = float(stream.time_base)
            start = min(pts for pts, *_ in got) * tb
            seconds = max(pts + d for pts, d, *_ in got) * tb - start
            kbps = sum(size for _, _, size, _ in got) * 8 / seconds / 1000
            keys = sum(1 for *_, key in got if key)
            cc = stream.codec_context
            rows.append((cc.width, cc.height, seconds, kbps, keys))
    return rows


def run_job(api: httpx.Client, body: dict[str, Any]) -> tuple[float, dict[str, Any], Any]:
    """Submit ``body``, wait for its end: the wall time, the job, its outputs' listing."""
    wall, job = submit_and_wait(api, body)
    return wall, job, api.get(f"/jobs/{job['id']}/outputs").json()


def print_quality(job: dict, wall: float) -> None:
    """Each rendition's measured quality, and what measuring it cost."""
    measured = job["quality_figures"]
    table = Table(title="measured quality (libvmaf vmaf_v0.6.1; PSNR and SSIM of luma)")
    for column in ("rendition", "kbit/s", "VMAF", "PSNR dB", "SSIM", "frames scored"):
        table.add_column(column, justify="right")
    for r in measured["renditions"]:
        table.add_row(
            f"{r['height']}p", str(r["video_bitrate"]), f"{r['vmaf']:.2f}", f"{r['psnr']:.2f}",
            f"{r['ssim']:.4f}", f"{r['frames']} (1 in {r['every']})",
        )  # fmt: skip
    console.print(table)
    extra = measured["seconds"]
    console.print(
        f"measuring took {extra:.1f} s on the worker, inside the transcode step: "
        f"{extra / max(wall - extra, 1e-9):+.0%} on the wall time without it"
    )


def main(
    movie: Annotated[str, typer.Option(help="catalog movie")] = "bbb_9.mp4",
    preset: Annotated[str, typer.Option(help="hls-ladder or dash-ladder")] = "hls-ladder",
    speed: Annotated[str, typer.Option(help="ultrafast or fast")] = "ultrafast",
    max_height: Annotated[int, typer.Option(help="catalog resolution cap")] = 1080,
    quality: Annotated[bool, typer.Option(help="measure VMAF, PSNR and SSIM too")] = False,
) -> None:
    """Run a ladder preset on one movie and measure what a player gets."""
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-ladder-"))
    data_dir = workdir / "data"
    index = int(movie.removeprefix("bbb_").removesuffix(".mp4"))
    spec = movie_spec(index, max_height=max_height)
    console.print(f"generating {movie} ({spec.height}p, {spec.duration:g} s) ...")
    generate_movie(spec, workdir / movie)
    add(open_local_storage(data_dir), [workdir / movie])
    port = free_port()
    proc = start_service(data_dir, port, workdir)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            body = {"id_video": movie, "preset": preset, "speed": speed, "quality": quality}
            wall, job, listing = run_job(api, body)
        url = next(iter(listing["playlists"].values()))
        played = workdir / "played.mkv"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", url,
               "-map", "0:v", "-c", "copy", str(played)]  # fmt: skip
        subprocess.run(cmd, check=True)
        renditions = job["outputs"][0]["renditions"]
        table = Table(title=f"{preset} of {movie} ({spec.height}p, {spec.duration:g} s), {speed}")
        for column in ("rendition", "resolution", "kbit/s", "asked", "error", "s", "keyframes"):
            table.add_column(column, justify="right")
        for r, (w, h, seconds, kbps, keys) in zip(renditions, measure(played), strict=True):
            asked = r["video_bitrate"]
            table.add_row(
                f"{r['height']}p", f"{w}x{h}", f"{kbps:.0f}", str(asked),
                f"{kbps / asked - 1:+.1%}", f"{seconds:.2f}", str(keys),
            )  # fmt: skip
        console.print(table)
        total = sum(f["size"] for f in listing["files"])
        figures = job["figures"] or {}
        console.print(
            f"wall time {wall:.1f} s (delay {job['delay']:.1f} s, transcode "
            f"{figures.get('transcode', 0):.1f} s on one small worker); "
            f"{len(listing['files'])} files, {total / 1e6:.1f} MB"
        )
        if quality:
            print_quality(job, wall)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    typer.run(main)
