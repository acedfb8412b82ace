"""A long streaming job split in time: every rendition encoded span by span, each span a part
of its own on any worker, then the spans' playlists joined by the packaging.

A span is a run of whole segments: its boundaries fall on the segment grid every output
shares, where every rendition has a keyframe, so the joined renditions stay aligned and a
player switches between them at any segment. Each part decodes only its span of the input
(a part of renditions decodes all of it), which is why a long movie is split in time before
it is split by renditions.

- A job is split in time only if all its outputs are HLS or DASH with one segment length (an
  MP4 file is one piece) and its duration is known. Asked for, the quality is measured by
  each span against its own span of the input, and pooled by the core (``core.quality``).
- A span holds at least ``MIN_SPAN_SECONDS`` of the movie: each part costs a dispatch, a
  download of the input, ffmpeg's start and a seek, worth paying only for that much work.
- Span ``n`` of ``k`` holds segments ``[first, last)``; the last one runs to the input's end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MIN_SPAN_SECONDS = 20.0
MAX_SPANS = 16  # as many as a job may have chunks


@dataclass(frozen=True)
class Span:
    """Segments ``[first, last)`` of every rendition (numbered from 0), ``seconds`` each;
    ``final``: it runs to the end of the input."""

    first: int
    last: int
    seconds: float
    final: bool

    @property
    def start(self) -> float:
        return self.first * self.seconds

    @property
    def length(self) -> float | None:
        """Its seconds of the input, None for the last one (to the end)."""
        return None if self.final else (self.last - self.first) * self.seconds


def grid(outputs: list[dict[str, Any]] | None) -> float | None:
    """The segment length every output shares, when all are HLS or DASH; None: the job cannot
    be split in time."""
    if not outputs or any(o["container"] not in ("hls", "dash") for o in outputs):
        return None
    lengths = {float(o["segment_seconds"]) for o in outputs}
    return lengths.pop() if len(lengths) == 1 else None


def segments(outputs: list[dict[str, Any]], duration: float) -> int:
    """How many segments each rendition of the job has."""
    seconds = grid(outputs)
    assert seconds is not None
    return max(1, math.ceil(duration / seconds - 1e-6))


def most_spans(outputs: list[dict[str, Any]] | None, duration: float | None) -> int:
    """How many spans the job may be split in (1: none)."""
    seconds = grid(outputs)
    if seconds is None or not duration or duration <= 0:
        return 1
    assert outputs is not None
    per = max(1, math.ceil(MIN_SPAN_SECONDS / seconds - 1e-6))  # segments a span holds at least
    return max(1, min(MAX_SPANS, math.floor(duration / seconds + 1e-6) // per))


def spans(outputs: list[dict[str, Any]], duration: float, k: int) -> list[Span]:
    """The job's segments in ``k`` spans of near-equal length, in order."""
    seconds = grid(outputs)
    assert seconds is not None
    total = segments(outputs, duration)
    k = max(1, min(k, total))
    bounds = [total * m // k for m in range(k + 1)]
    return [Span(bounds[m], bounds[m + 1], seconds, m == k - 1) for m in range(k)]


def span_playlist(rendition: int, n: int) -> str:
    """The HLS media playlist of rendition ``rendition`` that part ``n`` (a span) writes;
    the packaging joins them into ``hls-<rendition>.m3u8``."""
    return f"hls-{rendition}-s{n}.m3u8"
