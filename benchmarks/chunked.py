"""Chunked encoding at the ffmpeg level: one movie encoded whole, then in K chunks encoded in
parallel (K ffmpeg processes, as on K workers) and merged, in the same run.

Each repeat runs, back to back: the whole-file encode with ``--threads`` encoder threads (one
worker), the same with K x ``--threads`` (one worker holding all the chunks' cores), the K
chunks in parallel then the merge, the K chunks one after the other (each alone, for its own
cost), and a one-frame chunk at the first cut (startup + seek, nothing else). Prints the median
of each, the speedup, and the three figures the simulator's model takes:

- per-chunk overhead: what a chunk costs beyond its share of the whole encode,
  (sum of the chunks run alone - whole) / K, seconds;
- fixed cost of a chunk: the one-frame chunk, seconds;
- merge cost: the concat + audio copy + faststart, seconds.

The default movie is the catalog's longest, bbb_9.mp4 (60 s, 1080p, 25 fps).

    python benchmarks/chunked.py [--movie bbb_9.mp4] [--k 2] [--duration-scale 1]
                                 [--max-height 1080] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import av
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.worker.chunks import Chunk, encode_chunk, merge_chunks, plan_chunks
from dacirco.worker.ffmpeg import InputInfo, build_command, probe_input, run_ffmpeg

console = Console()


async def _timed(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(container.streams.video[0]) if p.size)


def main(
    movie: Annotated[str, typer.Option(help="catalog movie to encode")] = "bbb_9.mp4",
    k: Annotated[int, typer.Option(min=2, help="number of chunks (and of processes)")] = 2,
    duration_scale: Annotated[float, typer.Option(help="catalog duration scale")] = 1.0,
    max_height: Annotated[int, typer.Option(help="catalog resolution cap")] = 1080,
    repeats: Annotated[int, typer.Option(min=1, help="rounds of every measure")] = 3,
    threads: Annotated[int, typer.Option(min=1, help="encoder threads per process")] = 1,
    bitrate: Annotated[int, typer.Option(help="kbit/s")] = 7000,
    speed: Annotated[str, typer.Option(help="ultrafast or fast")] = "ultrafast",
    codec: Annotated[str, typer.Option(help="h264 or hevc")] = "h264",
) -> None:
    """Time a movie encoded whole and in K parallel chunks + merge, in the same run."""
    spec = movie_spec(
        int(movie.removeprefix("bbb_").removesuffix(".mp4")),
        duration_scale=duration_scale,
        max_height=max_height,
    )
    work = Path(tempfile.mkdtemp(prefix="dacirco-chunked-"))
    try:
        source = work / spec.name
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"generating {spec.name} in {work}", total=spec.frames)
            generate_movie(spec, source, lambda done, _total: bar.update(task, completed=done))
        info = probe_input(source)
        plan = plan_chunks(spec.duration, spec.fps, spec.frames, k)
        console.print(
            f"{spec.name}: {spec.duration:g} s, {spec.width}x{spec.height}, {spec.fps} fps, "
            f"{spec.frames} frames; {k} chunks of {[c.frames for c in plan]} frames; "
            f"{bitrate} kbit/s, {speed}, {codec}, {threads} encoder thread(s) per process; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
        )
        rounds = asyncio.run(_measure(source, info, plan, repeats, threads, bitrate, speed, codec))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _report(rounds, spec.frames, k, threads)


async def _measure(
    source: Path,
    info: InputInfo,
    plan: list[Chunk],
    repeats: int,
    threads: int,
    bitrate: int,
    speed: str,
    codec: str,
) -> list[dict[str, float]]:
    work = source.parent
    options = {"bitrate_kbps": bitrate, "speed": speed, "codec": codec}
    one_frame = Chunk(0, plan[1].start_frame, plan[1].start_frame + 1, plan[1].fps)
    files = [work / f"chunk-{c.index}.mp4" for c in plan]
    merged = work / "merged.mp4"
    rounds = []
    for r in range(1, repeats + 1):
        row: dict[str, float] = {}
        for label, n in (("whole", threads), ("whole_all", threads * len(plan))):
            cmd = build_command(
                source, work / f"{label}.mp4", threads=n, audio_codec=info.audio_codec, **options
            )
            row[label] = await _timed(lambda cmd=cmd: run_ffmpeg(cmd, None, None))

        async def chunk(c: Chunk, out: Path) -> float:
            return await _timed(lambda: encode_chunk(source, out, c, threads=threads, **options))

        started = time.perf_counter()
        parallel = await asyncio.gather(*(chunk(c, f) for c, f in zip(plan, files, strict=True)))
        row["chunks_parallel"] = time.perf_counter() - started
        row["slowest_chunk"] = max(parallel)
        row["merge"] = await _timed(lambda: merge_chunks(files, source, merged, info=info))
        frames = _video_frames(merged)
        if frames != plan[-1].end_frame:
            raise SystemExit(f"the merged movie has {frames} frames, not {plan[-1].end_frame}")
        alone = [await chunk(c, f) for c, f in zip(plan, files, strict=True)]
        row["chunks_alone"] = sum(alone)
        row["one_frame"] = await chunk(one_frame, work / "one-frame.mp4")
        rounds.append(row)
        console.print(
            f"round {r}/{repeats}: whole {row['whole']:.2f} s, whole x{len(plan)} threads "
            f"{row['whole_all']:.2f} s, chunks in parallel {row['chunks_parallel']:.2f} s "
            f"+ merge {row['merge']:.2f} s, chunks alone {row['chunks_alone']:.2f} s, "
            f"one-frame chunk {row['one_frame']:.2f} s"
        )
    return rounds


def _report(rounds: list[dict[str, float]], frames: int, k: int, threads: int) -> None:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    table = Table(title=f"whole vs {k} chunks, median of {len(rounds)} round(s), seconds")
    for col in ("step", "median s", "min s", "max s", "encoder threads"):
        table.add_column(col, justify="right" if col != "step" else "left")
    labels = {
        "whole": ("whole file, one process", threads),
        "whole_all": (f"whole file, {k * threads} threads", k * threads),
        "chunks_parallel": (f"{k} chunks in parallel", k * threads),
        "slowest_chunk": ("  slowest chunk", threads),
        "merge": ("merge (concat, copy)", 0),
        "chunks_alone": (f"{k} chunks one by one (sum)", threads),
        "one_frame": ("one-frame chunk at the cut", threads),
    }
    for key, (label, encoders) in labels.items():
        values = [r[key] for r in rounds]
        low, high = f"{min(values):.3f}", f"{max(values):.3f}"
        table.add_row(label, f"{med(key):.3f}", low, high, str(encoders or "-"))
    console.print(table)
    chunked = statistics.median(r["chunks_parallel"] + r["merge"] for r in rounds)
    speedup = statistics.median(r["whole"] / (r["chunks_parallel"] + r["merge"]) for r in rounds)
    same_cores = statistics.median(
        r["whole_all"] / (r["chunks_parallel"] + r["merge"]) for r in rounds
    )
    overhead = statistics.median((r["chunks_alone"] - r["whole"]) / k for r in rounds)
    console.print(
        f"speedup with {k} chunks: {speedup:.2f} (whole {med('whole'):.2f} s -> chunks + merge "
        f"{chunked:.2f} s; ideal {k}); against one process with the same {k * threads} "
        f"threads: {same_cores:.2f}"
    )
    console.print(
        f"per-chunk overhead {overhead:+.3f} s (chunks alone vs whole, per chunk); fixed cost "
        f"of a chunk (startup + seek + 1 frame) {med('one_frame'):.3f} s; merge cost "
        f"{med('merge'):.3f} s ({frames} frames)"
    )


if __name__ == "__main__":
    typer.run(main)
