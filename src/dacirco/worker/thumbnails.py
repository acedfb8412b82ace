"""A streaming task's thumbnails: a poster (JPEG, the input's size) and sprite sheets of a
frame every N seconds (``select`` + ``scale`` + ``tile``), with a WebVTT index whose cues name
each tile by a ``#xywh=`` fragment, as players' preview bars read them. One ffmpeg run."""

from __future__ import annotations

import math
from pathlib import Path

from dacirco.outputs.names import POSTER, SPRITE_PATTERN, THUMBNAILS_VTT, sprite_file
from dacirco.worker.ffmpeg import TranscodeError, ffmpeg_head, input_args, run_ffmpeg

TILE_WIDTH = 160  # pixels; the height keeps the aspect ratio (even)
MAX_COLUMNS = MAX_ROWS = 10  # a sheet holds at most 100 tiles; a longer movie gets several
POSTER_AT = 0.1  # the poster is the frame a tenth into the movie (past opening black)


def grid(tiles: int) -> tuple[int, int]:
    """Columns and rows of a sheet for ``tiles`` tiles (the last sheet may have blanks)."""
    columns = max(1, min(MAX_COLUMNS, tiles))
    return columns, max(1, min(MAX_ROWS, math.ceil(tiles / columns)))


def tile_count(duration: float, every: float) -> int:
    """One tile for each ``every`` seconds begun: ceil(duration / every)."""
    return max(1, math.ceil(duration / every - 1e-9))


def build_thumbnails_command(
    source: Path | str,
    *,
    every: float,
    duration: float,
    input_format: str | None = None,
    ffmpeg: str | None = None,
) -> list[str]:
    """The command that writes the poster and the sheets into the current directory."""
    columns, rows = grid(tile_count(duration, every))
    # The first frame of each interval [k*every, (k+1)*every): exactly one per interval.
    pick = f"isnan(prev_selected_t)+gt(floor(t/{every:g})\\,floor(prev_selected_t/{every:g}))"
    graph = (
        "[0:v:0]setpts=PTS-STARTPTS,split=2[a][b];"
        f"[a]select='{pick}',scale={TILE_WIDTH}:-2,tile={columns}x{rows}[sheets];"
        f"[b]trim=start={POSTER_AT * duration:.3f},setpts=PTS-STARTPTS[poster]"
    )
    return [
        *ffmpeg_head(ffmpeg), *input_args(source, input_format),
        "-filter_complex", graph,
        "-map", "[sheets]", "-fps_mode", "passthrough", "-q:v", "4", SPRITE_PATTERN,
        "-map", "[poster]", "-frames:v", "1", "-q:v", "3", POSTER,
    ]  # fmt: skip


def _clock(seconds: float) -> str:
    whole = int(seconds)
    millis = round((seconds - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{millis:03d}"


def webvtt(duration: float, every: float, tile: tuple[int, int]) -> str:
    """The index: one cue per tile, ``sprite-<sheet>.jpg#xywh=x,y,w,h``, covering the movie."""
    tiles = tile_count(duration, every)
    columns, rows = grid(tiles)
    width, height = tile
    lines = ["WEBVTT", ""]
    for k in range(tiles):
        sheet, place = divmod(k, columns * rows)
        row, column = divmod(place, columns)
        start, end = k * every, min((k + 1) * every, duration)
        lines += [
            f"{_clock(start)} --> {_clock(end)}",
            f"{sprite_file(sheet + 1)}#xywh={column * width},{row * height},{width},{height}",
            "",
        ]
    return "\n".join(lines)


def _size(path: Path) -> tuple[int, int]:
    import av  # lazy, as in ffmpeg.probe_input

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


async def make_thumbnails(
    source: Path,
    folder: Path,
    *,
    every: float,
    duration: float | None,
    input_format: str | None = None,
    deadline: float | None = None,
) -> None:
    """The poster, the sheets and the index, in ``folder``."""
    if not duration or duration <= 0:
        raise TranscodeError("thumbnails: the input's duration is not known")
    cmd = build_thumbnails_command(
        source.resolve(), every=every, duration=duration, input_format=input_format
    )
    await run_ffmpeg(cmd, None, deadline, cwd=folder)
    first = folder / sprite_file(1)
    if not first.is_file() or not (folder / POSTER).is_file():
        raise TranscodeError("thumbnails: ffmpeg wrote no poster or no sprite sheet")
    columns, rows = grid(tile_count(duration, every))
    width, height = _size(first)
    tile = (width // columns, height // rows)
    (folder / THUMBNAILS_VTT).write_text(webvtt(duration, every, tile))
