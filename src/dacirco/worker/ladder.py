"""A streaming task: every rendition of a job's outputs from one decode of the input (HLS,
DASH with fMP4 segments, MP4 files), keyframes at the same times in every rendition, then
each file uploaded into the job's output folder, the main file last."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from dacirco.outputs.names import FILE_NAME_RE, rendition_file
from dacirco.outputs.spans import Span
from dacirco.outputs.spec import Container, OutputSpec, Rendition
from dacirco.protocol import MAX_UPLOAD_NAMES, TaskReport, TaskSpec
from dacirco.worker.channel import TaskChannel
from dacirco.worker.ffmpeg import InputInfo, TranscodeError, ffmpeg_head, input_args, run_ffmpeg
from dacirco.worker.pieces import Piece, as_piece, pieces
from dacirco.worker.quality import measure_outputs
from dacirco.worker.thumbnails import make_thumbnails
from dacirco.worker.transfer import upload

log = logging.getLogger("dacirco.worker")

UPLOADS_AT_ONCE = 4


def _video_options(i: int, r: Rendition, speed: str) -> list[str]:
    """Encoder options of the ``i``-th video stream: capped rate with a half-second buffer
    (as the classic command), scene cuts off so that keyframes come only where forced."""
    rate, buffer = f"{r.video_bitrate}k", f"{max(1, (r.video_bitrate or 0) // 2)}k"
    if r.codec == "hevc":
        codec = ["libx265", f"-tag:v:{i}", "hvc1", f"-forced-idr:v:{i}", "1"]
        codec += [f"-x265-params:v:{i}", "log-level=error:scenecut=0:open-gop=0"]
    else:
        codec = ["libx264", f"-sc_threshold:v:{i}", "0"]
    return [
        f"-c:v:{i}",
        *codec,
        f"-b:v:{i}",
        rate,
        f"-maxrate:v:{i}",
        rate,
        f"-bufsize:v:{i}",
        buffer,
        f"-preset:v:{i}",
        speed,
    ]


def _scaled(renditions: list[Rendition]) -> str:
    """One decode split into every video rendition's size: ``[v0]``, ``[v1]``…"""
    n = len(renditions)
    heads = "".join(f"[s{i}]" for i in range(n))
    graph = [f"[0:v:0]split={n}{heads}"] if n > 1 else []
    for i, r in enumerate(renditions):
        source = f"[s{i}]" if n > 1 else "[0:v:0]"
        size = f"scale=-2:{r.height}" if r.height else "null"
        graph.append(f"{source}{size}[v{i}]")
    return ";".join(graph)


def _keyframes(segment: float, fps: float | None) -> list[str]:
    """A keyframe at every multiple of ``segment`` seconds and nowhere else: segment
    boundaries at the same times in every rendition."""
    opts = ["-force_key_frames", f"expr:gte(t,n_forced*{segment:g})"]
    if fps:
        gop = str(max(1, round(fps * segment)))
        opts += ["-g", gop, "-keyint_min", gop]
    return opts


def _seconds(span: Span | None, duration: float | None) -> float | None:
    """The seconds of the input a task encodes: its span's, or all of them."""
    if span is None or duration is None:
        return duration
    return span.length or max(0.0, duration - span.start)


def _in_time(span: Span | None, container: Container) -> list[str]:
    """A span's timestamps where they fall in the whole movie, written in each fragment's
    decode time (``frag_discont``) rather than in an edit list: the spans' init segments
    are then the same, and their segments follow each other in one rendition."""
    if span is None:
        return []
    offset = ["-output_ts_offset", f"{span.start:.6f}"]
    flags = "-hls_segment_options" if container is Container.HLS else "-format_options"
    return [*offset, flags, "movflags=+frag_discont"]


def build_streaming_command(
    source: Path | str,
    what: OutputSpec | Piece,
    *,
    speed: str,
    threads: int = 0,
    has_audio: bool = True,
    fps: float | None = None,
    input_format: str | None = None,
    ffmpeg: str | None = None,
) -> list[str]:
    """The ffmpeg command that writes the files of ``what`` (an output, or a part's piece of
    one) into the current directory."""
    piece = as_piece(what)
    out, items = piece.out, piece.items
    video = [r for _, r in items if r.video_bitrate is not None]
    if not has_audio and any(r.video_bitrate is None for _, r in items):
        raise TranscodeError("an audio-only rendition was asked for, and the input has no audio")
    span = piece.span
    start, length = (span.start, span.length) if span else (None, None)
    cmd = [*ffmpeg_head(ffmpeg), *input_args(source, input_format, start, length)]
    if video:
        cmd += ["-filter_complex", _scaled(video)]
    if threads > 0:
        cmd += ["-threads", str(threads)]
    if out.container is Container.MP4:
        return cmd + _mp4_outputs(items, speed, has_audio)
    maps: list[str] = []
    options: list[str] = []
    streams: list[str] = []  # var_stream_map entries (HLS), one per rendition
    audio_rates: list[int] = []  # DASH: one audio representation per distinct bitrate
    v = 0
    for index, r in items:
        entry = []
        if r.video_bitrate is not None:
            maps += ["-map", f"[v{v}]"]
            options += _video_options(v, r, speed)
            entry.append(f"v:{v}")
            v += 1
        rate = r.audio_bitrate if has_audio else None
        # HLS: each variant muxes its own audio; DASH: one audio representation per bitrate.
        if rate is not None and (out.container is Container.HLS or rate not in audio_rates):
            a = len(audio_rates)
            audio_rates.append(rate)
            maps += ["-map", "0:a:0"]
            options += [
                f"-c:a:{a}",
                "aac",
                f"-b:a:{a}",
                f"{rate}k",
                f"-ac:a:{a}",
                "2",
            ]
            entry.append(f"a:{a}")
        streams.append(",".join([*entry, f"name:{index}"]))
    cmd += [*maps, *options, *_keyframes(out.segment_seconds, fps)]
    cmd += ["-progress", "pipe:1", "-nostats", *_in_time(span, out.container)]
    if out.container is Container.HLS:
        # A variant's files are named by its rendition's index in the output (``name:``);
        # ffmpeg leaves %v as is in the init file's name when there is one variant.
        init = "hls-%v-init.mp4" if len(streams) > 1 else f"hls-{items[0][0]}-init.mp4"
        if span is not None:  # numbered as in the whole rendition; its own media playlists
            cmd += ["-start_number", str(span.first)]
        return [
            *cmd,
            "-f", "hls",
            "-hls_time", f"{out.segment_seconds:g}",
            "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4",
            "-hls_flags", "independent_segments",
            "-hls_segment_filename", "hls-%v-%05d.m4s",
            "-hls_fmp4_init_filename", init,
            "-master_pl_name", piece.master,
            "-var_stream_map", " ".join(streams),
            "hls-%v.m3u8" if span is None else f"hls-%v-s{piece.part}.m3u8",
        ]  # fmt: skip
    sets = [f"streams={kind}" for kind, n in (("v", v), ("a", len(audio_rates))) if n]
    return [
        *cmd,
        "-f", "dash",
        "-seg_duration", f"{out.segment_seconds:g}",
        # A span's segments are listed by name (SegmentList): the packaging appends the
        # next span's to them, which one template numbered from 1 per span could not say.
        "-use_template", "1" if span is None else "0",
        "-use_timeline", "1" if span is None else "0",
        "-adaptation_sets", " ".join(f"id={i},{s}" for i, s in enumerate(sets)),
        "-init_seg_name", f"{piece.dash}$RepresentationID$-init.m4s",
        "-media_seg_name", f"{piece.dash}$RepresentationID$-$Number%05d$.m4s",
        piece.manifest,
    ]  # fmt: skip


def _mp4_outputs(
    items: tuple[tuple[int, Rendition], ...], speed: str, has_audio: bool
) -> list[str]:
    """One file per rendition, each with its own maps and encoder options."""
    args: list[str] = []
    v = 0
    for i, r in items:
        if r.video_bitrate is not None:
            args += ["-map", f"[v{v}]", *_video_options(0, r, speed)]
            v += 1
        if has_audio and r.audio_bitrate is not None:
            args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{r.audio_bitrate}k", "-ac", "2"]
        args += ["-movflags", "+faststart", rendition_file(r.model_dump(), i)]
    return ["-progress", "pipe:1", "-nostats", *args]


async def encode_outputs(
    outputs: Sequence[OutputSpec | Piece],
    source: Path,
    folder: Path,
    info: InputInfo,
    *,
    speed: str,
    threads: int,
    fps: float | None,
    duration: float | None,
    deadline: float | None,
    on_progress: Callable[[float], Awaitable[None]],
) -> None:
    """Every output's (or piece's) files in ``folder``, one ffmpeg run per container."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, out in enumerate(outputs):

        async def progress(fraction: float, k: int = k) -> None:
            await on_progress((k + fraction) / len(outputs))

        cmd = build_streaming_command(
            source.resolve(),
            out,
            speed=speed,
            threads=threads,
            has_audio=info.audio_codec is not None,
            fps=fps,
            input_format=info.format_name,
        )
        await run_ffmpeg(cmd, duration, deadline, progress, cwd=folder)


def drop_init_segments(folder: Path) -> None:
    """A span after the first: its init segments are the first span's, which uploads them."""
    for init in [*folder.glob("*-init.mp4"), *folder.glob("*-init.m4s")]:
        init.unlink()


async def upload_folder(
    folder: Path,
    main: str,
    channel: TaskChannel,
    store: httpx.AsyncClient,
    retries: dict[str, Any],
) -> int:
    """Upload every file of ``folder``, ``main`` last (a main file in the storage means the
    rest is there); the bytes sent."""
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    if main not in files:
        raise TranscodeError(f"ffmpeg wrote no {main}")
    strays = [name for name in files if not FILE_NAME_RE.fullmatch(name)]
    if strays:
        raise TranscodeError(f"ffmpeg wrote unexpected files: {', '.join(strays[:3])}")
    files.remove(main)
    sent = 0
    gate = asyncio.Semaphore(UPLOADS_AT_ONCE)

    async def one(name: str, url: str) -> int:
        async with gate:
            return await upload(store, folder / name, url, check=channel.check, **retries)

    for batch in [files[i : i + MAX_UPLOAD_NAMES] for i in range(0, len(files), MAX_UPLOAD_NAMES)]:
        urls = await channel.upload_urls(batch)
        sent += sum(await asyncio.gather(*(one(n, urls[n]) for n in batch)))
    urls = await channel.upload_urls([main])
    return sent + await one(main, urls[main])


async def run_streaming(
    spec: TaskSpec,
    channel: TaskChannel,
    source: Path,
    info: InputInfo,
    store: httpx.AsyncClient,
    retries: dict[str, Any],
) -> None:
    """A streaming task once its input is downloaded: encoded (every rendition, or a part's),
    then every file uploaded."""
    assert spec.outputs is not None
    folder = source.parent / "outputs"
    started = time.monotonic()
    made = pieces(spec)
    span = spec.span.cut() if spec.span else None
    await encode_outputs(
        made,
        source,
        folder,
        info,
        speed=spec.speed,
        threads=spec.threads,
        fps=spec.input_fps,
        duration=_seconds(span, spec.input_duration or info.duration),
        deadline=spec.deadline_seconds,
        on_progress=channel.on_progress,
    )
    if spec.thumbnails_every is not None:
        await make_thumbnails(
            source,
            folder,
            every=spec.thumbnails_every,
            duration=info.duration or spec.input_duration,
            input_format=info.format_name,
            deadline=spec.deadline_seconds,
        )
    transcode = time.monotonic() - started
    quality = None
    if spec.quality:
        quality = await measure_outputs(
            made,
            source,
            folder,
            has_audio=info.audio_codec is not None,
            fps=spec.input_fps,
            threads=spec.threads,
            input_format=info.format_name,
            deadline=spec.deadline_seconds,
            span=span,
        )
    if spec.span is not None and spec.chunk_index > 1:  # measured with them, not uploaded
        drop_init_segments(folder)
    await channel.send(TaskReport(step="transcoded", seconds=transcode, quality=quality))
    started = time.monotonic()
    main = spec.output_name.rpartition("/")[2]
    size = await upload_folder(folder, main, channel, store, retries)
    seconds = time.monotonic() - started
    await channel.send(TaskReport(step="uploaded", seconds=seconds, bytes=size))
    log.info(
        "task %s: outputs of %s done: transcode %.3f s, upload %.3f s (%d bytes)",
        spec.task_id,
        spec.input_name,
        transcode,
        seconds,
        size,
    )
