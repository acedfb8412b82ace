"""The seconds of a streaming task (a whole ladder, or a group of its renditions), from the
classic single encode of the same movie that ``sim.models`` predicts.

A streaming task runs one ffmpeg that decodes the input once, scales it to each rendition's
size and encodes every rendition (``worker.ladder``); then, if asked, one that makes the
thumbnails (its own decode) and one per output that measures the quality. Measured with the
worker's own commands (``benchmarks/ladder_model.py``, CPU seconds, ``-threads 2``), its
seconds split in parts that do not depend on the x264 preset and one that does:

``seconds = U x (DECODE + sum over video renditions of SCALE + AUDIO x audio streams
+ THUMBNAILS + quality) + C x ENCODE[speed] x sum over video renditions of share``

with ``U`` the classic encode of the movie at "ultrafast", ``C`` the classic encode at the
task's speed (both ``TranscodeModel.seconds``, h264: what the simulator predicts for a
classic job of that movie), ``share`` a rendition's pixels over the input's (``(h / H)²``,
``outputs.parts.units``; ``CODEC_PRESET``'s hevc factor for an hevc rendition) and quality
``QUALITY x (1 + sum of shares)`` (one decode of the input, then each rendition decoded,
scaled and scored). Each term is the measured CPU seconds over the classic encode's
(docs/simulator.md has the figures and the model's errors).
"""

from __future__ import annotations

from collections.abc import Iterable

from dacirco.outputs.parts import THUMBNAILS, Unit
from dacirco.sim.models import CODEC_PRESET, Models, Movie

# Least squares on bbb_3 (1080p30, 10 s) and bbb_4 (720p25, 13 s) at both speeds,
# benchmarks/ladder_model.py: each rendition alone, a pair, the HLS and DASH ladders.
DECODE = 0.18  # the input's one decode (and demux), over the classic "ultrafast" encode
SCALE = 0.35  # per video rendition: its scaler from the input's size, its muxer, its queue
AUDIO = 0.10  # per AAC stream (an HLS rendition each; DASH once per bitrate; audio alone)
THUMBNAILS_COST = 0.37  # the thumbnails' own run: a decode, small frames, JPEGs
QUALITY = 0.89  # per unit of (1 + sum of shares): the quality run's decodes and scores
# The encoding itself, per unit of share, over the classic encode at the same speed.
ENCODE = {"ultrafast": 0.20, "fast": 0.835}
# The packaging task of a split streaming job: it reads the parts' playlists and writes the
# master playlist or the MPD (a few kB): ffmpeg-free, its start and a few files.
PACKAGING_S = 0.2


def video(group: Iterable[Unit], outputs: list[dict]) -> list[tuple[Unit, dict]]:
    """The video renditions of ``group`` with their JSON."""
    found = []
    for u in group:
        if u.output == THUMBNAILS:
            continue
        r = outputs[u.output]["renditions"][u.rendition]
        if r.get("video_bitrate"):
            found.append((u, r))
    return found


def parts(group: Iterable[Unit], outputs: list[dict], quality: bool) -> tuple[float, float]:
    """(the preset-free part over the classic "ultrafast" encode, the sum of the encoded
    shares) of a task that makes ``group``."""
    group = list(group)
    renditions = video(group, outputs)
    fixed = (DECODE if renditions else 0.0) + SCALE * len(renditions)
    fixed += AUDIO * sum(1 for u in group if u.output != THUMBNAILS and u.audio)
    if any(u.output == THUMBNAILS for u in group):
        fixed += THUMBNAILS_COST
    shares = sum(u.share * _codec(r) for u, r in renditions)
    if quality and renditions:
        fixed += QUALITY * (1 + sum(u.share for u, _ in renditions))
    return fixed, shares


def _codec(rendition: dict) -> float:
    codec = rendition.get("codec") or "h264"
    return CODEC_PRESET[(codec, "ultrafast")] / CODEC_PRESET[("h264", "ultrafast")]


def ratio(
    group: Iterable[Unit], outputs: list[dict], speed: str, quality: bool, fast_over: float
) -> float:
    """The task's seconds over the classic encode at ``speed``; ``fast_over``: that classic
    encode over the "ultrafast" one (1 at "ultrafast")."""
    fixed, shares = parts(group, outputs, quality)
    return fixed / fast_over + ENCODE[speed] * shares


def group_seconds(
    movie: Movie,
    group: Iterable[Unit],
    outputs: list[dict],
    speed: str,
    quality: bool,
    models: Models,
    cores: int,
) -> float:
    """Mean seconds (before the job's noise) of a task encoding ``group`` of ``movie``'s
    renditions on a worker of ``cores`` cores."""
    seconds = models.transcode.seconds
    classic = seconds(movie, "h264", speed, cores)
    fixed, shares = parts(group, outputs, quality)
    base = classic if speed == "ultrafast" else seconds(movie, "h264", "ultrafast", cores)
    return base * fixed + classic * ENCODE[speed] * shares
