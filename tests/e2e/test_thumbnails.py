"""Thumbnails end to end: a real service and worker make a streaming job's poster, sprite
sheets and WebVTT index; they are listed in ``GET /jobs/{id}/outputs`` and reached as a
player does: the index through its play URL, the sheet it names relative to it."""

from __future__ import annotations

import io
import math
import re
from urllib.parse import urljoin

import av
import httpx
import pytest

pytestmark = pytest.mark.slow

OUTPUTS = [
    {
        "container": "hls",
        "renditions": [
            {"height": 360, "video_bitrate": 800},
            {"height": 180, "video_bitrate": 300},
        ],
    }
]
CUE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d):(\d\d\.\d{3})$")


def seconds(h: str, m: str, s: str) -> float:
    return int(h) * 3600 + int(m) * 60 + float(s)


def image(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0))


def test_poster_sprite_and_index_from_a_real_worker(service_factory) -> None:  # type: ignore[no-untyped-def]
    svc = service_factory()
    body = {"id_video": "bbb_5.mp4", "outputs": OUTPUTS, "speed": "ultrafast",
            "thumbnails": {"every": 1}}  # fmt: skip
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()
    assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed", (
        svc.client.get(f"/jobs/{job_id}").json()["error"]
    )
    job = svc.client.get(f"/jobs/{job_id}").json()
    duration = job["input_duration"]
    listing = svc.client.get(f"/jobs/{job_id}/outputs").json()
    names = {f["name"] for f in listing["files"]}
    assert {"poster.jpg", "sprite-1.jpg", "thumbnails.vtt", "master.m3u8"} <= names

    # The poster: a JPEG of the input's size.
    poster = image(httpx.get(listing["thumbnails"]["poster"], follow_redirects=True).content)
    assert (poster.width, poster.height) == (1280, 720)

    # The index, as a player reads it: cues one second apart covering the whole movie.
    vtt_url = listing["thumbnails"]["vtt"]
    vtt = httpx.get(vtt_url)
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    blocks = vtt.text.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    tiles = math.ceil(duration / 1.0)
    assert len(blocks) - 1 == tiles
    start = 0.0
    for k, block in enumerate(blocks[1:]):
        timing, target = block.split("\n")
        found = CUE.match(timing)
        assert found, timing
        begin, end = seconds(*found.groups()[:3]), seconds(*found.groups()[3:])
        assert begin == pytest.approx(start) and end == pytest.approx(min(start + 1, duration))
        assert target == f"sprite-1.jpg#xywh={160 * k},0,160,90"
        start = end
    assert start == pytest.approx(duration)

    # The sheet the index names, fetched relative to it (the play URL's signature): one tile
    # per cue, side by side, each a picture (not a blank).
    sheet = image(httpx.get(urljoin(vtt_url, "sprite-1.jpg"), follow_redirects=True).content)
    assert (sheet.width, sheet.height) == (160 * tiles, 90)
    pixels = sheet.to_ndarray(format="gray")
    for k in range(tiles):
        assert pixels[:, 160 * k : 160 * (k + 1)].std() > 5, f"tile {k + 1} is blank"
