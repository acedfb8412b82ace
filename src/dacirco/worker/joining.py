"""The packaging of a streaming job split in time: the spans' playlists joined into the
whole movie's. No segment is read or copied: each span numbered its segments as the whole
rendition would (HLS) or named them apart (DASH), with timestamps where they fall in the
movie and the same init segments (``worker.ladder``), so joining is listing them in order.

- HLS: each rendition's media playlist is the first span's head, then every span's
  segments, then ``#EXT-X-ENDLIST``; the master is the first span's, each variant pointing
  at its joined playlist, with the peak bandwidth of every span and their average weighted
  by their seconds.
- DASH: the MPD is the first span's, each representation's ``SegmentList`` followed by the
  next spans' segments (the first span's init segment for all), the duration the sum.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from dacirco.worker.ffmpeg import TranscodeError

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_NAMESPACES = {
    "": MPD_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xlink": "http://www.w3.org/1999/xlink",
}
_Q = f"{{{MPD_NS}}}"
_SPAN_VARIANT_RE = re.compile(r"^hls-(\d+)-s1\.m3u8$")
_ATTR_RE = re.compile(r"(BANDWIDTH|AVERAGE-BANDWIDTH)=(\d+)")
_DURATION_RE = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def read_mpd(text: str, whose: str) -> ET.Element:
    """An MPD's root, its namespaces kept as written when it is written again."""
    for prefix, uri in _NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise TranscodeError(f"{whose} MPD cannot be read: {exc}") from None


def _lines(text: str, what: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise TranscodeError(f"a span's {what} does not start with #EXTM3U")
    return lines


def media_seconds(media: str) -> float:
    """The seconds a media playlist lists (the sum of its ``#EXTINF``)."""
    total = 0.0
    for line in _lines(media, "media playlist"):
        if line.startswith("#EXTINF:"):
            total += float(line[len("#EXTINF:") :].split(",")[0])
    return total


def join_media(spans: list[str]) -> str:
    """One VOD media playlist: the first span's head (its init segment's ``EXT-X-MAP``
    included), every span's segments in order, the longest segment as target duration."""
    head: list[str] = []
    body: list[str] = []
    longest = 0
    for n, text in enumerate(spans):
        lines = _lines(text, "media playlist")
        first = next((k for k, line in enumerate(lines) if line.startswith("#EXTINF:")), None)
        if first is None:
            raise TranscodeError("a span's media playlist lists no segment")
        if n == 0:
            head = lines[:first]
        for line in lines:
            if line.startswith("#EXT-X-TARGETDURATION:"):
                longest = max(longest, int(line.split(":", 1)[1]))
        body += [line for line in lines[first:] if line != "#EXT-X-ENDLIST"]
    head = [
        f"#EXT-X-TARGETDURATION:{longest}" if line.startswith("#EXT-X-TARGETDURATION:") else line
        for line in head
    ]
    return "\n".join([*head, *body, "#EXT-X-ENDLIST"]) + "\n"


def join_masters(masters: list[str], weights: dict[int, list[float]]) -> str:
    """The first span's master playlist with each variant ``hls-<i>-s1.m3u8`` renamed
    ``hls-<i>.m3u8``; its ``BANDWIDTH`` the peak of every span's, its ``AVERAGE-BANDWIDTH``
    their mean weighted by ``weights[i]`` (each span's seconds)."""
    rates: dict[int, list[dict[str, int]]] = {}
    for text in masters:
        lines = _lines(text, "master playlist")
        for k, line in enumerate(lines[:-1]):
            if line.startswith("#EXT-X-STREAM-INF:"):
                found = re.match(r"^hls-(\d+)-s\d+\.m3u8$", lines[k + 1])
                if found is None:
                    raise TranscodeError(f"a span's master playlist names {lines[k + 1][:60]!r}")
                attrs = {name: int(value) for name, value in _ATTR_RE.findall(line)}
                rates.setdefault(int(found.group(1)), []).append(attrs)
    out: list[str] = []
    lines = _lines(masters[0], "master playlist")
    for k, line in enumerate(lines):
        found = _SPAN_VARIANT_RE.match(line)
        if found is not None:
            out.append(f"hls-{found.group(1)}.m3u8\n")
            continue
        if line.startswith("#EXT-X-STREAM-INF:") and k + 1 < len(lines):
            variant = _SPAN_VARIANT_RE.match(lines[k + 1])
            if variant is not None:
                line = _rates(
                    line, rates[int(variant.group(1))], weights.get(int(variant.group(1)))
                )
        out.append(line)
    return "\n".join(out) + "\n"


def _rates(line: str, spans: list[dict[str, int]], weights: list[float] | None) -> str:
    peak = max(s.get("BANDWIDTH", 0) for s in spans)
    line = re.sub(r"(?<![-A-Z])BANDWIDTH=\d+", f"BANDWIDTH={peak}", line)
    averages = [s["AVERAGE-BANDWIDTH"] for s in spans if "AVERAGE-BANDWIDTH" in s]
    if weights and len(weights) == len(averages) == len(spans) and sum(weights) > 0:
        mean = sum(a * w for a, w in zip(averages, weights, strict=True)) / sum(weights)
        line = re.sub(r"AVERAGE-BANDWIDTH=\d+", f"AVERAGE-BANDWIDTH={round(mean)}", line)
    return line


def _duration(value: str | None) -> float:
    found = _DURATION_RE.match(value or "")
    if found is None:
        raise TranscodeError(f"a span's MPD has a duration that cannot be read: {value!r}")
    h, m, s = (float(x) if x else 0.0 for x in found.groups())
    return h * 3600 + m * 60 + s


def _iso(total: float) -> str:
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"PT{int(hours)}H{int(minutes)}M{secs:.3f}S"


def join_manifests(texts: list[str]) -> str:
    """One MPD: the first span's, each representation's segments followed by the next
    spans' (matched by representation id), the presentation as long as the spans."""
    roots = [read_mpd(text, "a span's") for text in texts]
    base = roots[0]
    lists = {
        rep.get("id"): rep.find(f"{_Q}SegmentList") for rep in base.iter(f"{_Q}Representation")
    }
    if not lists or any(found is None for found in lists.values()):
        raise TranscodeError("a span's MPD lists no segments (SegmentList) for a representation")
    total = 0.0
    for n, root in enumerate(roots):
        total += _duration(root.get("mediaPresentationDuration"))
        if n == 0:
            continue
        for rep in root.iter(f"{_Q}Representation"):
            target = lists.get(rep.get("id"))
            source = rep.find(f"{_Q}SegmentList")
            if target is None or source is None:
                raise TranscodeError(f"span {n + 1}'s MPD has a representation the first lacks")
            for segment in source.findall(f"{_Q}SegmentURL"):
                target.append(segment)
    for found in lists.values():
        assert found is not None
        # The spec's default is 1; players differ on an explicit one with a SegmentList.
        found.attrib.pop("startNumber", None)
    base.set("mediaPresentationDuration", _iso(total))
    ET.indent(base, space="\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(base, encoding="unicode")
