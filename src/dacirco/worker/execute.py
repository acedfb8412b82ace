"""What a worker does with one task once it holds it: download the input, transcode (the
whole movie, a chunk or a merge, a streaming job's renditions or their packaging), measure
the quality when asked, upload, and report each step on the task's channel."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dacirco.protocol import TaskReport, TaskSpec
from dacirco.worker.channel import TaskChannel
from dacirco.worker.ffmpeg import build_command, probe_input, run_ffmpeg
from dacirco.worker.ladder import run_streaming
from dacirco.worker.packaging import run_package
from dacirco.worker.parts import encode_part
from dacirco.worker.quality import task_quality
from dacirco.worker.transfer import download, upload

log = logging.getLogger("dacirco.worker")


async def execute(
    spec: TaskSpec,
    channel: TaskChannel,
    work: Path,
    store: httpx.AsyncClient,
    retries: dict[str, Any],
    flush_samples: Callable[[], None] | None = None,
) -> None:
    """Run ``spec`` in the folder ``work``; ``flush_samples``: send the resource samples
    of the transcode while the upload runs."""
    what = f"{spec.input_name} -> {spec.output_name}, {spec.bitrate_kbps} kbit/s, {spec.speed}"
    log.info("task %s: %s, %s", spec.task_id, what, spec.codec)
    if spec.outputs and spec.kind == "merge":  # a ladder's packaging reads no input
        await run_package(spec, channel, work, store, retries)
        return
    timings: dict[str, float] = {}
    await channel.send(TaskReport(step="started"))

    suffix = Path(spec.input_name).suffix
    source = "input" + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else "")
    target = "output.mp4"
    started = time.monotonic()
    size = await download(store, spec.input_url, work / source, check=channel.check, **retries)
    timings["download"] = time.monotonic() - started
    await channel.send(TaskReport(step="downloaded", seconds=timings["download"], bytes=size))

    started = time.monotonic()
    info = await asyncio.to_thread(probe_input, work / source)
    timings["probe"] = time.monotonic() - started
    if spec.outputs:
        await run_streaming(spec, channel, work / source, info, store, retries)
        return
    if spec.kind != "whole":
        await encode_part(spec, work / source, work / target, info, channel, store, retries)
    else:
        cmd = build_command(
            source,
            target,
            bitrate_kbps=spec.bitrate_kbps,
            speed=spec.speed,
            codec=spec.codec,
            threads=spec.threads,
            audio_codec=info.audio_codec,
            input_format=info.format_name,
        )
        started = time.monotonic()
        await run_ffmpeg(
            cmd,
            spec.input_duration or info.duration,
            spec.deadline_seconds,
            channel.on_progress,
            cwd=work,
        )
    timings["transcode"] = time.monotonic() - started
    quality = await task_quality(spec, work / source, work / target, info)
    report = TaskReport(step="transcoded", seconds=timings["transcode"], quality=quality)
    await channel.send(report)
    if flush_samples is not None and spec.kind == "whole":
        flush_samples()  # the transcode's samples, while the upload runs

    started = time.monotonic()
    url = await channel.upload_url()
    size = await upload(store, work / target, url, check=channel.check, **retries)
    timings["upload"] = time.monotonic() - started
    await channel.send(TaskReport(step="uploaded", seconds=timings["upload"], bytes=size))
    log.info("task %s (%s) done: %s", spec.task_id, spec.kind, _timings(timings))


def _timings(timings: dict[str, float]) -> str:
    return ", ".join(f"{step} {seconds:.3f} s" for step, seconds in timings.items())
