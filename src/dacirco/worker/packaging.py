"""The packaging of a streaming job split in parts: the master playlist and the MPD written
from the playlists each part wrote (``master-p<n>.m3u8``, ``manifest-p<n>.mpd``), then
uploaded into the job's folder, the main file last. No input is read: the parts made every
segment; this only names them.

- HLS: each part's master lists its variants (``#EXT-X-STREAM-INF`` with the bandwidth,
  resolution and codecs ffmpeg measured, then the media playlist). The job's master lists
  every variant, in the order of their renditions (``hls-<i>.m3u8``).
- DASH: each part's MPD has its representations, each with its own ``SegmentTemplate``. The
  job's MPD is the first part's with every representation in its adaptation set (video,
  audio), the template's ``$RepresentationID$`` spelt out (each part numbered its own from
  0) and the ids numbered again; video from the tallest down, as the whole job's.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx

from dacirco.outputs.names import DASH_MANIFEST, MASTER_PLAYLIST
from dacirco.protocol import TaskReport, TaskSpec
from dacirco.worker.channel import TaskChannel
from dacirco.worker.ffmpeg import TranscodeError
from dacirco.worker.joining import (
    MPD_NS,
    join_manifests,
    join_masters,
    join_media,
    media_seconds,
    read_mpd,
)
from dacirco.worker.ladder import upload_folder
from dacirco.worker.transfer import download

_VARIANT_RE = re.compile(r"^hls-(\d+)\.m3u8$")
_SPAN_MEDIA_RE = re.compile(r"^hls-(\d+)-s\d+\.m3u8$")
_Q = f"{{{MPD_NS}}}"


def merge_masters(texts: list[str]) -> str:
    """One HLS master playlist listing the variants of every part's, by rendition; its
    head (``#EXTM3U``, the version) is the first part's."""
    head: list[str] = []
    variants: list[tuple[int, str, str]] = []
    for n, text in enumerate(texts):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines or lines[0] != "#EXTM3U":
            raise TranscodeError("a part's master playlist does not start with #EXTM3U")
        for k, line in enumerate(lines):
            if line.startswith("#EXT-X-STREAM-INF:"):
                uri = lines[k + 1] if k + 1 < len(lines) else ""
                found = _VARIANT_RE.match(uri)
                if found is None:
                    raise TranscodeError(f"a part's master playlist names {uri[:60]!r}")
                variants.append((int(found.group(1)), line, uri))
            elif n == 0 and not variants and line.startswith("#"):
                head.append(line)
    if not variants:
        raise TranscodeError("the parts' master playlists list no variant")
    body = [f"{info}\n{uri}\n" for _, info, uri in sorted(variants)]
    return "\n".join(head) + "\n" + "\n".join(body)


def _literal(rep: ET.Element) -> None:
    """Spell out ``$RepresentationID$`` in a representation's segment template."""
    ident = rep.get("id", "")
    for template in rep.iter(f"{_Q}SegmentTemplate"):
        for attr in ("initialization", "media"):
            value = template.get(attr)
            if value is not None:
                template.set(attr, value.replace("$RepresentationID$", ident))


def merge_manifests(texts: list[str]) -> str:
    """One MPD with every part's representations, each in its adaptation set."""
    roots = [read_mpd(text, "a part's") for text in texts]
    base = roots[0]
    period = base.find(f"{_Q}Period")
    if period is None:
        raise TranscodeError("a part's MPD has no Period")
    sets: dict[str, ET.Element] = {}
    reps: dict[str, list[ET.Element]] = {}
    for root in roots:
        for adaptation in root.iter(f"{_Q}AdaptationSet"):
            kind = adaptation.get("contentType", "")
            for rep in adaptation.findall(f"{_Q}Representation"):
                _literal(rep)
                adaptation.remove(rep)
                reps.setdefault(kind, []).append(rep)
            if kind not in sets:
                sets[kind] = adaptation
    for adaptation in list(period.findall(f"{_Q}AdaptationSet")):
        period.remove(adaptation)
    ident = 0
    for k, kind in enumerate(sorted(sets, key=lambda c: (c != "video", c))):
        adaptation = sets[kind]
        adaptation.set("id", str(k))
        found = sorted(reps[kind], key=lambda r: -int(r.get("height", "0") or 0))
        for rep in found:
            rep.set("id", str(ident))
            ident += 1
            adaptation.append(rep)
        for attr, key in (("maxWidth", "width"), ("maxHeight", "height")):
            sizes = [int(r.get(key, "0")) for r in found if r.get(key)]
            if sizes:
                adaptation.set(attr, str(max(sizes)))
        period.append(adaptation)
    ET.indent(base, space="\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(base, encoding="unicode")


async def run_package(
    spec: TaskSpec,
    channel: TaskChannel,
    work: Path,
    store: httpx.AsyncClient,
    retries: dict[str, Any],
) -> None:
    """A streaming job's packaging task: read the parts' playlists, write the job's, upload."""
    await channel.send(TaskReport(step="started"))
    if not spec.playlist_urls:
        raise TranscodeError("a packaging task needs the parts' playlists")
    started = time.monotonic()
    size = 0
    texts: dict[str, str] = {}
    for name, url in sorted(spec.playlist_urls.items()):
        path = work / "parts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        size += await download(store, url, path, check=channel.check, **retries)
        texts[name] = path.read_text(encoding="utf-8", errors="replace")
    seconds = time.monotonic() - started
    await channel.send(TaskReport(step="downloaded", seconds=seconds, bytes=size))
    started = time.monotonic()
    folder = work / "outputs"
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(texts.items(), key=_part_order)
    masters = [t for n, t in ordered if n.startswith("master-")]
    manifests = [t for n, t in ordered if n.endswith(".mpd")]
    written: dict[str, str] = {}
    if spec.spans:
        written.update(_joined_media(ordered))
        weights = {i: [media_seconds(t) for t in spans] for i, spans in _media(ordered).items()}
        if masters:
            written[MASTER_PLAYLIST] = join_masters(masters, weights)
        if manifests:
            written[DASH_MANIFEST] = join_manifests(manifests)
    else:
        if masters:
            written[MASTER_PLAYLIST] = merge_masters(masters)
        if manifests:
            written[DASH_MANIFEST] = merge_manifests(manifests)
    for name, text in written.items():
        (folder / name).write_text(text, encoding="utf-8")
    seconds = time.monotonic() - started
    await channel.send(TaskReport(step="transcoded", seconds=seconds))
    started = time.monotonic()
    main = spec.output_name.rpartition("/")[2]
    size = await upload_folder(folder, main, channel, store, retries)
    seconds = time.monotonic() - started
    await channel.send(TaskReport(step="uploaded", seconds=seconds, bytes=size))


def _part_order(item: tuple[str, str]) -> int:
    found = re.search(r"-[ps](\d+)\.", item[0])
    return int(found.group(1)) if found else 0


def _media(ordered: list[tuple[str, str]]) -> dict[int, list[str]]:
    """The spans' HLS media playlists of each rendition, in span order."""
    found: dict[int, list[str]] = {}
    for name, text in ordered:
        media = _SPAN_MEDIA_RE.match(name)
        if media is not None:
            found.setdefault(int(media.group(1)), []).append(text)
    return found


def _joined_media(ordered: list[tuple[str, str]]) -> dict[str, str]:
    return {f"hls-{i}.m3u8": join_media(spans) for i, spans in _media(ordered).items()}
