"""Which files of a split streaming job's folder are whose: each part's, the packaging's.

Files keep the names the whole job would give them (``hls-<i>…``, ``<i>-<h>p-<kbps>k.mp4``,
thumbnails), except what a part cannot write alone:

- a part of renditions: its HLS master playlist is ``master-p<n>.m3u8``, its DASH
  representations ``dash-p<n>-<rep>-…`` with the MPD ``manifest-p<n>.mpd``;
- a span ``n`` in time, besides those: each HLS rendition's media playlist
  ``hls-<i>-s<n>.m3u8``, its segments under their numbers in the whole rendition
  (``hls-<i>-<number>.m4s``); the init segments are the same in every span (one encoder, one
  set of settings) and span 1 alone uploads them.

Packaging writes ``master.m3u8`` and ``manifest.mpd`` (and, for spans, each HLS rendition's
``hls-<i>.m3u8``) from those; the partial playlists are then deleted.
"""

from __future__ import annotations

import re
from typing import Any

from .names import DASH_MANIFEST, MASTER_PLAYLIST, POSTER, THUMBNAILS_VTT, rendition_file
from .parts import THUMBNAILS, Plan, Unit
from .spans import span_playlist

_SPRITE_RE = re.compile(r"^sprite-\d+\.jpg$")
_SEGMENT_RE = re.compile(r"^hls-(\d+)-(\d+)\.m4s$")


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


def _hls_renditions(outputs: list[dict[str, Any]], part: list[Unit]) -> list[int]:
    return [u.rendition for u in part if u.output != THUMBNAILS and _kind(outputs, u) == "hls"]


def _kind(outputs: list[dict[str, Any]], u: Unit) -> str:
    return str(outputs[u.output]["container"])


def partials(outputs: list[dict[str, Any]], made: Plan) -> list[str]:
    """The partial playlists the parts write, in part order: what packaging reads, then
    deletes."""
    names = []
    for n, part in enumerate(made.parts, 1):
        kinds = containers(outputs, part)
        if "hls" in kinds:
            names.append(partial_master(n))
            if made.spans is not None:
                names += [span_playlist(i, n) for i in _hls_renditions(outputs, part)]
        if "dash" in kinds:
            names.append(partial_manifest(n))
    return names


def packaged(outputs: list[dict[str, Any]], made: Plan | None = None) -> list[str]:
    """The files packaging writes, the main one last: for spans, the joined HLS media
    playlists first."""
    kinds = {o["container"] for o in outputs}
    joined = []
    if made is not None and made.spans is not None and made.parts:
        joined = [f"hls-{i}.m3u8" for i in _hls_renditions(outputs, made.parts[0])]
    return joined + [
        name for kind, name in (("dash", DASH_MANIFEST), ("hls", MASTER_PLAYLIST)) if kind in kinds
    ]


def part_main(outputs: list[dict[str, Any]], made: Plan, n: int) -> str:
    """The file part ``n`` uploads last: once it is there, the part's other files are."""
    part = made.parts[n - 1]
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


def owns(outputs: list[dict[str, Any]], made: Plan, n: int, name: str) -> bool:
    """Whether ``name`` (a file of the job's folder) is one part ``n`` makes."""
    part = made.parts[n - 1]
    if name == partial_master(n):
        return "hls" in containers(outputs, part)
    if name == partial_manifest(n) or name.startswith(dash_prefix(n)):
        return "dash" in containers(outputs, part)
    if made.spans is not None and _span_owns(outputs, made, n, name):
        return True
    for u in part:
        if u.output == THUMBNAILS:
            if name in (POSTER, THUMBNAILS_VTT) or _SPRITE_RE.match(name):
                return True
            continue
        kind = _kind(outputs, u)
        if (
            kind == "hls"
            and made.spans is None
            and (name == f"hls-{u.rendition}.m3u8" or name.startswith(f"hls-{u.rendition}-"))
        ):
            return True
        if kind == "mp4" and name == rendition_file(
            outputs[u.output]["renditions"][u.rendition], u.rendition
        ):
            return True
    return False


def _span_owns(outputs: list[dict[str, Any]], made: Plan, n: int, name: str) -> bool:
    """A span's HLS files: its media playlists, its segments, the init segments (span 1)."""
    assert made.spans is not None
    span = made.spans[n - 1]
    for i in _hls_renditions(outputs, made.parts[n - 1]):
        if name == span_playlist(i, n) or (n == 1 and name == f"hls-{i}-init.mp4"):
            return True
        found = _SEGMENT_RE.match(name)
        if found and int(found.group(1)) == i:
            number = int(found.group(2))
            return span.first <= number and (span.final or number < span.last)
    return False


def made_by(outputs: list[dict[str, Any]], made: Plan, kind: str, n: int, name: str) -> bool:
    """Whether file ``name`` of the job's folder is one a task of ``kind`` makes: every file
    (the whole job), part ``n``'s (a chunk), the packaged playlists (a merge)."""
    if kind == "chunk":
        return owns(outputs, made, n, name)
    if kind == "merge":
        return name in packaged(outputs, made)
    return True
