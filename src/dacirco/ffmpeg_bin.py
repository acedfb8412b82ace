"""Where the ffmpeg executable is: ``DACIRCO_FFMPEG`` if set, else the imageio-ffmpeg wheel's."""

from __future__ import annotations

import os
import shutil
from functools import cache

FFMPEG_ENV = "DACIRCO_FFMPEG"


class FfmpegNotFound(RuntimeError):
    pass


@cache
def ffmpeg_exe() -> str:
    override = os.environ.get(FFMPEG_ENV)
    if override:
        found = shutil.which(override)
        if not found:
            raise FfmpegNotFound(f"{FFMPEG_ENV}={override!r} is not an executable")
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise FfmpegNotFound("imageio-ffmpeg is not installed and DACIRCO_FFMPEG is unset") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()
