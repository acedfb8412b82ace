"""Measured quality of a task's outputs: VMAF, PSNR and SSIM of each video rendition against
its input scaled to the rendition's size, from one ffmpeg run per output (one decode of the
input, split to every rendition's size) with libvmaf's built-in model.

libvmaf computes the three figures in one pass (``feature=name=psnr|name=float_ssim``) on
every ``subsample``-th frame (``n_subsample``): every frame is still decoded (the motion
feature needs its predecessor), but the costly comparisons run on a sample of frames. A
rendition in segments (HLS, DASH: an init file and fMP4 segments) is read as one stream
through ffmpeg's ``concatf`` protocol, from a list of its files.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dacirco.containers import input_options
from dacirco.outputs.names import rendition_file
from dacirco.outputs.spans import Span
from dacirco.outputs.spec import Container, OutputSpec, Rendition
from dacirco.protocol import QualityReport, RenditionQuality, TaskSpec
from dacirco.worker.ffmpeg import (
    InputInfo,
    TranscodeError,
    ffmpeg_head,
    input_args,
    run_ffmpeg,
)
from dacirco.worker.pieces import Piece, as_piece

VMAF_MODEL = "version=vmaf_v0.6.1"  # built into libvmaf: nothing to download
SCORED_PER_SECOND = 2  # frames scored per second of movie (every frame is decoded)
DEFAULT_FPS = 25.0  # when the input's frame rate is not known


@dataclass(frozen=True)
class Target:
    """One video rendition to measure: its files (in order: init first) and its size."""

    container: str
    index: int  # the rendition's place in its output, from 1
    rendition: Rendition
    files: tuple[Path, ...]


def subsample(fps: float | None) -> int:
    """Score every n-th frame: about ``SCORED_PER_SECOND`` frames a second of movie."""
    rate = fps if fps and fps > 0 else DEFAULT_FPS
    return max(1, math.floor(rate / SCORED_PER_SECOND))


def _segments(folder: Path, init: str, prefix: str) -> tuple[Path, ...]:
    """A segmented rendition's files: its init file, then its segments in order."""
    segments = sorted(p for p in folder.glob(f"{prefix}*.m4s") if p.name != init)
    if not (folder / init).is_file() or not segments:
        raise TranscodeError(f"quality: the segments of {prefix.rstrip('-')} are missing")
    return (folder / init, *segments)


def targets(what: OutputSpec | Piece, folder: Path, has_audio: bool) -> list[Target]:
    """The video renditions of an output (or a part's piece of one) as ``worker.ladder``
    names their files in ``folder``: MP4 one file each; HLS variant ``i`` (its rendition's
    index); DASH representation = the output stream's index (video and audio streams
    counted in map order), after the piece's prefix."""
    piece = as_piece(what)
    out, dash = piece.out, piece.dash
    found: list[Target] = []
    stream = 0  # DASH: the output stream index of the next map
    audio_rates: list[int] = []
    for i, r in piece.items:
        if r.video_bitrate is not None:
            if out.container is Container.MP4:
                files: tuple[Path, ...] = (folder / rendition_file(r.model_dump(), i),)
            elif out.container is Container.HLS:
                files = _segments(folder, f"hls-{i}-init.mp4", f"hls-{i}-")
            else:
                files = _segments(folder, f"{dash}{stream}-init.m4s", f"{dash}{stream}-")
            found.append(Target(out.container.value, i + 1, r, files))
            stream += 1
        rate = r.audio_bitrate if has_audio else None
        if rate is not None and out.container is Container.DASH and rate not in audio_rates:
            audio_rates.append(rate)
            stream += 1
    return found


def _input(target: Target, work: Path, k: int) -> list[str]:
    """A rendition as an ffmpeg input: a file, or its segments through a ``concatf`` list."""
    if len(target.files) == 1:
        return [*input_options(), "-f", "mov", "-i", str(target.files[0].resolve())]
    listing = work / f"rendition-{k}.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in target.files))
    return ["-protocol_whitelist", "file,concatf", "-f", "mov", "-i", f"concatf:{listing}"]


def build_quality_command(
    source: Path,
    found: list[Target],
    work: Path,
    *,
    every: int,
    threads: int = 0,
    input_format: str | None = None,
    ffmpeg: str | None = None,
    span: Span | None = None,
) -> tuple[list[str], list[Path]]:
    """The ffmpeg command that measures every target against ``source`` (its ``span`` alone,
    read as the span's encode read it), and the JSON log each target's figures are written
    to."""
    cmd = ffmpeg_head(ffmpeg)
    for k, target in enumerate(found):
        cmd += _input(target, work, k)
    start, length = (span.start, span.length) if span is not None else (None, None)
    cmd += input_args(source.resolve(), input_format, start, length)
    n = len(found)
    ref = f"[{n}:v:0]"
    graph = [
        f"{ref}setpts=PTS-STARTPTS,format=yuv420p,split={n}" + "".join(f"[r{k}]" for k in range(n))
    ]
    logs = []
    for k, target in enumerate(found):
        height = target.rendition.height
        size = f"scale=-2:{height}:flags=bicubic" if height else "null"
        log = work / f"vmaf-{k}.json"
        logs.append(log)
        options = ":".join(
            [
                f"model={VMAF_MODEL}",
                r"feature=name=psnr\|name=float_ssim",
                "log_fmt=json",
                f"log_path={log}",
                f"n_subsample={every}",
                f"n_threads={max(1, threads)}",
                "eof_action=endall",
            ]
        )
        graph.append(f"[r{k}]{size}[s{k}]")
        graph.append(f"[{k}:v:0]setpts=PTS-STARTPTS,format=yuv420p[d{k}]")
        graph.append(f"[d{k}][s{k}]libvmaf={options}[q{k}]")
    cmd += ["-filter_complex", ";".join(graph)]
    for k in range(n):
        cmd += ["-map", f"[q{k}]", "-f", "null", "-"]
    return cmd, logs


def _figures(target: Target, log: Path, every: int) -> RenditionQuality:
    try:
        data = json.loads(log.read_text())
        pooled: dict[str, Any] = data["pooled_metrics"]
        frames = len(data.get("frames", []))
        vmaf, psnr, ssim = (float(pooled[k]["mean"]) for k in ("vmaf", "psnr_y", "float_ssim"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TranscodeError(f"quality: libvmaf wrote no figures ({exc})") from None
    r = target.rendition
    return RenditionQuality(
        output=target.container,
        rendition=target.index,
        height=r.height,
        video_bitrate=r.video_bitrate,
        vmaf=round(min(100.0, max(0.0, vmaf)), 3),
        psnr=round(min(100.0, max(0.0, psnr)), 3),
        ssim=round(min(1.0, max(0.0, ssim)), 5),
        frames=frames,
        every=every,
    )


async def measure(
    source: Path,
    found: list[Target],
    work: Path,
    *,
    fps: float | None,
    threads: int = 0,
    input_format: str | None = None,
    deadline: float | None = None,
    span: Span | None = None,
) -> list[RenditionQuality]:
    """Every target's figures against ``source`` (one ffmpeg run)."""
    if not found:
        return []
    work.mkdir(parents=True, exist_ok=True)
    every = subsample(fps)
    cmd, logs = build_quality_command(
        source, found, work, every=every, threads=threads, input_format=input_format, span=span
    )
    await run_ffmpeg(cmd, None, deadline, cwd=work)
    return [_figures(t, log, every) for t, log in zip(found, logs, strict=True)]


async def measure_outputs(
    outputs: Sequence[OutputSpec | Piece],
    source: Path,
    folder: Path,
    *,
    has_audio: bool,
    fps: float | None,
    threads: int = 0,
    input_format: str | None = None,
    deadline: float | None = None,
    span: Span | None = None,
) -> QualityReport:
    """A streaming task's figures: every video rendition of every output (of its span of
    the input alone, for a span in time)."""
    started = time.monotonic()
    figures: list[RenditionQuality] = []
    work = source.parent / "quality"
    for out in outputs:
        found = targets(out, folder, has_audio)
        figures += await measure(
            source,
            found,
            work / as_piece(out).out.container.value,
            fps=fps,
            threads=threads,
            input_format=input_format,
            deadline=deadline,
            span=span,
        )
    return QualityReport(renditions=figures, seconds=round(time.monotonic() - started, 3))


async def measure_file(
    source: Path,
    output: Path,
    *,
    bitrate_kbps: int,
    fps: float | None,
    threads: int = 0,
    input_format: str | None = None,
    deadline: float | None = None,
    work: Path | None = None,
) -> QualityReport:
    """A classic task's figures: its one MP4 (the input's size) against the input; ``work``
    holds ffmpeg's logs (default: ``quality/`` beside the input)."""
    started = time.monotonic()
    target = Target("mp4", 1, Rendition(video_bitrate=bitrate_kbps), (output,))
    figures = await measure(
        source,
        [target],
        work or source.parent / "quality",
        fps=fps,
        threads=threads,
        input_format=input_format,
        deadline=deadline,
    )
    return QualityReport(renditions=figures, seconds=round(time.monotonic() - started, 3))


async def task_quality(
    spec: TaskSpec, source: Path, output: Path, info: InputInfo
) -> QualityReport | None:
    """The quality of a classic or merge task's one output, when its spec asks for it."""
    if not spec.quality or spec.kind == "chunk":
        return None
    return await measure_file(
        source,
        output,
        bitrate_kbps=spec.bitrate_kbps,
        fps=spec.input_fps,
        threads=spec.threads,
        input_format=info.format_name,
        deadline=spec.deadline_seconds,
    )
