"""A ladder split in parts end to end: the policy splits a streaming job, real workers encode
its groups of renditions at once (each decoding the input), one packages the master
playlist (or the MPD) from theirs, and ffmpeg plays it over HTTP from the service, on local
storage and on SeaweedFS. The controller and API run in this process (so the test can give
the policy its knobs); the workers are real processes running real ffmpeg."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dacirco.api.thread_server import free_port, serve_in_thread
from dacirco.policies.right_size import RightSize
from dacirco.service import build
from dacirco.service_config import ServiceConfig
from dacirco.storage.options import S3Config
from tests.conftest import s3_storage
from tests.e2e.test_split_jobs import wait_done
from tests.e2e.test_streaming import (  # noqa: F401 (fixtures)
    LADDER,
    MOVIE,
    SEGMENT,
    check_renditions,
    ladder_catalog,
    movie,
    play,
)

pytestmark = pytest.mark.slow

PARTS = 3  # the 720p ladder is worth three parts: 720p | 540p (+ thumbnails) | 432p + 360p


@contextlib.contextmanager
def service(data: Path, tmp: Path, s3: S3Config | None) -> Iterator[tuple[httpx.Client, Path]]:
    port = free_port()
    log = tmp / "tc-events-01.txt"
    storage = {"storage": "s3", "s3": s3} if s3 is not None else {}
    options = ServiceConfig.of(
        port=port, data_dir=data, event_log_file=log, max_workers=4, local_cpus=4,
        call_interval=0.2, algorithm="right-size", sample_interval=0, **storage,
    )  # fmt: skip
    policy = RightSize(split_work=0.1, max_chunks=4)  # every job split, as far as it is worth
    app, _ = build(options, policy)
    with serve_in_thread(app, port) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, log


def events(log: Path, job_id: str) -> list[dict]:
    found = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in found if e.get("request_id") == job_id or e.get("code") == "EV3"]


@contextlib.contextmanager
def open_service(
    request: pytest.FixtureRequest, catalog: Path, source: Path, tmp_path: Path
) -> Iterator[tuple[httpx.Client, Path]]:
    """The service on a copy of ``catalog``, its storage local or (``request.param`` "s3")
    the session's SeaweedFS with ``source`` added."""
    data = tmp_path / "data"
    shutil.copytree(catalog, data)
    s3 = None
    if request.param == "s3":
        from dacirco.catalog.service import add

        server = request.getfixturevalue("s3_catalog")
        add(s3_storage(server), [source])
        host, port = server.endpoint.rsplit(":", 1)
        s3 = S3Config(host, int(port), server.access_key, server.secret_key)
    with service(data, tmp_path, s3) as found:
        yield found


@pytest.fixture(params=["local", "s3"])
def svc(request, ladder_catalog: Path, movie: Path, tmp_path: Path):  # noqa: F811
    with open_service(request, ladder_catalog, movie, tmp_path) as found:
        yield found


def run(client: httpx.Client, log: Path, body: dict) -> tuple[dict, dict, list[dict]]:
    job_id = client.post("/jobs", json=body).raise_for_status().json()
    job = wait_done(client, job_id, timeout=300)
    assert job["state"] == "Completed", job.get("error")
    listing = client.get(f"/jobs/{job_id}/outputs").raise_for_status().json()
    return job, listing, events(log, job_id)


def test_an_hls_ladder_in_parts_plays_as_one(svc, movie, tmp_path) -> None:  # noqa: F811
    client, log = svc
    body = {"id_video": MOVIE, "preset": "hls-ladder", "speed": "ultrafast", "reuse": False,
            "quality": True, "thumbnails": {"every": 5}}  # fmt: skip
    job, listing, seen = run(client, log, body)
    (split,) = [e for e in seen if e["code"] == "EV15"]
    assert int(split["chunks"]) == PARTS
    # Its parts ran on several workers, each uploading its own files (EV16), then one
    # worker packaged the playlist (EV7).
    assert len([e for e in seen if e["code"] == "EV16"]) == PARTS
    workers = {e["worker_id"] for e in seen if e["code"] == "EV16"}
    assert len(workers) >= 2
    assert [e["code"] for e in seen if e["code"] in ("EV7", "EV13")] == ["EV7"]

    names = {f["name"] for f in listing["files"]}
    assert {"master.m3u8", "hls-0.m3u8", "hls-3-00002.m4s", "poster.jpg", "thumbnails.vtt"} <= names
    assert not [n for n in names if n.startswith("master-p")]  # the parts' playlists went
    master = httpx.get(listing["playlists"]["hls"])
    assert master.status_code == 200
    assert [x for x in master.text.splitlines() if x.endswith(".m3u8")] == [
        f"hls-{i}.m3u8" for i in range(len(LADDER))
    ]
    played = play(listing["playlists"]["hls"], tmp_path / "hls.mkv")
    check_renditions(played, movie, audio_tracks=len(LADDER))

    # Every rendition's quality, measured by the part that made it, kept with the job.
    figures = job["quality_figures"]["renditions"]
    assert [(r["rendition"], r["height"]) for r in figures] == [
        (i + 1, h) for i, (h, _) in enumerate(LADDER)
    ]
    assert all(0 < r["vmaf"] <= 100 for r in figures)
    assert len([e for e in seen if e["code"] == "EV21"]) == len(LADDER)
    # What each part made, in the job's figures and on its dashboard page.
    made = [a["renditions"] for a in job["figures"]["attempts"] if a["part"] == "chunk"]
    assert sorted(map(tuple, made)) == [
        ("hls 432p", "hls 360p"), ("hls 540p", "thumbnails"), ("hls 720p",)
    ]  # fmt: skip
    page = client.get(f"/ui/jobs/{job['id']}")
    assert page.status_code == 200 and "part 1: hls 720p" in page.text
    assert "packaging" in page.text


def test_a_dash_ladder_in_parts_plays_as_one(svc, movie, tmp_path) -> None:  # noqa: F811
    client, log = svc
    body = {"id_video": MOVIE, "preset": "dash-ladder", "speed": "ultrafast", "reuse": False}
    _, listing, seen = run(client, log, body)
    (split,) = [e for e in seen if e["code"] == "EV15"]
    assert int(split["chunks"]) == PARTS
    names = {f["name"] for f in listing["files"]}
    assert "manifest.mpd" in names and not [n for n in names if n.startswith("manifest-p")]
    assert len({n.split("-")[1] for n in names if n.startswith("dash-p")}) == PARTS
    played = play(listing["playlists"]["dash"], tmp_path / "dash.mkv")
    videos = check_renditions(played, movie, audio_tracks=1)  # one AAC 128k for all
    assert all(s.keyframes == (0.0, SEGMENT, 2 * SEGMENT) for s in videos)
