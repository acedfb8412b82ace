"""The container formats an input movie may have, and how inputs are opened so that no other.

A playlist or a list (HLS, DASH, ffconcat, ...) names other files or URLs, and ffmpeg and
PyAV open whatever it names on the machine that reads it: a catalog entry could make a
worker read any of its files or call any URL. So an input is opened only by the demuxers of
single-file media containers named here: libavformat checks the list once it has probed the
format and before the demuxer reads anything else, so a refused playlist never opens an
entry. The catalog refuses such inputs when they are added; the worker's ffmpeg is held to
the same list, and to the local files the worker downloaded, in case one is stored anyway.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import av.container

# libavformat's demuxer names: "mov" reads MP4, MOV, M4V and 3GP; "matroska" reads MKV and
# WebM. None of them opens another file (the mov demuxer's external references, "drefs",
# are off unless asked for).
ALLOWED_DEMUXERS = ("mov", "matroska", "avi", "mpegts")
ALLOWED_DESCRIPTION = "MP4/MOV, Matroska/WebM, AVI or MPEG-TS"
FORMAT_WHITELIST = ",".join(ALLOWED_DEMUXERS)
# Workers download their inputs first: ffmpeg and PyAV read local files and nothing else.
PROTOCOL_WHITELIST = "file"

_REFUSED = "Format not on whitelist"


class FormatNotAllowed(ValueError):
    """The input's container format is not a single-file media container of the list."""

    def __init__(self, path: Path | str, format_name: str | None) -> None:
        self.format_name = format_name
        which = f"container format {format_name!r}" if format_name else "container format"
        self.reason = (
            f"{which} refused: only single-file movies ({ALLOWED_DESCRIPTION}) are accepted, "
            "never a playlist or a list that names other files or URLs"
        )
        super().__init__(f"{path}: {self.reason}")


def demuxer(format_name: str) -> str:
    """The name ffmpeg's ``-f`` takes for a format PyAV reports (``mov,mp4,m4a,...``: mov)."""
    return format_name.split(",", 1)[0]


def input_options(format_name: str | None = None) -> list[str]:
    """ffmpeg options to put before an input's ``-i``: local files only, an allowed demuxer
    only, and that demuxer named when it is known (``format_name``, as PyAV reports it)."""
    options = ["-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", FORMAT_WHITELIST]
    if format_name is not None:
        options += ["-f", demuxer(format_name)]
    return options


def open_input(path: Path | str, **kwargs: Any) -> av.container.InputContainer:
    """Open a local movie with PyAV, only if its container format is allowed.

    Raises FormatNotAllowed naming the format otherwise; any other failure is PyAV's own.
    """
    import av  # lazy: a worker needs it only when its first task comes

    options = {"format_whitelist": FORMAT_WHITELIST, "protocol_whitelist": PROTOCOL_WHITELIST}
    try:
        return av.open(str(path), container_options=options, **kwargs)
    except av.ArgumentError:
        name = _refused_format(path, options)
        if name is None:
            raise
        raise FormatNotAllowed(path, name or None) from None


def _refused_format(path: Path | str, options: dict[str, str]) -> str | None:
    """The probed format of a refused input ("" if unknown), or None if it was not refused.

    libavformat names the format only in its log (as the context of its refusal), so the same
    guarded open runs once more with its errors captured."""
    import av
    import av.logging

    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    if level is None or level < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same refusal as the last one is still wanted
    try:
        with av.logging.Capture() as logs, contextlib.suppress(av.FFmpegError):
            av.open(str(path), container_options=options).close()
    finally:
        av.logging.set_skip_repeated(skip)
        av.logging.set_level(level)
    for _, context, message in logs:
        if message.startswith(_REFUSED):
            return context if context and context != "NULL" else ""
    return None
