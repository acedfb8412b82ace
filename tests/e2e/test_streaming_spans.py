"""A long movie's ladder split in time end to end: the policy splits a streaming job, real
workers encode its spans at once (each decoding only its span of the input, every
rendition), one joins the spans' playlists, and ffmpeg plays the result over HTTP from the
service as one movie, on local storage and on SeaweedFS. The controller and API run in this
process (so the test can give the policy its knobs); the workers are real processes running
real ffmpeg."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import av
import pytest

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.storage.options import S3Config
from tests.conftest import s3_storage
from tests.e2e.test_streaming import play
from tests.e2e.test_streaming_parts import run, service

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
    data = tmp_path / "data"
    shutil.copytree(catalog, data)
    s3 = None
    if request.param == "s3":
        from dacirco.catalog.service import add

        server = request.getfixturevalue("s3_catalog")
        add(s3_storage(server), [movie])
        host, port = server.endpoint.rsplit(":", 1)
        s3 = S3Config(host, int(port), server.access_key, server.secret_key)
    with service(data, tmp_path, s3) as (client, log):
        yield client, log


def check(played: Path, audio_tracks: int) -> None:
    """Every rendition whole: the input's frames one frame apart, a keyframe at every
    segment boundary and nowhere else, its bitrate within 15 %; the input's sound."""
    frame = 1 / SPEC.fps
    with av.open(str(played)) as container:
        packets: dict[int, list[av.Packet]] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                packets.setdefault(packet.stream.index, []).append(packet)
        videos = [s for s in container.streams if s.type == "video"]
        audios = [s for s in container.streams if s.type == "audio"]
        assert [s.codec_context.height for s in videos] == [h for h, _ in RENDITIONS]
        assert len(audios) == audio_tracks
        for stream, (height, kbps) in zip(videos, RENDITIONS, strict=True):
            tb = float(stream.time_base)
            got = packets[stream.index]
            times = sorted(p.pts * tb for p in got)
            assert len(times) == SPEC.frames, (height, len(times))
            steps = [b - a for a, b in itertools.pairwise(times)]
            assert 0.5 * frame < min(steps) and max(steps) < 1.5 * frame, height
            keys = sorted(round(p.pts * tb - times[0], 2) for p in got if p.is_keyframe)
            assert keys == [SEGMENT * i for i in range(11)], (height, keys)
            bits = sum(p.size for p in got) * 8 / (len(times) * frame)
            assert abs(bits / (kbps * 1000) - 1) <= 0.15, (height, bits)
        for stream in audios:
            tb = float(stream.time_base)
            got = packets[stream.index]
            start = min(p.pts for p in got) * tb
            end = max(p.pts + (p.duration or 0) for p in got) * tb
            assert abs((end - start) - SPEC.duration) <= 0.1, end - start


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
    client, log = svc
    body = {"id_video": MOVIE, "outputs": outputs("dash"), "speed": "ultrafast", "reuse": False}
    _, listing, seen = run(client, log, body)
    (split,) = [e for e in seen if e["code"] == "EV15"]
    assert int(split["chunks"]) == SPANS
    names = {f["name"] for f in listing["files"]}
    assert "manifest.mpd" in names and not [n for n in names if n.startswith("manifest-p")]
    assert {n for n in names if n.endswith("init.m4s")} == {
        "dash-p1-0-init.m4s", "dash-p1-1-init.m4s", "dash-p1-2-init.m4s"
    }  # fmt: skip
    played = play(listing["playlists"]["dash"], tmp_path / "dash.mkv")
    check(played, audio_tracks=1)
