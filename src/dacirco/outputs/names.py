"""The names of a job's streaming outputs: its folder, its files, and its main file.

Plain functions over the outputs as stored with the job (JSON data, ``spec.OutputSpec``
dumped), so that the domain and the core can name them without validating anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# The files a worker may upload into a job's folder: what ``worker.ladder`` writes.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(m3u8|mpd|m4s|mp4|m4a|jpg|vtt)$")
MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
# Served by the play route itself, so that the names they hold resolve under its signature
# (a WebVTT thumbnail index names its sprite sheets as a playlist names its segments).
PLAYLISTS = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
}
# Thumbnails (worker.thumbnails): a poster, sprite sheets and their WebVTT index.
POSTER = "poster.jpg"
SPRITE_PATTERN = "sprite-%d.jpg"  # ffmpeg's image2 numbering, from 1
THUMBNAILS_VTT = "thumbnails.vtt"


def sprite_file(sheet: int) -> str:
    """The ``sheet``-th sprite sheet (from 1)."""
    return SPRITE_PATTERN.replace("%d", str(sheet))


def output_dir(id_video: str, job_id: str) -> str:
    """The folder (under ``output-videos/``) that holds every file of a job's outputs."""
    return f"{id_video.rsplit('.', 1)[0]}-{job_id}"


def rendition_file(rendition: dict[str, Any], index: int) -> str:
    """The file of the ``index``-th rendition (from 0) of an MP4 output: ``1-720p-3000k.mp4``,
    ``1-source-3000k.mp4`` (the input's height), ``2-audio-128k.m4a``."""
    height, video = rendition.get("height"), rendition.get("video_bitrate")
    if video is None:
        return f"{index + 1}-audio-{rendition.get('audio_bitrate')}k.m4a"
    return f"{index + 1}-{f'{height}p' if height else 'source'}-{video}k.mp4"


def main_file(outputs: list[dict[str, Any]]) -> str:
    """The file ``GET /jobs/{id}/output`` leads to: the HLS master playlist, else the DASH
    manifest, else the first single file."""
    containers = [o["container"] for o in outputs]
    if "hls" in containers:
        return MASTER_PLAYLIST
    if "dash" in containers:
        return DASH_MANIFEST
    return rendition_file(outputs[0]["renditions"][0], 0)


def media_type(name: str) -> str | None:
    """A playlist's media type, or None for a media file."""
    return next((kind for ext, kind in PLAYLISTS.items() if name.endswith(ext)), None)


def digest(outputs: list[dict[str, Any]]) -> str:
    """A short fingerprint of stored outputs: two requests with the same one ask for the
    same files (output reuse)."""
    text = json.dumps(outputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# An audio-only rendition (AAC) against one video encode of its input: far below 1 (the
# decode of the input's audio alone, then an encoder hundreds of times faster than real time).
AUDIO_SHARE = 0.01


def encode_share(outputs: list[dict[str, Any]], input_height: float | None) -> float:
    """The encoding work of ``outputs`` (fitted, dumped) as a multiple of one encode of the
    input at its own size: each video rendition by its pixels, ``(its height / the input's)``
    squared (the width keeps the aspect ratio); audio alone for ``AUDIO_SHARE``."""
    share = 0.0
    for o in outputs:
        for r in o["renditions"]:
            if not r.get("video_bitrate"):
                share += AUDIO_SHARE
                continue
            height = r.get("height")
            share += (height / input_height) ** 2 if height and input_height else 1.0
    return share


def total_kbps(outputs: list[dict[str, Any]]) -> int:
    """Every rendition's video and audio bitrate, summed: what the outputs weigh per second."""
    return sum(
        (r.get("video_bitrate") or 0) + (r.get("audio_bitrate") or 0)
        for o in outputs
        for r in o["renditions"]
    )
