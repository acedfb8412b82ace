"""End to end: a job split by the policy, its chunks encoded by several real workers and
merged by one; a chunk whose worker is killed is retried alone. The real controller and API
run in this process (so the test can give the policy its knobs), the workers are real
processes running real ffmpeg."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import psutil
import pytest

from dacirco.api.thread_server import free_port, serve_in_thread
from dacirco.policies.right_size import RightSize
from dacirco.service import build
from dacirco.service_config import ServiceConfig

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def service(catalog: Path, tmp: Path, policy: RightSize) -> Iterator[tuple[httpx.Client, Path]]:
    data = tmp / "data"
    shutil.copytree(catalog, data)
    port = free_port()
    log = tmp / "tc-events-01.txt"
    options = ServiceConfig.of(
        port=port, data_dir=data, event_log_file=log, max_workers=4, local_cpus=4,
        call_interval=0.2, algorithm="right-size", sample_interval=0,
    )  # fmt: skip
    app, _ = build(options, policy)
    with serve_in_thread(app, port) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, log


def wait_done(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("Completed", "Error"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def frames_and_durations(path: Path) -> tuple[int, float, float]:
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return frames, float(v.duration * v.time_base), float(a.duration * a.time_base)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_a_split_job_is_encoded_in_chunks_then_merged(catalog_dir: Path, tmp_path: Path) -> None:
    policy = RightSize(split_work=0.1, max_chunks=3)  # every job is split, in 3 chunks
    with service(catalog_dir, tmp_path, policy) as (client, log):
        body = {"id_video": "bbb_5.mp4", "bitrate": 1500, "speed": "ultrafast", "quality": True}
        job_id = client.post("/jobs", json=body).raise_for_status().json()
        job = wait_done(client, job_id)
        assert job["state"] == "Completed", job.get("error")
    # Its quality is measured once, on the merged output, by the merge's worker.
    (measured,) = job["quality_figures"]["renditions"]
    assert measured["output"] == "mp4" and measured["video_bitrate"] == 1500
    assert 0 < measured["vmaf"] <= 100 and measured["frames"] >= 1
    out = tmp_path / "data" / "videos" / "output-videos" / job["output"]
    source = tmp_path / "data" / "videos" / "input-videos" / "bbb_5.mp4"
    got, want = frames_and_durations(out), frames_and_durations(source)
    assert got[0] == want[0]  # every frame, once
    assert abs(got[1] - want[1]) < 0.05 and abs(got[2] - want[2]) < 0.05
    evs = [e for e in events(log) if e.get("request_id") == job_id]
    codes = [e["code"] for e in evs]
    assert codes.count("EV15") == 1 and codes.count("EV16") == 3 and codes.count("EV7") == 1
    assert codes.count("EV3") == 4  # three chunks and the merge
    (quality,) = [e for e in evs if e["code"] == "EV21"]
    assert quality["task_id"] == job["figures"]["attempts"][-1]["task_id"]  # the merge's
    assert [a["part"] for a in job["figures"]["attempts"]][-1] == "merge"
    assert not list(out.parent.glob("_chunk-*"))  # the chunks are gone once merged


def test_a_lost_chunk_is_retried_alone(catalog_dir: Path, tmp_path: Path) -> None:
    policy = RightSize(split_work=0.1, max_chunks=2)
    with service(catalog_dir, tmp_path, policy) as (client, log):
        body = {"id_video": "bbb_5.mp4", "bitrate": 1500, "speed": "fast"}
        job_id = client.post("/jobs", json=body).raise_for_status().json()
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and time.monotonic() < deadline:
            for e in events(log):
                if e["code"] == "EV4" and e.get("request_id") == job_id:
                    killed = e["worker_id"]
                    break
            time.sleep(0.1)
        assert killed is not None, "no chunk started"
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):  # one may end (a zombie) meanwhile
                if killed in " ".join(proc.cmdline()):
                    proc.kill()
        job = wait_done(client, job_id, timeout=180)
        assert job["state"] == "Completed", job.get("error")
    evs = [e for e in events(log) if e.get("request_id") == job_id]
    codes = [e["code"] for e in evs]
    assert (
        codes.count("EV14") == 1
        and "chunk" in next(e for e in evs if e["code"] == "EV14")["reason"]
    )
    assert codes.count("EV16") == 2 and codes.count("EV7") == 1
    assert codes.count("EV3") == 4  # two chunks, one of them again, and the merge
