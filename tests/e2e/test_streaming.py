"""Streaming outputs end to end: a real service and worker encode the shipped ladders (HLS and
DASH) of a catalog movie, and ffmpeg plays them over HTTP from the service, through the
signed play URL alone (no token, no storage credential)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import av
import httpx
import pytest
from typer.testing import CliRunner

from dacirco.client import Client
from dacirco.client.cli import jobs_app
from dacirco.ffmpeg_bin import ffmpeg_exe
from tests.conftest import SIGNATURES, leaks, s3_storage, start_service

pytestmark = pytest.mark.slow

# bbb_4 at its real length (13 s, 720p, 25 fps): 6 s segments give three per rendition.
MOVIE = "bbb_4-full.mp4"
LADDER = [(720, 3000), (540, 2000), (432, 1100), (360, 730)]  # the preset, fitted to 720p
SEGMENT = 6.0
BITRATE_TOLERANCE = 0.15
MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dacirco.catalog.generate import generate_movie, movie_spec

    path = tmp_path_factory.mktemp("ladder-movie") / MOVIE
    generate_movie(movie_spec(4, max_height=720), path)
    return path


@pytest.fixture(scope="module")
def ladder_catalog(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path, movie: Path):
    from dacirco.catalog.service import add
    from dacirco.config import open_local_storage

    data_dir = tmp_path_factory.mktemp("ladder-catalog") / "data"
    shutil.copytree(catalog_dir, data_dir)
    add(open_local_storage(data_dir), [movie])
    return data_dir


@dataclass(frozen=True)
class Stream:
    width: int
    height: int
    duration: float  # seconds, first packet to the end of the last
    bits_per_second: float
    keyframes: tuple[float, ...]


def video_streams(path: Path) -> tuple[list[Stream], list[float]]:
    """Each video stream of ``path`` as played, and each audio stream's duration."""
    with av.open(str(path)) as container:
        packets: dict[int, list[av.Packet]] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                packets.setdefault(packet.stream.index, []).append(packet)
        videos, audios = [], []
        for stream in container.streams:
            got = packets.get(stream.index, [])
            tb = float(stream.time_base)
            start = min(p.pts for p in got) * tb
            end = max((p.pts + (p.duration or 0)) for p in got) * tb
            if stream.type == "audio":
                audios.append(end - start)
                continue
            size = sum(p.size for p in got)
            keys = tuple(sorted(round(p.pts * tb - start, 3) for p in got if p.is_keyframe))
            cc = stream.codec_context
            videos.append(Stream(cc.width, cc.height, end - start, size * 8 / (end - start), keys))
    return videos, audios


def play(url: str, dest: Path) -> Path:
    """ffmpeg reads the playlist over HTTP and copies every stream it finds."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
           "-i", url, "-map", "0", "-c", "copy", "-f", "matroska", str(dest)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return dest


def check_renditions(played: Path, movie: Path, audio_tracks: int) -> list[Stream]:
    (source,), _ = video_streams(movie)
    frame = 1 / 25
    videos, audios = video_streams(played)
    assert [(s.height, s.width) for s in videos] == [
        (h, round(h * 16 / 9 / 2) * 2) for h, _ in LADDER
    ]
    for stream, (height, kbps) in zip(videos, LADDER, strict=True):
        assert abs(stream.duration - source.duration) <= frame + 1e-3, (height, stream.duration)
        assert abs(stream.bits_per_second / (kbps * 1000) - 1) <= BITRATE_TOLERANCE, (
            f"{height}p: {stream.bits_per_second / 1000:.0f} kbit/s for {kbps}"
        )
        # A keyframe at every segment boundary and nowhere else, in every rendition.
        assert stream.keyframes == (0.0, SEGMENT, 2 * SEGMENT), (height, stream.keyframes)
    assert len(audios) == audio_tracks
    assert all(abs(d - source.duration) <= 0.1 for d in audios), audios
    return videos


def submit(svc, preset: str) -> str:
    body = {"id_video": MOVIE, "preset": preset, "speed": "ultrafast", "reuse": False}
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()
    assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed", (
        svc.client.get(f"/jobs/{job_id}").json()["error"]
    )
    job = svc.client.get(f"/jobs/{job_id}").json()
    heights = [(r["height"], r["video_bitrate"]) for r in job["outputs"][0]["renditions"]]
    assert job["preset"] == preset and heights == LADDER
    assert job["bitrate"] == sum(kbps + 128 for _, kbps in LADDER)
    return job_id


def outputs(svc, job_id: str, kind: str) -> tuple[dict, str]:
    listing = svc.client.get(f"/jobs/{job_id}/outputs")
    assert listing.status_code == 200, listing.text
    body = listing.json()
    url = body["playlists"][kind]
    svc.played.append(urlsplit(url).path.split("/")[4])
    # The classic route leads to the same playlist.
    out = svc.client.get(f"/jobs/{job_id}/output", follow_redirects=False)
    assert out.status_code == 307
    assert urlsplit(out.headers["location"]).path.rsplit("/", 1)[1] == url.rsplit("/", 1)[1]
    # The typed client and `dacirco jobs outputs` list the same files and playlists.
    with Client(svc.url, token="streaming-token") as api:
        typed = api.outputs(job_id)
    assert sorted(typed.playlists) == [kind] and typed.folder == body["folder"]
    assert [f.name for f in typed.files] == [f["name"] for f in body["files"]]
    shown = CliRunner().invoke(
        jobs_app, ["outputs", job_id, "--url", svc.url, "--api-token", "streaming-token"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"{kind} playlist" in shown.output and body["files"][0]["name"] in shown.output
    # Every file is there, and each one's own URL gives its bytes.
    small = min(body["files"], key=lambda f: f["size"])
    assert len(httpx.get(small["url"], follow_redirects=True).content) == small["size"]
    return body, url


@pytest.fixture(scope="module", params=["local", "s3"])
def svc(request, ladder_catalog: Path, movie: Path, tmp_path_factory: pytest.TempPathFactory):
    """One service per storage for both ladders (its worker kept warm between them), with
    client tokens on: the play URLs must work without one."""
    s3 = None
    if request.param == "s3":
        from dacirco.catalog.service import add

        s3 = request.getfixturevalue("s3_catalog")
        add(s3_storage(s3), [movie])
    tmp = tmp_path_factory.mktemp(f"streaming-{request.param}")
    tokens = tmp / "tokens"
    tokens.write_text("streaming-token\n")
    service = start_service(ladder_catalog, tmp, "--api-token-file", str(tokens), s3=s3)
    service.client.headers["Authorization"] = "Bearer streaming-token"
    service.played = []  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        service.stop()
        # Neither a file's signed URL nor a play URL's signature (in its path) in any log.
        secrets = (*SIGNATURES, *service.played)  # type: ignore[attr-defined]
        assert not leaks(service, secrets), leaks(service, secrets)[:3]


def test_hls_ladder_plays_from_the_service(svc, movie, tmp_path):
    job_id = submit(svc, "hls-ladder")
    body, master_url = outputs(svc, job_id, "hls")
    names = {f["name"] for f in body["files"]}
    assert {"master.m3u8", "hls-0.m3u8", "hls-0-init.mp4", "hls-3-00002.m4s"} <= names

    # The playlists, read as a player does: no token, only the signed URL.
    assert httpx.get(master_url.replace("master.m3u8", "nope.m3u8")).status_code == 404
    assert httpx.get(re.sub(r"/[0-9a-f]{64}/", "/" + "0" * 64 + "/", master_url)).status_code == 403
    master = httpx.get(master_url)
    assert master.status_code == 200 and "mpegurl" in master.headers["content-type"]
    variants = [line for line in master.text.splitlines() if line.endswith(".m3u8")]
    assert len(variants) == len(LADDER)
    bounds = set()
    for variant in variants:
        text = httpx.get(urljoin(master_url, variant)).text
        lengths = [float(x) for x in re.findall(r"#EXTINF:([0-9.]+),", text)]
        bounds.add(tuple(round(sum(lengths[:i]), 3) for i in range(len(lengths))))
    assert bounds == {(0.0, SEGMENT, 2 * SEGMENT)}  # the same boundaries in every rendition

    played = play(master_url, tmp_path / "hls.mkv")
    check_renditions(played, movie, audio_tracks=len(LADDER))


def test_dash_ladder_plays_from_the_service(svc, movie, tmp_path):
    job_id = submit(svc, "dash-ladder")
    _, mpd_url = outputs(svc, job_id, "dash")

    mpd = httpx.get(mpd_url)
    assert mpd.status_code == 200 and mpd.headers["content-type"].startswith("application/dash")
    root = ET.fromstring(mpd.text)
    timelines = set()
    for rep in root.iter(f"{MPD}Representation"):
        if rep.get("mimeType") != "video/mp4":
            continue
        template = rep.find(f"{MPD}SegmentTemplate")
        assert template is not None
        scale = int(template.get("timescale", "1"))
        starts, t = [], 0
        for s in template.iter(f"{MPD}S"):
            t = int(s.get("t", t))
            for _ in range(int(s.get("r", "0")) + 1):
                starts.append(round(t / scale, 3))
                t += int(s.get("d", "0"))
        timelines.add(tuple(starts))
    assert timelines == {(0.0, SEGMENT, 2 * SEGMENT)}

    played = play(mpd_url, tmp_path / "dash.mkv")
    check_renditions(played, movie, audio_tracks=1)  # one AAC 128k representation for all
