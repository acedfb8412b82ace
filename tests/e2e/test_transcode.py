"""End to end: real `dacirco serve`, real worker processes, real ffmpeg, real SQLite."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import av
import pytest

pytestmark = pytest.mark.slow

CLASSIC = {"id_video": "bbb_5.mp4", "bitrate": 7000, "speed": "ultrafast"}


def probe(path: Path) -> tuple[str, float, int]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        duration = float(container.duration) / 1e6
        return video.codec_context.name, duration, int(video.bit_rate or 0)


def download_output(svc, job_id: str, dest: Path) -> Path:
    resp = svc.client.get(f"/jobs/{job_id}/output", follow_redirects=False)
    assert resp.status_code == 307, resp.text
    with svc.client.stream("GET", resp.headers["location"]) as stream:
        assert stream.status_code == 200
        with dest.open("wb") as out:
            for chunk in stream.iter_bytes():
                out.write(chunk)
    return dest


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_classic_request_is_really_transcoded(service_factory, tmp_path, storage):
    svc = service_factory(storage=storage)
    resp = svc.client.post("/jobs", json=CLASSIC)
    assert resp.status_code == 201
    job_id = resp.json()
    assert resp.headers["location"] == f"{svc.url}/jobs/{job_id}"
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"

    job = svc.client.get(f"/jobs/{job_id}").json()
    assert {"id_video": "bbb_5.mp4", "bitrate": 7000, "speed": "ultrafast"}.items() <= job.items()
    assert job["output"] and job["delay"] > 0 and job["error"] is None
    figures = job["figures"]
    assert figures["transcode"] > 0 and figures["queue"] >= figures["boot"] > 0
    # The service's default policy (adaptive) runs one-core workers.
    assert figures["flavor"] == "tiny" and figures["core_seconds"] > 0
    assert [a["state"] for a in figures["attempts"]] == ["Done"]

    out = download_output(svc, job_id, tmp_path / "out.mp4")
    codec, duration, bitrate = probe(out)
    _, in_duration, _ = probe(svc.data_dir / "videos" / "input-videos" / "bbb_5.mp4")
    assert codec == "h264"
    assert abs(duration - in_duration) <= 0.2
    assert abs(bitrate - 7_000_000) <= 0.2 * 7_000_000, f"video bitrate {bitrate} bit/s"


def test_event_log_has_the_classic_events_in_order(service_factory):
    svc = service_factory("--algorithm", "minimize-workers")
    job_id = svc.submit()
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    svc.wait_for(lambda: set(svc.worker_states().values()) == {"Stopped"}, what="worker stopped")
    svc.stop()

    events = svc.events()
    codes = [e["code"] for e in events]
    order = ["EV1", "EV2", "EV11", "EV3", "EV4", "EV5", "EV6", "EV7", "EV8"]
    assert [c for c in codes if c in order] == order
    required = {
        "EV1": {"request_id", "input_video", "bitrate", "speed"},
        "EV2": {"name", "worker_id"},
        "EV3": {"request_id", "worker_id", "task_id"},
        "EV7": {"request_id", "worker_id", "task_id"},
        "EV8": {"name", "worker_id"},
        "EV11": {"name", "worker_id", "node", "cpus", "memory"},
    }
    for event in events:
        assert {"time", "code", "description"} <= event.keys()
        assert required.get(event["code"], set()) <= event.keys()
    ev1 = events[codes.index("EV1")]
    assert (ev1["request_id"], ev1["input_video"], ev1["bitrate"]) == (job_id, "bbb_1.mp4", 1000)
    config = svc.event_log.with_name("tc-events-01.config.txt").read_text()
    assert "minimize-workers" in config


def test_minimize_workers_leaves_no_worker_running(service_factory):
    svc = service_factory("--algorithm", "minimize-workers")
    job_id = svc.submit()
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    svc.wait_for(lambda: set(svc.worker_states().values()) == {"Stopped"}, what="worker stopped")
    svc.wait_for(lambda: not svc.worker_pids(), what="worker process gone")


def test_grace_period_reuses_the_idle_worker_then_stops_it(service_factory):
    svc = service_factory("--algorithm", "grace-period", "--max-idle-time", "4")
    first = svc.submit(id_video="bbb_0.mp4")
    assert svc.wait_state(first, {"Completed", "Error"}) == "Completed"
    second = svc.submit(id_video="bbb_1.mp4")
    assert svc.wait_state(second, {"Completed", "Error"}) == "Completed"

    worker_of = [svc.client.get(f"/jobs/{j}").json()["worker_id"] for j in (first, second)]
    assert worker_of[0] == worker_of[1]
    assert list(svc.worker_states()) == [worker_of[0]]
    assert svc.worker_states()[worker_of[0]] == "Idle"
    svc.wait_for(
        lambda: svc.worker_states()[worker_of[0]] == "Stopped", timeout=20, what="grace expiry"
    )
    worker = svc.client.get(f"/workers/{worker_of[0]}").json()
    assert {"name", "id", "cpus", "memory", "node"} <= worker.keys()
    assert all(isinstance(worker[k], str) for k in ("name", "id", "cpus", "memory", "node"))


def test_ffmpeg_failure_puts_the_job_in_error_with_ffmpegs_message(service_factory):
    svc = service_factory("--max-idle-time", "1")
    broken = svc.data_dir / "videos" / "input-videos" / "broken.mp4"
    broken.write_bytes(b"this is not a movie at all" * 100)
    job_id = svc.submit(id_video="broken.mp4")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Error"
    job = svc.client.get(f"/jobs/{job_id}").json()
    assert "transcoding failed" in job["error"]
    assert "Invalid data" in job["error"] or "moov atom not found" in job["error"]
    ev9 = [e for e in svc.events() if e["code"] == "EV9"]
    assert len(ev9) == 1 and ev9[0]["error_message"]


def test_a_killed_worker_loses_no_job(service_factory):
    # The job whole (adaptive would split a typical one in two): its attempts are its own.
    svc = service_factory("--max-idle-time", "30", "--policy-knob", "max_chunks=1")
    job_id = svc.submit(id_video="bbb_5.mp4", speed="fast")
    svc.wait_for(
        lambda: svc.client.get(f"/jobs/{job_id}/state").json() == "Started" and svc.worker_pids(),
        what="job started",
    )
    for pid in svc.worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    job = svc.client.get(f"/jobs/{job_id}").json()
    assert job["attempts"] == 2
    codes = [e["code"] for e in svc.events()]
    assert "EV12" in codes and "EV14" in codes  # lost, then requeued


def test_an_accepted_job_survives_a_restart(service_factory, catalog_dir, tmp_path):
    svc = service_factory("--max-workers", "1")
    jobs = [svc.submit(id_video=f"bbb_{i}.mp4", speed="fast") for i in (4, 5, 3)]
    # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop too.
    assert svc.stop() in (0, -15)
    assert "EV8" in [e["code"] for e in svc.events()]  # its worker was stopped on the way out
    time.sleep(0.2)
    again = service_factory("--max-workers", "1")
    for job_id in jobs:
        assert again.wait_state(job_id, {"Completed", "Error"}, timeout=120) == "Completed"


def test_a_movie_added_by_the_user_is_transcoded_to_hevc(service_factory, tmp_path):
    from dacirco.catalog.service import add
    from dacirco.config import open_local_storage

    svc = service_factory("--max-idle-time", "1")
    own = tmp_path / "holiday.mp4"
    source = svc.data_dir / "videos" / "input-videos" / "bbb_0.mp4"
    own.write_bytes(source.read_bytes())
    assert (
        svc.client.post("/jobs", json={**CLASSIC, "id_video": "my-holiday.mp4"}).status_code == 422
    )
    add(open_local_storage(svc.data_dir), [own], name="my-holiday.mp4")

    job_id = svc.submit(id_video="my-holiday.mp4", bitrate=1500, codec="hevc")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    codec, duration, bitrate = probe(download_output(svc, job_id, tmp_path / "out.mp4"))
    _, in_duration, _ = probe(source)
    assert codec == "hevc"
    assert abs(duration - in_duration) <= 0.2
    assert abs(bitrate - 1_500_000) <= 0.2 * 1_500_000, f"video bitrate {bitrate} bit/s"


def test_a_stored_playlist_fails_its_job_without_reading_what_it_names(service_factory, bait):
    """Put in the storage behind the catalog's back, an HLS playlist naming a local file fails
    its job at once, naming its format; the worker's ffmpeg never opens the file."""
    from tests.conftest import hls_playlist

    svc = service_factory("--max-idle-time", "1")
    hls_playlist(svc.data_dir / "videos" / "input-videos" / "evil.m3u8", bait.path)
    job_id = svc.submit(id_video="evil.m3u8")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Error"
    job = svc.client.get(f"/jobs/{job_id}").json()
    assert "container format 'hls' refused" in job["error"]
    assert job["attempts"] == 1  # no retry: another worker would refuse it alike
    assert not bait.was_read()


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_movie_named_at_the_length_limit_is_transcoded(
    service_factory, tmp_path, storage, request
):
    """The longest name accepted makes the longest output name (the highest bitrate, the
    longest preset, no extension to drop): it is stored, transcoded, uploaded and served."""
    from dacirco.catalog.service import add
    from dacirco.config import open_local_storage
    from dacirco.domain import MAX_BITRATE_KBPS, MAX_MOVIE_NAME, MAX_OBJECT_NAME
    from tests.conftest import s3_storage

    svc = service_factory("--max-idle-time", "1", storage=storage)
    # The data dir holds the local catalog in both cases (S3 has its own copy).
    source = svc.data_dir / "videos" / "input-videos" / "bbb_0.mp4"
    if storage == "local":
        catalog = open_local_storage(svc.data_dir)
    else:
        catalog = s3_storage(request.getfixturevalue("s3_catalog"))
    name = "n" * MAX_MOVIE_NAME
    add(catalog, [source], name=name)
    too_long = svc.client.post("/jobs", json={**CLASSIC, "id_video": name + "x"})
    assert too_long.status_code == 422 and f"at most {MAX_MOVIE_NAME}" in too_long.text

    job_id = svc.submit(id_video=name, bitrate=MAX_BITRATE_KBPS)
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    job = svc.client.get(f"/jobs/{job_id}").json()
    assert len(job["output"]) == MAX_OBJECT_NAME
    codec, duration, _ = probe(download_output(svc, job_id, tmp_path / "out.mp4"))
    _, in_duration, _ = probe(source)
    assert codec == "h264" and abs(duration - in_duration) <= 0.2
