"""The worker's side of split jobs: encode one chunk of the input, or merge the chunks.

The chunk plan is computed here from what the controller sends (the input's frame rate and
frame count, the number of chunks), so that every worker cuts the movie at the same frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from dacirco.protocol import TaskSpec
from dacirco.worker.channel import TaskChannel
from dacirco.worker.chunks import encode_chunk, merge_chunks, plan_chunks
from dacirco.worker.ffmpeg import InputInfo, TranscodeError
from dacirco.worker.transfer import download


async def encode_part(
    spec: TaskSpec,
    source: Path,
    target: Path,
    info: InputInfo,
    channel: TaskChannel,
    store: httpx.AsyncClient | None,
    retries: dict[str, Any],
) -> None:
    """The encoding step of a chunk or merge task: ``target`` is what to upload."""
    if spec.kind == "chunk":
        duration = info.duration or spec.input_duration
        if not (duration and spec.input_fps and spec.chunks and spec.chunk_index):
            raise TranscodeError("a chunk task needs the input's duration, fps and its index")
        try:
            plan = plan_chunks(duration, spec.input_fps, spec.input_frames, spec.chunks)
            chunk = plan[spec.chunk_index - 1]
        except (ValueError, IndexError) as exc:
            raise TranscodeError(f"cannot cut chunk {spec.chunk_index}: {exc}") from None
        await encode_chunk(
            source,
            target,
            chunk,
            bitrate_kbps=spec.bitrate_kbps,
            speed=spec.speed,
            codec=spec.codec,
            threads=spec.threads,
            input_format=info.format_name,
            deadline=spec.deadline_seconds,
            on_progress=channel.on_progress,
            cwd=target.parent,
        )
        return
    if not spec.chunk_urls:
        raise TranscodeError("a merge task needs the chunks' URLs")
    assert store is not None
    files = []
    for i, url in enumerate(spec.chunk_urls, start=1):
        path = target.parent / f"chunk-{i}.mp4"
        await download(store, url, path, check=channel.check, **retries)
        files.append(path)
    await merge_chunks(
        files,
        source,
        target,
        info=info,
        deadline=spec.deadline_seconds,
        on_progress=channel.on_progress,
        cwd=target.parent,
    )
