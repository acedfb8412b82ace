"""A ladder on one worker against the same ladder in parts on several, through a real service
(controller in this process, real worker processes running real ffmpeg).

Generates ``bbb_<i>.mp4`` at its catalog size, then runs the preset (default: hls-ladder,
ultrafast, quality measured) twice on a fresh service each time: once on one worker
(grace-period, which never splits), once split in as many parts as the ladder is worth, each
part on a worker of its own (``right-size`` told to split every job and to use the one
flavor). Workers are ``tiny`` (one CPU each), and each run is held to its workers' cores
(CPU affinity, which the workers inherit): the comparison is one one-core machine against
several. Prints, for each run, the wall time from the request to Completed (workers' boots
included, in parallel), the wait for the first task, each task's transcode seconds, then
each rendition's measured bitrate and VMAF and the folder's total size.

    python benchmarks/ladder_parts.py [--movie bbb_9.mp4] [--preset hls-ladder]
                                      [--speed ultrafast] [--flavor tiny] [--no-quality]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dacirco.api.thread_server import free_port, serve_in_thread
from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.catalog.service import add
from dacirco.config import open_local_storage
from dacirco.domain import FLAVORS
from dacirco.ffmpeg_bin import ffmpeg_exe
from dacirco.outputs.parts import most_parts
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import dump, fit
from dacirco.policies.right_size import RightSize
from dacirco.service import build
from dacirco.service_config import ServiceConfig

sys.path.insert(0, str(Path(__file__).parent))
from ladder import measure, run_job

console = Console(width=150)
ALL_CORES = os.sched_getaffinity(0)


def run(
    data: Path, work: Path, body: dict[str, Any], parts: int, flavor: str
) -> tuple[float, dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """One job on a fresh service: its wall time, the job, its outputs, its events. One part:
    grace-period starts one worker of ``flavor`` and never splits; more: right-size splits
    every job and starts a worker of ``flavor`` per part."""
    log = work / f"events-{parts}.txt"
    cpus = FLAVORS[flavor].cpus * parts
    # The service and its workers (they inherit it) on as many cores as the workers have in
    # all: ffmpeg runs each encoder in a thread of its own, so a one-CPU worker left alone on a
    # larger machine would use every core, not its flavor's.
    os.sched_setaffinity(0, sorted(ALL_CORES)[: min(cpus, len(ALL_CORES))])
    port = free_port()
    options = ServiceConfig.of(
        port=port, data_dir=data, event_log_file=log, max_workers=parts, local_cpus=cpus,
        call_interval=0.2, algorithm="grace-period" if parts == 1 else "right-size",
        sample_interval=0, flavor=flavor,
    )  # fmt: skip
    tiers = ((0.0, flavor),)  # every part on a worker of this flavor
    policy = RightSize(tiers, split_work=0.0, max_chunks=parts) if parts > 1 else None
    app, _ = build(options, policy)
    with serve_in_thread(app, port) as url, httpx.Client(base_url=url, timeout=30) as api:
        wall, job, listing = run_job(api, body)
        played = play(work, listing)  # while the service serves it
    rendition_table(played, job, "whole" if parts == 1 else f"{parts} parts + packaging")
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    return wall, job, listing, lines


def steps(events: list[dict[str, Any]]) -> dict[str, Any]:
    """From the event log: the wait for the first assignment (boots included), each task's
    transcode step (EV5 -> EV6) and the longest upload (EV6 -> EV7 or EV16)."""
    at: dict[tuple[str, str], float] = {}
    first = {}
    for e in events:
        t = datetime.fromisoformat(e["time"]).timestamp()
        if e["code"] in ("EV1", "EV3"):
            first.setdefault(e["code"], t)
        if e.get("task_id"):
            at[(e["code"], e["task_id"])] = t
    tasks = {task for _, task in at}
    transcode = [
        at[("EV6", t)] - at[("EV5", t)] for t in tasks if ("EV6", t) in at and ("EV5", t) in at
    ]
    uploads = [
        at.get(("EV7", t), at.get(("EV16", t), at[("EV6", t)])) - at[("EV6", t)]
        for t in tasks
        if ("EV6", t) in at
    ]
    return {
        "queue": first.get("EV3", 0.0) - first.get("EV1", 0.0),
        "transcode": sorted(transcode, reverse=True),
        "upload": max(uploads, default=0.0),
    }


def main(
    movie: Annotated[str, typer.Option(help="catalog movie")] = "bbb_9.mp4",
    preset: Annotated[str, typer.Option(help="hls-ladder or dash-ladder")] = "hls-ladder",
    speed: Annotated[str, typer.Option(help="ultrafast or fast")] = "ultrafast",
    flavor: Annotated[str, typer.Option(help="the workers' flavor")] = "tiny",
    quality: Annotated[bool, typer.Option(help="measure VMAF, PSNR and SSIM")] = True,
) -> None:
    """The same ladder on one worker, then in parts on several."""
    if flavor not in FLAVORS:
        raise typer.BadParameter(f"unknown flavor {flavor!r} (known: {', '.join(FLAVORS)})")
    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}")
    work = Path(tempfile.mkdtemp(prefix="dacirco-ladder-parts-"))
    try:
        index = int(movie.removeprefix("bbb_").removesuffix(".mp4"))
        spec = movie_spec(index)
        console.print(f"generating {movie} ({spec.height}p, {spec.duration:g} s) ...")
        generate_movie(spec, work / movie)
        outputs = dump(fit(PRESETS[preset].outputs, spec.height))
        k = most_parts(outputs, False, spec.height, spec.duration)
        body = {"id_video": movie, "preset": preset, "speed": speed, "quality": quality,
                "reuse": False}  # fmt: skip
        summary = Table(title=f"{preset} of {movie} ({spec.height}p, {spec.duration:g} s), "
                        f"{speed}, {flavor} workers ({FLAVORS[flavor].cpus} CPU)")  # fmt: skip
        for column in ("run", "workers", "wall s", "to first task s", "tasks' transcode s",
                       "longest upload s", "files", "MB"):  # fmt: skip
            summary.add_column(column, justify="right")
        walls = {}
        for parts in (1, k):
            data = work / f"data-{parts}"
            add(open_local_storage(data), [work / movie])
            console.print(f"running on {parts} worker(s) ...")
            wall, _, listing, events = run(data, work, body, parts, flavor)
            walls[parts] = wall
            found = steps(events)
            took = ", ".join(f"{s:.1f}" for s in found["transcode"])
            size = sum(f["size"] for f in listing["files"])
            label = "whole" if parts == 1 else f"{parts} parts + packaging"
            summary.add_row(label, str(parts), f"{wall:.1f}", f"{found['queue']:.1f}", took,
                            f"{found['upload']:.1f}", str(len(listing["files"])),
                            f"{size / 1e6:.1f}")  # fmt: skip
        console.print(summary)
        console.print(f"in parts / whole: {walls[k] / walls[1]:.2f} of the wall time")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def play(work: Path, listing: dict[str, Any]) -> Path:
    """The video of every rendition, as ffmpeg plays the playlist over HTTP."""
    url = next(iter(listing["playlists"].values()))
    played = work / "played.mkv"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", url,
           "-map", "0:v", "-c", "copy", str(played)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return played


def rendition_table(played: Path, job: dict[str, Any], label: str) -> None:
    """Each rendition as a player gets it: resolution, bitrate against the one asked, VMAF."""
    scores = {r["rendition"]: r for r in (job.get("quality_figures") or {}).get("renditions", [])}
    table = Table(title=f"renditions ({label})")
    for column in ("rendition", "resolution", "kbit/s", "asked", "error", "VMAF", "keyframes"):
        table.add_column(column, justify="right")
    renditions = job["outputs"][0]["renditions"]
    for i, (r, (w, h, _, kbps, keys)) in enumerate(zip(renditions, measure(played), strict=True)):
        vmaf = scores.get(i + 1, {}).get("vmaf")
        table.add_row(
            f"{r['height']}p", f"{w}x{h}", f"{kbps:.0f}", str(r["video_bitrate"]),
            f"{kbps / r['video_bitrate'] - 1:+.1%}", f"{vmaf:.2f}" if vmaf else "-", str(keys),
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
