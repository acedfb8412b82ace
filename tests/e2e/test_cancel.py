"""Cancel, for real: `dacirco serve`, a worker running ffmpeg, `DELETE /jobs/{id}`."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.conftest import start_service

pytestmark = pytest.mark.slow

LONG = {"id_video": "long.mp4", "bitrate": 1500, "speed": "fast"}


def ffmpegs(svc) -> list[psutil.Process]:  # type: ignore[no-untyped-def]
    found = []
    for pid in svc.worker_pids():
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        found += [c for c in children if "ffmpeg" in c.name()]
    return found


def test_a_running_job_is_canceled_its_ffmpeg_stopped_and_its_worker_reused(long_catalog, tmp_path):
    # grace-period keeps the canceled job's worker idle for the next one.
    svc = start_service(
        long_catalog, tmp_path, "--algorithm", "grace-period", "--max-idle-time", "120"
    )
    try:
        job_id = svc.submit(**LONG)
        svc.wait_for(
            lambda: svc.client.get(f"/jobs/{job_id}").json()["progress"] > 0.02,
            timeout=120,
            what="ffmpeg under way",
        )
        (ffmpeg,) = ffmpegs(svc)
        (worker_id,) = svc.client.get("/workers").json()["items"]

        resp = svc.client.delete(f"/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["id"], body["state"]) == (job_id, "Canceled")
        assert body["timings"]["canceled"] is not None
        (attempt,) = body["figures"]["attempts"]
        assert (attempt["state"], attempt["reason"]) == ("Canceled", "canceled by the client")
        assert attempt["worker_id"] == worker_id and attempt["core_seconds"] > 0

        ffmpeg.wait(timeout=30)  # killed, not left to finish
        svc.wait_for(
            lambda: svc.worker_states() == {worker_id: "Idle"}, what="the worker idle again"
        )
        assert svc.client.get(f"/jobs/{job_id}/state").json() == "Canceled"
        # Twice: the same answer; its output: none.
        again = svc.client.delete(f"/jobs/{job_id}")
        assert (again.status_code, again.json()["state"]) == (200, "Canceled")
        out = svc.client.get(f"/jobs/{job_id}/output", follow_redirects=False)
        assert out.status_code == 409 and "is Canceled: no output" in out.json()["message"]

        # The same worker serves the next job: it was not killed and rebooted.
        next_id = svc.submit()
        assert svc.wait_state(next_id, {"Completed", "Error"}) == "Completed"
        assert svc.client.get("/workers").json()["items"] == [worker_id]
        assert svc.client.get(f"/jobs/{next_id}").json()["worker_id"] == worker_id

        # A finished job cannot be canceled; an unknown one is not found.
        late = svc.client.delete(f"/jobs/{next_id}")
        assert late.status_code == 409
        assert "is Completed: its output is ready" in late.json()["message"]
        assert svc.client.delete("/jobs/nope").status_code == 404
    finally:
        svc.stop()
    codes = [e["code"] for e in svc.events()]
    assert codes.count("EV17") == 1 and codes.count("EV2") == 1
    folder = svc.data_dir / "videos" / "output-videos"
    assert [p.name for p in folder.glob("bbb_1-*")]  # the next job's output is there ...
    assert list(folder.glob("long-*")) == []  # nothing of the canceled job is left


def test_a_cancel_answered_before_a_crash_is_honoured_after_it(long_catalog, tmp_path):
    svc = start_service(long_catalog, tmp_path, "--max-workers", "1")
    job_ids = [svc.submit(**LONG) for _ in range(3)]
    svc.wait_state(job_ids[0], {"Started"})
    for job_id in job_ids[:2]:  # a running one and a waiting one
        assert svc.client.delete(f"/jobs/{job_id}").status_code == 200
    os.kill(svc.proc.pid, signal.SIGKILL)
    svc.proc.wait(timeout=30)
    time.sleep(0.5)
    port = int(svc.url.rsplit(":", 1)[1])
    again = start_service(long_catalog, tmp_path, "--max-workers", "1", port=port)
    try:
        states = [again.client.get(f"/jobs/{j}/state").json() for j in job_ids]
        assert states[:2] == ["Canceled", "Canceled"]
        assert states[2] in ("Waiting", "Started")
        assert again.client.delete(f"/jobs/{job_ids[2]}").status_code == 200
    finally:
        again.stop()
