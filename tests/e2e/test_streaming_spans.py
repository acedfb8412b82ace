"""A long movie's ladder split in time end to end: the policy splits a streaming job, real
workers encode its spans at once (each decoding only its span of the input, every
rendition), one joins the spans' playlists, and ffmpeg plays the result over HTTP from the
service as one movie, on local storage and on SeaweedFS. The controller and API run in this
process (so the test can give the policy its knobs); the workers are real processes running
real ffmpeg."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dacirco.catalog.generate import generate_movie, movie_spec
from tests.e2e.test_streaming import play
from tests.e2e.test_streaming_parts import open_service, run
from tests.integration.test_streaming_spans import check_joined

pytestmark = pytest.mark.slow

SPEC = movie_spec(8, max_height=240)  # bbb_8: 44 s, 240p, 25 fps
MOVIE = "bbb_8-long.mp4"
SEGMENT = 4.0
RENDITIONS = [(240, 500), (144, 200)]
SPANS = 2  # 11 segments of 4 s; a span holds 20 s at least


def outputs(container: str) -> list[dict]:
    renditions = [{"height": h, "video_bitrate": v, "audio_bitrate": 64} for h, v in RENDITIONS]
    return [{"container": container, "segment_seconds": SEGMENT, "renditions": renditions}]


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spans-movie") / MOVIE
    generate_movie(SPEC, path)
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path, movie: Path) -> Path:
    from dacirco.catalog.service import add
    from dacirco.config import open_local_storage

    data_dir = tmp_path_factory.mktemp("spans-catalog") / "data"
    shutil.copytree(catalog_dir, data_dir)
    add(open_local_storage(data_dir), [movie])
    return data_dir


@pytest.fixture(params=["local", "s3"])
def svc(request, catalog: Path, movie: Path, tmp_path: Path):
    with open_service(request, catalog, movie, tmp_path) as found:
        yield found


def check(played: Path, audio_tracks: int) -> None:
    check_joined(played, SPEC, RENDITIONS, SEGMENT, audio_tracks)


def test_a_long_hls_ladder_in_spans_plays_as_one(svc, tmp_path) -> None:
    client, log = svc
    body = {"id_video": MOVIE, "outputs": outputs("hls"), "speed": "ultrafast", "reuse": False,
            "thumbnails": {"every": 5}}  # fmt: skip
    job, listing, seen = run(client, log, body)
    (split,) = [e for e in seen if e["code"] == "EV15"]
    assert int(split["chunks"]) == SPANS
    assert len([e for e in seen if e["code"] == "EV16"]) == SPANS
    assert [e["code"] for e in seen if e["code"] in ("EV7", "EV13")] == ["EV7"]
    spans = sorted(a["seconds"] for a in job["figures"]["attempts"] if a["part"] == "chunk")
    assert spans == [[0.0, 20.0], [20.0, None]]  # segments 0-4 and 5-10

    names = {f["name"] for f in listing["files"]}
    segments = {f"hls-{i}-{n:05d}.m4s" for i in (0, 1) for n in range(11)}
    assert segments <= names and {"hls-0-init.mp4", "hls-1-init.mp4", "poster.jpg"} <= names
    assert {"master.m3u8", "hls-0.m3u8", "hls-1.m3u8", "thumbnails.vtt"} <= names
    assert not [n for n in names if n.startswith("master-p") or "-s1." in n or "-s2." in n]
    played = play(listing["playlists"]["hls"], tmp_path / "hls.mkv")
    check(played, audio_tracks=len(RENDITIONS))


def test_a_long_dash_ladder_in_spans_plays_as_one(svc, tmp_path) -> None:
    """With its quality asked: each span measures its renditions against its own span of the
    input; the job shows each rendition's figures pooled over the spans."""
    client, log = svc
    body = {"id_video": MOVIE, "outputs": outputs("dash"), "speed": "ultrafast", "reuse": False,
            "quality": True}  # fmt: skip
    job, listing, seen = run(client, log, body)
    (split,) = [e for e in seen if e["code"] == "EV15"]
    assert int(split["chunks"]) == SPANS
    lines = [e for e in seen if e["code"] == "EV21"]
    assert sorted((int(e["span"]), int(e["rendition"])) for e in lines) == [
        (1, 1), (1, 2), (2, 1), (2, 2)
    ]  # fmt: skip
    figures = job["quality_figures"]["renditions"]
    assert [(r["rendition"], r["height"]) for r in figures] == [(1, 240), (2, 144)]
    for r in figures:  # 44 s at 25 fps, one frame in 12 scored: 20 s + 24 s of it
        mine = [e for e in lines if int(e["rendition"]) == r["rendition"]]
        assert r["frames"] == sum(int(e["frames"]) for e in mine) == 42 + 50
        low, high = sorted(float(e["vmaf"]) for e in mine)
        assert 0 < low <= r["vmaf"] <= high <= 100
    names = {f["name"] for f in listing["files"]}
    assert "manifest.mpd" in names and not [n for n in names if n.startswith("manifest-p")]
    assert {n for n in names if n.endswith("init.m4s")} == {
        "dash-p1-0-init.m4s", "dash-p1-1-init.m4s", "dash-p1-2-init.m4s"
    }  # fmt: skip
    played = play(listing["playlists"]["dash"], tmp_path / "dash.mkv")
    check(played, audio_tracks=1)
