"""What a movie is (duration, size, codecs, bitrate), read from its headers with PyAV, and
kept as object metadata so that listing the catalog never downloads a movie."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av

from dacirco.containers import FormatNotAllowed, open_input

# Object metadata keys (S3 sends them as x-amz-meta-<key>).
DURATION, WIDTH, HEIGHT = "duration", "width", "height"
VIDEO_CODEC, AUDIO_CODEC = "video-codec", "audio-codec"
BITRATE, FPS, FRAMES = "bitrate", "fps", "frames"


# Decoders that turn text into "video": not movies. (Text and image demuxers, playlists and
# lists are refused before: only the single-file containers of dacirco.containers are read.)
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


class NotAVideo(ValueError):
    """The file is not a movie that can be read: empty, garbage, no video stream."""


@dataclass(frozen=True)
class MovieInfo:
    name: str
    size: int  # bytes
    duration: float  # seconds
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    bitrate: int  # bit/s, all streams
    fps: float
    frames: int

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


def probe(path: Path, name: str | None = None) -> MovieInfo:
    """Read the headers; decode the first frame and reach the last one to be sure it is whole.

    Only a single-file movie is read (``dacirco.containers``): a playlist or a list is refused,
    naming its format, before any file or URL it names is opened."""
    path = Path(path)
    size = path.stat().st_size  # FileNotFoundError names the file
    if size == 0:
        raise NotAVideo(f"{path}: empty file, not a video")
    try:
        with open_input(path, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise NotAVideo(f"{path}: no video stream")
            video = container.streams.video[0]
            ctx = video.codec_context
            if ctx.name in _TEXT_CODECS:
                raise NotAVideo(f"{path}: not a video (read as {container.format.name}/{ctx.name})")
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = _duration(container, video)
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else 0.0
            width, height = ctx.width, ctx.height
            if duration <= 0 or fps <= 0 or width <= 0 or height <= 0:
                raise NotAVideo(f"{path}: not a movie (no duration, frame rate or picture size)")
            frames = video.frames or round(duration * fps)  # mp4 headers hold the count
            bitrate = container.bit_rate or round(size * 8 / duration)
            info = MovieInfo(
                name=name or path.name,
                size=size,
                duration=duration,
                width=width,
                height=height,
                video_codec=ctx.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
                bitrate=int(bitrate),
                fps=fps,
                frames=int(frames),
            )
            _check_readable(container, video, path)
            return info
    except NotAVideo:
        raise
    except FormatNotAllowed as exc:
        raise NotAVideo(str(exc)) from None
    except (av.FFmpegError, ValueError, IndexError, StopIteration) as exc:
        raise NotAVideo(f"{path}: not a readable video ({_reason(exc)})") from exc


def _check_readable(
    container: av.container.InputContainer, video: av.VideoStream, path: Path
) -> None:
    """The first frame decodes, and the last group of pictures is there (not truncated)."""
    if next(container.decode(video), None) is None:
        raise NotAVideo(f"{path}: no decodable video frame")
    if video.duration:
        container.seek(video.duration, stream=video, backward=True)
        if not any(packet.size for packet in container.demux(video)):
            raise NotAVideo(f"{path}: truncated, the end of the video is missing")


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    return 0.0


def _reason(exc: Exception) -> str:
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


def to_metadata(info: MovieInfo) -> dict[str, str]:
    """String metadata for the object store; the name and size come from the object itself."""
    meta = {
        DURATION: f"{info.duration:.6f}",
        WIDTH: str(info.width),
        HEIGHT: str(info.height),
        VIDEO_CODEC: info.video_codec,
        BITRATE: str(info.bitrate),
        FPS: f"{info.fps:.6g}",
        FRAMES: str(info.frames),
    }
    if info.audio_codec is not None:
        meta[AUDIO_CODEC] = info.audio_codec
    return meta


def from_metadata(name: str, size: int, metadata: dict[str, str]) -> MovieInfo | None:
    """The probe kept in ``metadata``, or None if it is missing or malformed."""
    meta = {k.lower(): v for k, v in metadata.items()}
    try:
        info = MovieInfo(
            name=name,
            size=int(size),
            duration=float(meta[DURATION]),
            width=int(meta[WIDTH]),
            height=int(meta[HEIGHT]),
            video_codec=meta[VIDEO_CODEC],
            audio_codec=meta.get(AUDIO_CODEC) or None,
            bitrate=int(meta[BITRATE]),
            fps=float(meta[FPS]),
            frames=int(meta[FRAMES]),
        )
    except (KeyError, ValueError):
        return None
    numbers = (info.duration, info.fps)
    if not all(math.isfinite(x) and x > 0 for x in numbers) or not info.video_codec:
        return None
    if info.width <= 0 or info.height <= 0:
        return None
    return info
