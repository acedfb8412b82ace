"""Output reuse, for real: `dacirco serve`, real workers and ffmpeg, identical requests."""

from __future__ import annotations

import pytest

from dacirco.analytics.figures import figures
from dacirco.analytics.run import from_log
from tests.conftest import start_service
from tests.e2e.test_transcode import download_output, probe

pytestmark = pytest.mark.slow

# A classic body: no "reuse" field, as a classic client sends it.
CLASSIC = {"id_video": "bbb_2.mp4", "bitrate": 1200, "speed": "ultrafast"}


def post(svc, body: dict) -> str:  # type: ignore[no-untyped-def]
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_identical_requests_share_one_transcode_and_are_counted_apart(service_factory, tmp_path):
    svc = service_factory("--max-workers", "1", "--algorithm", "grace-period")
    leader = post(svc, CLASSIC)
    attached = post(svc, CLASSIC)  # while the first is in progress: it waits for its output
    own = post(svc, {**CLASSIC, "reuse": False})  # opted out: transcoded again
    job = svc.client.get(f"/jobs/{attached}").json()
    assert (job["reused_from"], job["state"]) == (leader, "Waiting")
    for job_id in (leader, attached, own):
        assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=120) == "Completed"

    jobs = {j: svc.client.get(f"/jobs/{j}").json() for j in (leader, attached, own)}
    assert jobs[attached]["output"] == jobs[leader]["output"] != jobs[own]["output"]
    assert jobs[attached]["figures"]["attempts"] == [] and jobs[attached]["worker_id"] is None
    assert jobs[attached]["timings"]["reused"] and jobs[attached]["delay"] > 0
    assert jobs[own]["reused_from"] is None and jobs[own]["figures"]["attempts"]

    # Its output is the leader's file: the right codec, duration and bitrate.
    out = download_output(svc, attached, tmp_path / "attached.mp4")
    first = download_output(svc, leader, tmp_path / "leader.mp4")
    assert out.read_bytes() == first.read_bytes()
    codec, duration, bitrate = probe(out)
    _, in_duration, _ = probe(svc.data_dir / "videos" / "input-videos" / "bbb_2.mp4")
    assert codec == "h264" and abs(duration - in_duration) <= 0.2
    assert abs(bitrate - 1_200_000) <= 0.25 * 1_200_000, f"video bitrate {bitrate} bit/s"

    # Now completed: an identical request is Completed when its 201 comes back.
    later = post(svc, CLASSIC)
    job = svc.client.get(f"/jobs/{later}").json()
    assert (job["state"], job["reused_from"], job["output"]) == (
        "Completed",
        leader,
        jobs[leader]["output"],
    )
    assert job["delay"] < 1.0
    # Anything different is a new job.
    other = post(svc, {**CLASSIC, "bitrate": 1300})
    assert svc.client.get(f"/jobs/{other}").json()["reused_from"] is None
    assert svc.wait_state(other, {"Completed", "Error"}, timeout=120) == "Completed"
    # Bad input names the field.
    bad = svc.client.post("/jobs", json={**CLASSIC, "reuse": "maybe"})
    assert bad.status_code == 422 and "reuse" in bad.json()["message"]
    svc.stop()

    events = svc.events()
    assigned = [e["request_id"] for e in events if e["code"] == "EV3"]
    assert sorted(assigned) == sorted([leader, own, other])  # three transcodes for five jobs
    assert [(e["request_id"], e["source"]) for e in events if e["code"] == "EV18"] == [
        (attached, leader)
    ]
    reused = {e["request_id"]: e["source"] for e in events if e["code"] == "EV19"}
    assert reused == {attached: leader, later: leader}
    # The report counts them apart: the scheduler's figures are the three transcodes'.
    f = figures(from_log(svc.event_log))
    assert (f.jobs, f.completed, f.reused) == (5, 3, 2)
    assert f.delay.n == 3


def test_an_attached_request_survives_a_controller_kill(catalog_dir, tmp_path):
    svc = start_service(catalog_dir, tmp_path, "--max-workers", "1")
    try:
        body = {"id_video": "bbb_5.mp4", "bitrate": 900, "speed": "fast"}
        leader = post(svc, body)
        attached = post(svc, body)
        svc.wait_for(
            lambda: svc.client.get(f"/jobs/{attached}/state").json() == "Started",
            timeout=60,
            what="the leader (and its attached request) started",
        )
        svc.proc.kill()  # SIGKILL: nothing cleaned up
        svc.proc.wait()
        svc = start_service(catalog_dir, tmp_path, "--max-workers", "1")
        for job_id in (leader, attached):
            assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=150) == "Completed"
        a, b = (svc.client.get(f"/jobs/{j}").json() for j in (leader, attached))
        assert b["reused_from"] == leader and b["output"] == a["output"]
        assert a["attempts"] >= 1 and b["attempts"] == 0
    finally:
        svc.stop()
