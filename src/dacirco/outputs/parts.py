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
- Files keep the names the whole job would give them (``hls-<i>…``, ``<i>-<h>p-<kbps>k.mp4``,
  thumbnails), except what a part cannot write alone: its HLS master playlist is
  ``master-p<n>.m3u8``, its DASH representations ``dash-p<n>-<rep>-…`` with the MPD
  ``manifest-p<n>.mpd``. Packaging merges those into ``master.m3u8`` and ``manifest.mpd``;
  the partial playlists are then deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .names import (
    AUDIO_SHARE,
    DASH_MANIFEST,
    MASTER_PLAYLIST,
    POSTER,
    THUMBNAILS_VTT,
    rendition_file,
)

THUMBNAILS = -1  # a unit's output index: the thumbnails (poster, sprites, index)
# The thumbnails' work against one encode of the input: one decode with tiny scaled frames.
THUMBNAILS_SHARE = 0.05
WORTH = 0.1  # a split in more parts must shorten the heaviest part by more than this share
_SPRITE_RE = re.compile(r"^sprite-\d+\.jpg$")


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


def most_parts(
    outputs: list[dict[str, Any]] | None, thumbnails: bool, input_height: float | None
) -> int:
    """How many parts are worth splitting the job in (1: none): the fewest whose heaviest
    part is within ``WORTH`` of the lightest it can be (its heaviest unit). Each part decodes
    the whole input: a part that saves less would cost a decode and a worker for little."""
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


def _order(u: Unit) -> tuple[int, int]:
    return (u.output if u.output != THUMBNAILS else 1 << 30, u.rendition)


def share(parts: list[list[Unit]], n: int) -> float:
    """Part ``n``'s (from 1) share of the job's work."""
    total = sum(u.share for part in parts for u in part)
    return sum(u.share for u in parts[n - 1]) / total if total else 1.0 / len(parts)


def needs_packaging(outputs: list[dict[str, Any]]) -> bool:
    """A master playlist or an MPD must be written once every part is done."""
    return any(o["container"] in ("hls", "dash") for o in outputs)


def partial_master(n: int) -> str:
    return f"master-p{n}.m3u8"


def partial_manifest(n: int) -> str:
    return f"manifest-p{n}.mpd"


def dash_prefix(n: int | None) -> str:
    """The prefix of a DASH representation's files: ``dash-`` for the whole job's,
    ``dash-p<n>-`` for part ``n``'s."""
    return "dash-" if n is None else f"dash-p{n}-"


def containers(outputs: list[dict[str, Any]], part: list[Unit]) -> set[str]:
    return {outputs[u.output]["container"] for u in part if u.output != THUMBNAILS}


def partials(outputs: list[dict[str, Any]], parts: list[list[Unit]]) -> list[str]:
    """The partial playlists the parts write, in part order: what packaging reads, then
    deletes."""
    names = []
    for n, part in enumerate(parts, 1):
        kinds = containers(outputs, part)
        if "hls" in kinds:
            names.append(partial_master(n))
        if "dash" in kinds:
            names.append(partial_manifest(n))
    return names


def packaged(outputs: list[dict[str, Any]]) -> list[str]:
    """The files packaging writes, the main one last."""
    kinds = {o["container"] for o in outputs}
    return [
        name for kind, name in (("dash", DASH_MANIFEST), ("hls", MASTER_PLAYLIST)) if kind in kinds
    ]


def part_main(outputs: list[dict[str, Any]], parts: list[list[Unit]], n: int) -> str:
    """The file part ``n`` uploads last: once it is there, the part's other files are."""
    part = parts[n - 1]
    kinds = containers(outputs, part)
    if "hls" in kinds:
        return partial_master(n)
    if "dash" in kinds:
        return partial_manifest(n)
    mp4 = [u for u in part if u.output != THUMBNAILS]
    if mp4:
        u = mp4[-1]
        return rendition_file(outputs[u.output]["renditions"][u.rendition], u.rendition)
    return THUMBNAILS_VTT


def owns(outputs: list[dict[str, Any]], parts: list[list[Unit]], n: int, name: str) -> bool:
    """Whether ``name`` (a file of the job's folder) is one part ``n`` makes."""
    part = parts[n - 1]
    if name == partial_master(n):
        return "hls" in containers(outputs, part)
    if name == partial_manifest(n) or name.startswith(dash_prefix(n)):
        return "dash" in containers(outputs, part)
    for u in part:
        if u.output == THUMBNAILS:
            if name in (POSTER, THUMBNAILS_VTT) or _SPRITE_RE.match(name):
                return True
            continue
        kind = outputs[u.output]["container"]
        if kind == "hls" and (
            name == f"hls-{u.rendition}.m3u8" or name.startswith(f"hls-{u.rendition}-")
        ):
            return True
        if kind == "mp4" and name == rendition_file(
            outputs[u.output]["renditions"][u.rendition], u.rendition
        ):
            return True
    return False


def made_by(
    outputs: list[dict[str, Any]], parts: list[list[Unit]], kind: str, n: int, name: str
) -> bool:
    """Whether file ``name`` of the job's folder is one a task of ``kind`` makes: every file
    (the whole job), part ``n``'s (a chunk), the packaged playlists (a merge)."""
    if kind == "chunk":
        return owns(outputs, parts, n, name)
    if kind == "merge":
        return name in packaged(outputs)
    return True


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
