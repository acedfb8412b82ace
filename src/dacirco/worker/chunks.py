"""Chunked encoding: a movie cut into K frame ranges encoded apart (one task each, on any
worker), then joined by a merge task into one seamless movie.

- ``plan_chunks`` (pure) cuts ``frames`` into K contiguous ranges at whole frames.
- ``chunk_command`` encodes exactly one range, video only, into an MP4 whose timestamps start
  at 0, with the whole-file command's rate control (``build_command``, by construction).
- ``merge_command`` joins the chunks with the concat demuxer (stream copy) and takes the audio
  once, from the original input: no gap and no click at the joins.
- ``encode_chunk`` and ``merge_chunks`` run them with ``run_ffmpeg`` (progress, deadline) and
  give a file its name only once it is complete.

Chunks are MP4, not MPEG-TS: an MP4 stores each frame's duration, the last one included, so
the concat demuxer starts chunk i+1 one frame after the last frame of chunk i, and its edit
list hides the B-frame delay (preset ``fast``); an MPEG-TS file has neither (its duration is
guessed from timestamps the muxer shifts by 1.4 s). Both joined seamlessly here, but MP4
needs no guess, and is what the merge writes anyway. One catch, handled in ``chunk_command``:
the edit list counts in the movie timescale, milliseconds by default, which put every join
after a B-frame chunk up to half a millisecond early.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from dacirco.containers import PROTOCOL_WHITELIST
from dacirco.worker.ffmpeg import (
    AUDIO_BITRATE,
    COPYABLE_AUDIO,
    InputInfo,
    ProgressCallback,
    build_command,
    ffmpeg_head,
    input_args,
    probe_input,
    run_ffmpeg,
)

CHUNK_FORMAT = "mp4"
# What the merge's concat list may be read by: the concat demuxer, and mov for the chunks.
CHUNK_DEMUXERS = "concat,mov"
# Initial VBV occupancy of every chunk but the first (x264/x265 ``vbv-init``, a fraction of
# -bufsize). The encoders start with a 90 % full buffer, a burst the whole-file encode takes
# once and K chunks would take K times: 240p, 7 s, K = 4: +12 % over the rate at 0.9, +3 %
# at 0.5 (the whole file: +3 %); 0.3 starved the joins (-7 %, -2 dB PSNR). Half full is
# where a whole encode's buffer sits mid-movie.
CONTINUED_VBV_INIT = 0.5
# A boundary moves to the nearest keyframe only if that shifts it by at most this share of a
# chunk: aligning saves decoding at most one GOP, not worth unbalanced chunks.
MAX_KEYFRAME_SHIFT = 0.25


@dataclass(frozen=True)
class Chunk:
    """Frames [start_frame, end_frame) of the input, numbered from 0 in display order."""

    index: int
    start_frame: int
    end_frame: int
    fps: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def start_time(self) -> float:
        return self.start_frame / self.fps

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def seek_time(self) -> float:
        """Where the input is cut: half a frame before the first frame, so that timestamps
        rounded either way still keep that frame and drop the one before it."""
        return max(0.0, (self.start_frame - 0.5) / self.fps)


def plan_chunks(
    duration: float,
    fps: float,
    frames: int | None,
    k: int,
    keyframe_interval: int | None = None,
) -> list[Chunk]:
    """K contiguous ranges covering every frame once, as equal as whole frames allow.

    ``frames`` is the input's frame count (``round(duration * fps)`` when None); with
    ``keyframe_interval`` (frames between the input's keyframes, when regular) a boundary moves
    to the nearest keyframe when that shifts it by at most a quarter of a chunk.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, not {fps}")
    if frames is None:
        if not duration > 0:
            raise ValueError(f"duration must be positive, not {duration}")
        frames = round(duration * fps)
    if frames < 1:
        raise ValueError(f"the input has no frame to encode ({frames} frames)")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the number of chunks must be a whole number >= 1, not {k!r}")
    if k > frames:
        raise ValueError(f"cannot cut {frames} frames into {k} chunks: at most {frames}")
    if keyframe_interval is not None and keyframe_interval < 1:
        raise ValueError(f"keyframe_interval must be >= 1 frame, not {keyframe_interval}")
    bounds = [0]
    for i in range(1, k):
        ideal = (2 * i * frames + k) // (2 * k)  # round(i * frames / k), halves up
        if keyframe_interval:
            snapped = round(ideal / keyframe_interval) * keyframe_interval
            if abs(snapped - ideal) <= MAX_KEYFRAME_SHIFT * frames / k:
                ideal = snapped
        # At least one frame for this chunk and for each one after it.
        bounds.append(min(max(ideal, bounds[-1] + 1), frames - (k - i)))
    bounds.append(frames)
    return [Chunk(i, bounds[i], bounds[i + 1], fps) for i in range(k)]


def timescale(fps: float) -> int:
    """Ticks per second in which every frame of a ``fps`` movie lasts a whole number of ticks
    (90 kHz when it fits: 24, 25, 30, 50, 60 and 30000/1001 fps)."""
    rate = Fraction(fps).limit_denominator(1001)
    scale = math.lcm(rate.numerator, 90_000)
    return scale if scale < 2**31 else rate.numerator  # MP4 timescales are 32-bit


def _video_options(
    bitrate_kbps: int, speed: str, codec: str, threads: int, first: bool
) -> list[str]:
    """The whole-file command's video options (codec, -b:v, -maxrate, -bufsize, preset,
    threads), taken from ``build_command`` itself, plus closed GOPs and the chunk's VBV start."""
    rate = {"bitrate_kbps": bitrate_kbps, "speed": speed, "codec": codec, "threads": threads}
    whole = build_command("in", "out", ffmpeg="ffmpeg", **rate)  # only its options are kept
    video = whole[whole.index("-c:v") : whole.index("-c:a")]
    extra = ["open-gop=0"]
    if not first:
        extra.append(f"vbv-init={CONTINUED_VBV_INIT}")
    option = "-x265-params" if "libx265" in video else "-x264-params"
    if option in video:
        at = video.index(option) + 1
        video[at] = ":".join([video[at], *extra])
    else:
        video += [option, ":".join(extra)]
    return [*video, "-flags:v", "+cgop"]


def chunk_command(
    input_path: Path | str,
    output_path: Path | str,
    chunk: Chunk,
    *,
    bitrate_kbps: int,
    speed: str,
    codec: str = "h264",
    threads: int = 0,
    input_format: str | None = None,
    ffmpeg: str | None = None,
) -> list[str]:
    """Encode exactly ``chunk.frames`` frames from ``chunk.start_frame``, video only, into an
    MP4 whose first frame is a keyframe at time 0.

    The input ``-ss`` decodes from the keyframe before the cut and drops the frames before it
    (frame-accurate with re-encoding); ``setpts`` puts the first kept frame at 0 whatever the
    half-frame margin of the cut; ``-frames:v`` stops at the exact count.
    """
    cmd = ffmpeg_head(ffmpeg)
    if chunk.start_frame > 0:
        cmd += ["-ss", f"{chunk.seek_time:.6f}"]
    cmd += [*input_args(input_path, input_format), "-map", "0:v:0", "-an", "-sn", "-dn"]
    cmd += ["-vf", "setpts=PTS-STARTPTS", "-frames:v", str(chunk.frames)]
    cmd += _video_options(bitrate_kbps, speed, codec, threads, first=chunk.start_frame == 0)
    cmd += ["-force_key_frames", "expr:eq(n,0)", "-map_metadata", "-1"]
    # Every duration in whole ticks of one timescale, the edit list's too (its default unit,
    # the millisecond, would shift each join by up to half a millisecond).
    scale = str(timescale(chunk.fps))
    cmd += ["-video_track_timescale", scale, "-movie_timescale", scale]
    cmd += ["-f", CHUNK_FORMAT, "-progress", "pipe:1", "-nostats", str(output_path)]
    return cmd


def concat_list(chunk_files: Sequence[Path | str]) -> str:
    """The concat demuxer's list: one ``file`` line per chunk, in order. Relative names are
    read from the list's own folder."""
    if not chunk_files:
        raise ValueError("no chunk to merge")
    quoted = (str(name).replace("'", "'\\''") for name in chunk_files)
    return "".join(f"file '{name}'\n" for name in quoted)


def merge_command(
    list_path: Path | str,
    input_path: Path | str,
    output_path: Path | str,
    *,
    audio_codec: str | None = None,
    input_format: str | None = None,
    ffmpeg: str | None = None,
) -> list[str]:
    """Join the chunks named in ``list_path`` (``concat_list``) by stream copy, with every audio
    stream of the original input, once: copied when MP4 carries it (AAC), else encoded.

    The video is as long as the input's frames; the audio is the input's own, so the output
    lasts as long as the input. ``-f mp4`` lets the output be written under a temporary name.
    The list is the worker's own, and what it names is read as MP4 (local files, the concat
    and mov demuxers only: the list's entries inherit the list's whitelists); the original
    input is held to the allowed containers like any input.
    """
    # -xerror: a missing or broken chunk is otherwise logged and skipped, and ffmpeg exits 0.
    cmd = [*ffmpeg_head(ffmpeg), "-xerror"]
    cmd += ["-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", CHUNK_DEMUXERS]
    cmd += ["-f", "concat", "-safe", "0", "-i", str(list_path)]
    cmd += input_args(input_path, input_format)
    cmd += ["-map", "0:v:0", "-map", "1:a?", "-map_metadata", "1", "-c:v", "copy"]
    if audio_codec in COPYABLE_AUDIO:
        cmd += ["-c:a", "copy"]
    else:
        cmd += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
    cmd += ["-movflags", "+faststart", "-f", "mp4"]
    cmd += ["-progress", "pipe:1", "-nostats", str(output_path)]
    return cmd


def _part(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


async def _run_atomic(
    cmd: list[str],
    output: Path,
    duration: float | None,
    deadline: float | None,
    on_progress: ProgressCallback | None,
    cwd: Path | None,
) -> None:
    """Run ``cmd`` writing to ``output``'s temporary name (its last argument), then rename:
    a failed or cancelled run leaves no file under ``output``'s name."""
    full = output if cwd is None else cwd / output
    try:
        await run_ffmpeg(cmd, duration, deadline, on_progress, cwd=cwd)
        os.replace(_part(full), full)
    finally:
        _part(full).unlink(missing_ok=True)


async def encode_chunk(
    input_path: Path | str,
    output_path: Path | str,
    chunk: Chunk,
    *,
    bitrate_kbps: int,
    speed: str,
    codec: str = "h264",
    threads: int = 0,
    input_format: str | None = None,
    deadline: float | None = None,
    on_progress: ProgressCallback | None = None,
    cwd: Path | None = None,
) -> None:
    """A chunk task's transcode step; ``on_progress`` gets the fraction of the chunk done.
    Paths are relative to ``cwd`` when it is given (as for ``run_ffmpeg``); ``input_format``
    is the input's container format as ``probe_input`` found it."""
    output_path = Path(output_path)
    cmd = chunk_command(
        input_path,
        _part(output_path),
        chunk,
        bitrate_kbps=bitrate_kbps,
        speed=speed,
        codec=codec,
        threads=threads,
        input_format=input_format,
    )
    await _run_atomic(cmd, output_path, chunk.duration, deadline, on_progress, cwd)


async def merge_chunks(
    chunk_files: Sequence[Path | str],
    input_path: Path | str,
    output_path: Path | str,
    *,
    info: InputInfo | None = None,
    deadline: float | None = None,
    on_progress: ProgressCallback | None = None,
    cwd: Path | None = None,
) -> None:
    """A merge task's step: ``chunk_files`` in order, the audio of ``input_path``; ``info`` is
    the input's ``probe_input`` (probed here when None). The concat list is written beside the
    output, with names relative to it, and removed after."""
    output_path = Path(output_path)
    full = output_path if cwd is None else cwd / output_path
    if info is None:
        source = Path(input_path) if cwd is None else cwd / input_path
        info = await asyncio.to_thread(probe_input, source)
    list_path = output_path.with_name(f".{output_path.name}.concat.txt")
    full_list = full.with_name(list_path.name)
    base = full.parent.resolve()
    files = [(Path(f) if cwd is None else cwd / f).resolve() for f in chunk_files]
    full_list.write_text(concat_list([os.path.relpath(f, base) for f in files]))
    cmd = merge_command(
        list_path,
        input_path,
        _part(output_path),
        audio_codec=info.audio_codec,
        input_format=info.format_name,
    )
    try:
        await _run_atomic(cmd, output_path, info.duration, deadline, on_progress, cwd)
    finally:
        full_list.unlink(missing_ok=True)
