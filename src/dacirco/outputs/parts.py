"""A streaming job split in parts: its renditions (and its thumbnails) spread over K tasks
that run on several workers at once, then, for HLS and DASH, one packaging task that writes
the master playlist and the MPD from the playlists each part wrote.

Plain functions over the outputs as stored with the job (``spec.OutputSpec`` dumped), shared
by the core (what a part weighs, which files are whose), the controller (what a task makes,
what its upload must hold), the worker (what to encode, how to name it) and the simulator.

- A **unit** is what one rendition adds to the outputs: its video and, unless another
  rendition of the same DASH output carries the same sound already, its audio; or the
  thumbnails. A job has at most ``MAX_RENDITIONS`` + 1 units.
- ``plan(k)`` groups the units in ``k`` parts of near-equal work (longest first, each to the
  lightest part: deterministic), numbered 1..k in the order of their first rendition.
- ``layout(k)`` is what a split makes: ``k`` spans in time of every rendition when the movie
  is long enough (``outputs.spans``: each part decodes only its span), else ``plan(k)``.
- Which files are whose: ``outputs.part_files``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .names import AUDIO_SHARE
from .spans import Span, most_spans, spans

THUMBNAILS = -1  # a unit's output index: the thumbnails (poster, sprites, index)
# The thumbnails' work against one encode of the input: one decode with tiny scaled frames.
THUMBNAILS_SHARE = 0.05
WORTH = 0.1  # a split in more parts must shorten the heaviest part by more than this share


@dataclass(frozen=True)
class Unit:
    """One rendition of one output (``rendition``: its index there, from 0) or the
    thumbnails (``output`` = ``THUMBNAILS``); ``audio``: it encodes its sound."""

    output: int
    rendition: int
    share: float  # its work as a multiple of one encode of the input at its own size
    audio: bool = True


def _video_share(r: dict[str, Any], input_height: float | None) -> float:
    if not r.get("video_bitrate"):
        return AUDIO_SHARE
    height = r.get("height")
    return (height / input_height) ** 2 if height and input_height else 1.0


def units(
    outputs: list[dict[str, Any]], thumbnails: bool, input_height: float | None
) -> list[Unit]:
    """What the job's outputs are made of, in order; a DASH audio bitrate once (the first
    rendition that asks for it carries it, as the whole job's one representation)."""
    found: list[Unit] = []
    for o, out in enumerate(outputs):
        carried: set[int] = set()
        for i, r in enumerate(out["renditions"]):
            rate = r.get("audio_bitrate")
            audio = rate is not None
            if out["container"] == "dash" and audio:
                audio = rate not in carried
                carried.add(rate)
            if not r.get("video_bitrate") and not audio:
                continue  # a DASH audio rendition another one carries already
            found.append(Unit(o, i, _video_share(r, input_height), audio))
    if thumbnails:
        found.append(Unit(THUMBNAILS, THUMBNAILS, THUMBNAILS_SHARE))
    return found


@dataclass(frozen=True)
class Plan:
    """What each part of a split streaming job makes (``parts[n - 1]``: part ``n``'s units)
    and, when it is split in time, over which span (``spans[n - 1]``): every part then makes
    every rendition over its span, the last one the thumbnails too."""

    parts: list[list[Unit]]
    spans: list[Span] | None = None

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[list[Unit]]:
        return iter(self.parts)


def most_parts(
    outputs: list[dict[str, Any]] | None,
    thumbnails: bool,
    input_height: float | None,
    duration: float | None = None,
) -> int:
    """How many parts the job is worth splitting in (1: none): the spans of a long movie
    (``outputs.spans.most_spans``), or the groups of its renditions."""
    return max(most_groups(outputs, thumbnails, input_height), most_spans(outputs, duration))


def most_groups(
    outputs: list[dict[str, Any]] | None, thumbnails: bool, input_height: float | None
) -> int:
    """How many groups of renditions the job is worth splitting in (1: none): the fewest whose
    heaviest part is within ``WORTH`` of the lightest it can be (its heaviest unit). Each part
    decodes the whole input: a part that saves less would cost a decode and a worker for
    little."""
    if not outputs:
        return 1
    found = units(outputs, thumbnails, input_height)
    heaviest = max((u.share for u in found), default=0.0)
    enough = heaviest + max(WORTH * heaviest, THUMBNAILS_SHARE)
    for k in range(1, len(found)):
        parts = plan(outputs, thumbnails, input_height, k)
        if max(sum(u.share for u in part) for part in parts) <= enough:
            return k
    return max(1, len(found))


def plan(
    outputs: list[dict[str, Any]], thumbnails: bool, input_height: float | None, k: int
) -> list[list[Unit]]:
    """The units in ``min(k, units)`` parts of near-equal work, parts in the order of their
    first unit, units in each part in the outputs' order (the thumbnails last)."""
    found = units(outputs, thumbnails, input_height)
    k = max(1, min(k, len(found)))
    parts: list[list[Unit]] = [[] for _ in range(k)]
    loads = [0.0] * k
    for unit in sorted(found, key=lambda u: (-u.share, _order(u))):
        n = min(range(k), key=lambda i: (loads[i], i))
        parts[n].append(unit)
        loads[n] += unit.share
    for part in parts:
        part.sort(key=_order)
    parts.sort(key=lambda p: _order(p[0]))
    return parts


def layout(
    outputs: list[dict[str, Any]],
    thumbnails: bool,
    input_height: float | None,
    k: int,
    duration: float | None = None,
) -> Plan:
    """The job in ``k`` parts: ``k`` spans in time when it may have that many (a part of a
    span decodes only its span of the input), else ``k`` groups of its renditions."""
    if in_time(outputs, k, duration):
        assert duration is not None
        cut = spans(outputs, duration, k)
        found = units(outputs, False, input_height)
        parts = [list(found) for _ in cut]
        if thumbnails:  # made from the whole input, by the last part
            parts[-1].append(Unit(THUMBNAILS, THUMBNAILS, THUMBNAILS_SHARE))
        return Plan(parts, cut)
    return Plan(plan(outputs, thumbnails, input_height, k))


def in_time(outputs: list[dict[str, Any]], k: int, duration: float | None) -> bool:
    """Whether a split in ``k`` parts is made of spans in time (else of renditions)."""
    return 2 <= k <= most_spans(outputs, duration)


def _order(u: Unit) -> tuple[int, int]:
    return (u.output if u.output != THUMBNAILS else 1 << 30, u.rendition)


def share(made: Plan, n: int) -> float:
    """Part ``n``'s (from 1) share of the job's work."""
    works = [_work(made, m) for m in range(1, len(made) + 1)]
    total = sum(works)
    return works[n - 1] / total if total else 1.0 / len(made)


def _work(made: Plan, n: int) -> float:
    part = made.parts[n - 1]
    if made.spans is None:
        return sum(u.share for u in part)
    span = made.spans[n - 1]
    whole = made.spans[-1].last
    fraction = (span.last - span.first) / whole if whole else 1.0
    return sum(u.share * (fraction if u.output != THUMBNAILS else 1.0) for u in part)


def label(outputs: list[dict[str, Any]], unit: Unit) -> str:
    """A unit in a few words: ``hls 720p``, ``dash audio 128k``, ``thumbnails``."""
    if unit.output == THUMBNAILS:
        return "thumbnails"
    out = outputs[unit.output]
    r = out["renditions"][unit.rendition]
    if not r.get("video_bitrate"):
        return f"{out['container']} audio {r.get('audio_bitrate')}k"
    height = f"{r['height']}p" if r.get("height") else "source"
    return f"{out['container']} {height}"
