"""The transcode itself: the ffmpeg command, a PyAV probe of the input, and an async runner
that turns ffmpeg's ``-progress`` output into a fraction and its stderr into an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import re
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dacirco.containers import FormatNotAllowed, input_options, open_input
from dacirco.ffmpeg_bin import ffmpeg_exe

STDERR_TAIL_LINES = 20
# MP4 carries AAC as is; other audio (PCM, Vorbis, MP3...) becomes AAC, which every player reads.
COPYABLE_AUDIO = frozenset({"aac"})
AUDIO_BITRATE = "128k"
_ERROR_TAGS = ("[error]", "[fatal]", "[panic]")
_POINTER = re.compile(r" @ 0x[0-9a-fA-F]+")
_LEVEL_TAG = re.compile(r"\[(?:error|fatal|panic|warning)\] ?")


def _die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, a hook that has the kernel kill ffmpeg when the worker dies without a chance
    to do it (SIGKILL, OOM): ffmpeg ignores SIGPIPE, so a lost pipe would not stop it, and an
    orphan transcode would keep a core busy. Resolved here so the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


_DIE_WITH_PARENT = _die_with_parent_hook()


class TranscodeError(Exception):
    """ffmpeg failed; ``message`` is ffmpeg's own explanation (or why it was stopped)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class InputInfo:
    duration: float | None
    audio_codec: str | None
    format_name: str | None = None  # as PyAV names it (mov,mp4,...): ffmpeg's -f is its first


def warm_up() -> None:
    """Import PyAV ahead of the first task (its import takes a noticeable fraction of a second)."""
    import av  # noqa: F401


def probe_input(path: Path) -> InputInfo:
    """Duration, audio codec and container format of a movie; a file PyAV cannot open gives
    an empty answer so that ffmpeg, not the probe, reports what is wrong with it.

    An input whose container is not an allowed single-file one (a playlist that names other
    files, ...) is refused at once (TranscodeError naming its format), none of it opened."""
    import av  # lazy: not needed for --help or for building commands

    try:
        with open_input(path) as container:
            duration = container.duration / 1_000_000 if container.duration else None
            audio = container.streams.audio
            return InputInfo(
                duration=duration,
                audio_codec=audio[0].codec_context.name if audio else None,
                format_name=container.format.name,
            )
    except FormatNotAllowed as exc:
        raise TranscodeError(f"input {exc.reason}") from None
    except (av.FFmpegError, OSError, ValueError):
        return InputInfo(duration=None, audio_codec=None)


def ffmpeg_head(ffmpeg: str | None = None) -> list[str]:
    """What every command of the worker starts with: quiet but for warnings and errors."""
    # Level tags let the error message keep ffmpeg's errors and drop the chatter.
    return [ffmpeg or ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "level+warning"]


def input_args(
    path: Path | str,
    format_name: str | None = None,
    start: float | None = None,
    length: float | None = None,
) -> list[str]:
    """One input movie: read as a local file by an allowed demuxer (named when it is known),
    so that it can name no other file or URL for ffmpeg to open (``dacirco.containers``);
    from ``start`` seconds for ``length`` seconds when given (decoded from the keyframe
    before, frames before ``start`` dropped: exact when transcoding)."""
    span = [] if start is None else ["-ss", f"{start:.6f}"]
    span += [] if length is None else ["-t", f"{length:.6f}"]
    return [*input_options(format_name), *span, "-i", str(path)]


def build_command(
    input_path: Path | str,
    output_path: Path | str,
    *,
    bitrate_kbps: int,
    speed: str,
    codec: str = "h264",
    threads: int = 0,
    audio_codec: str | None = None,
    input_format: str | None = None,
    ffmpeg: str | None = None,
) -> list[str]:
    """The transcode command; ``bitrate_kbps`` is in kbit/s and is passed as such (``7000k``).
    ``input_format`` is the input's container format as ``probe_input`` found it.

    Plain ABR overshoots short clips badly (x264 on 2 s of noisy 1080p at 7000k: +231 %), so
    the rate is capped (``-maxrate``) with a half-second VBV buffer (``-bufsize``): measured
    within 14 % of the request on 2 s clips and 7 % on 5-10 s clips, 360p to 1080p,
    500 to 7000 kbit/s, both presets. A one-second buffer left 2 s clips up to 20 % over.
    """
    rate = f"{int(bitrate_kbps)}k"
    buffer = f"{max(1, int(bitrate_kbps) // 2)}k"
    cmd = [
        *ffmpeg_head(ffmpeg),
        *input_args(input_path, input_format),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
    ]
    if codec == "hevc":
        # hvc1 is the tag Apple players require; x265 prints its own banner unless told not to.
        cmd += ["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error"]
    else:
        cmd += ["-c:v", "libx264"]
    cmd += ["-b:v", rate, "-maxrate", rate, "-bufsize", buffer, "-preset", speed]
    if threads > 0:
        cmd += ["-threads", str(threads)]
    if audio_codec in COPYABLE_AUDIO:
        cmd += ["-c:a", "copy"]
    else:
        cmd += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
    cmd += ["-movflags", "+faststart", "-progress", "pipe:1", "-nostats", str(output_path)]
    return cmd


class ProgressParser:
    """Reads ``-progress`` key=value lines; each block ends with ``progress=continue|end``."""

    def __init__(self, duration: float | None) -> None:
        self.duration = duration if duration and duration > 0 else None
        self.out_time: float | None = None  # seconds of output written so far
        self.ended = False

    def feed(self, line: str) -> float | None:
        """The fraction done when ``line`` closes a block, else None."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        if key in ("out_time_us", "out_time_ms"):  # both are microseconds (an old ffmpeg quirk)
            with contextlib.suppress(ValueError):
                self.out_time = max(0, int(value)) / 1_000_000
        elif key == "out_time" and self.out_time is None:
            self.out_time = _clock_seconds(value)
        elif key == "progress":
            if value == "end":
                self.ended = True
                return 1.0
            return self.fraction()
        return None

    def fraction(self) -> float | None:
        if self.duration is None or self.out_time is None:
            return None
        return min(1.0, self.out_time / self.duration)


def _clock_seconds(value: str) -> float | None:
    try:
        hours, minutes, seconds = value.split(":")
        return max(0.0, int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    except ValueError:
        return None


def is_error_line(line: str) -> bool:
    return any(tag in line for tag in _ERROR_TAGS)


def clean_line(line: str) -> str:
    return _LEVEL_TAG.sub("", _POINTER.sub("", line)).strip()


def error_message(returncode: int, first_error: str | None, tail: Sequence[str]) -> str:
    """ffmpeg's own words: its first error (often the cause) and its last two (the outcome)."""
    return f"ffmpeg exited with code {returncode}: {_errors(first_error, tail)}"[:1000]


def _errors(first_error: str | None, tail: Sequence[str]) -> str:
    errors = [line for line in tail if is_error_line(line)]
    picked = errors[-2:] if errors else [line for line in tail if line.strip()][-3:]
    if first_error is not None and first_error not in picked:
        picked.insert(0, first_error)
    text = "; ".join(dict.fromkeys(clean_line(line) for line in picked if clean_line(line)))
    return text or "no error message"


# ffmpeg exits 0 on a truncated movie (its index promises more than its data holds): an
# output this much shorter than the input, with decoding errors on the way, is a failure.
COMPLETE_FRACTION = 0.9


def incomplete_message(
    parser: ProgressParser, first_error: str | None, tail: Sequence[str]
) -> str | None:
    """Why a transcode that exited 0 is nevertheless a failure, or None."""
    done = parser.fraction()
    if first_error is None or done is None or done >= COMPLETE_FRACTION:
        return None
    assert parser.duration is not None and parser.out_time is not None
    return (
        f"ffmpeg decoded only {done:.0%} of the input ({parser.out_time:.1f} s of "
        f"{parser.duration:.1f} s): the input is truncated or damaged: "
        f"{_errors(first_error, tail)}"
    )[:1000]


ProgressCallback = Callable[[float], Awaitable[None]]


async def run_ffmpeg(
    cmd: Sequence[str],
    duration: float | None,
    deadline: float | None,
    on_progress: ProgressCallback | None = None,
    cwd: Path | None = None,
) -> None:
    """Run ``cmd`` (made by build_command) to completion.

    ``on_progress`` is awaited with the fraction of ``duration`` done after each progress
    block; an exception it raises stops ffmpeg and propagates. ffmpeg is killed and reaped
    past ``deadline`` seconds (TranscodeError), on cancellation, and on any error. With
    ``cwd`` and relative paths in ``cmd``, error messages name files without a temp path.
    """
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        preexec_fn=_DIE_WITH_PARENT,
    )
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    first_error: list[str] = []
    parser = ProgressParser(duration)

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            if not first_error and is_error_line(line):
                first_error.append(line)

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            fraction = parser.feed(raw.decode(errors="replace"))
            if fraction is not None and on_progress is not None:
                await on_progress(fraction)

    stderr_task = asyncio.create_task(read_stderr())
    scope = asyncio.timeout(deadline)
    try:
        async with scope:
            await read_progress()
            returncode = await proc.wait()
            await stderr_task
    except TimeoutError:
        if not scope.expired():
            raise
        done = parser.fraction()
        where = f" at {done:.0%} of the input" if done is not None else ""
        raise TranscodeError(
            f"ffmpeg killed: the {deadline:g} s deadline was exceeded{where}"
        ) from None
    finally:
        await _kill(proc)
        stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stderr_task
    if returncode != 0:
        raise TranscodeError(error_message(returncode, next(iter(first_error), None), tail))
    if incomplete := incomplete_message(parser, next(iter(first_error), None), tail):
        raise TranscodeError(incomplete)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill and reap, even when the caller is being cancelled: no orphan, no zombie."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    # Shielded so that a second cancellation cannot leave the child unreaped.
    waiter = asyncio.ensure_future(proc.wait())
    while not waiter.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(waiter)
