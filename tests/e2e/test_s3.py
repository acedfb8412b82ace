"""S3 storage in bad conditions: a real SeaweedFS, real presigned URLs, real workers."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.conftest import (
    free_port,
    s3_args,
    s3_storage,
    start_service,
    start_weed,
    upload_catalog,
)

pytestmark = pytest.mark.slow


def _serve_once(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve",
        "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
        "--event-log-file", str(tmp_path / "events.txt"), *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_wrong_credentials_stop_the_start_in_one_line(s3_server, tmp_path, monkeypatch):
    args = s3_args(s3_server)
    at = args.index("--minio-secret-key")
    del args[at : at + 2]
    # By the environment, as a secret should be: on the command line it would earn a warning.
    monkeypatch.setenv("DACIRCO_S3_SECRET_KEY", "not-the-secret")
    done = _serve_once(tmp_path, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "storage: S3 refused the credentials for access key 'minio'" in lines[0]


def test_unreachable_s3_stops_the_start_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    done = _serve_once(tmp_path, "--storage", "s3", "--minio-port", str(port))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"storage: cannot reach S3 at 127.0.0.1:{port}" in lines[0]


def test_s3_down_at_submission_answers_503_and_creates_nothing(catalog_dir, tmp_path):
    weed = start_weed(tmp_path / "weed")
    svc = None
    try:
        upload_catalog(catalog_dir, weed)
        svc = start_service(catalog_dir, tmp_path, s3=weed)
        before = svc.client.get("/jobs").json()
        weed.stop()
        body = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "ultrafast"}
        resp = svc.client.post("/jobs", json=body)
        assert resp.status_code == 503, resp.text
        assert "storage" in resp.text and "cannot reach S3" in resp.text
        assert svc.client.get("/jobs").json() == before
        assert "EV1" not in [e["code"] for e in svc.events()]
    finally:
        if svc is not None:
            svc.stop()
        weed.stop()


def test_a_movie_deleted_after_submission_fails_the_job_naming_it(service_factory, s3_catalog):
    svc = service_factory("--max-workers", "1", storage="s3")
    storage = s3_storage(s3_catalog)
    name = f"gone-{uuid.uuid4().hex[:8]}.mp4"
    source = svc.data_dir / "videos" / "input-videos" / "bbb_0.mp4"
    storage.put_file(f"input-videos/{name}", source)
    busy = svc.submit(id_video="bbb_5.mp4", speed="fast")  # holds the only worker
    job_id = svc.submit(id_video=name)
    storage.delete(f"input-videos/{name}")
    assert svc.wait_state(busy, {"Completed", "Error"}) == "Completed"
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Error"
    error = svc.client.get(f"/jobs/{job_id}").json()["error"]
    assert f"movie {name!r} is no longer in the catalog" in error


def test_s3_gone_during_a_job_is_retried_then_the_job_fails(catalog_dir, tmp_path, monkeypatch):
    # Fewer tries per transfer than the default 8 (~20 s each): S3 stays down here anyway.
    monkeypatch.setenv("DACIRCO_STORAGE_ATTEMPTS", "3")
    weed = start_weed(tmp_path / "weed")
    svc = None
    try:
        upload_catalog(catalog_dir, weed)
        # The job whole (adaptive would split a typical one in two): one task, its 3 tries.
        svc = start_service(catalog_dir, tmp_path, "--policy-knob", "max_chunks=1", s3=weed)
        job_id = svc.submit(id_video="bbb_5.mp4", speed="fast")
        svc.wait_for(
            lambda: svc.client.get(f"/jobs/{job_id}/state").json() == "Started",
            what="job started",
        )
        weed.stop()  # the upload (or the download) meets a dead S3
        assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=120) == "Error"
        job = svc.client.get(f"/jobs/{job_id}").json()
        assert "gave up after 3 attempts" in job["error"]
        assert "storage error" in job["error"]
        ev10 = [e for e in svc.events() if e["code"] == "EV10"]
        assert len(ev10) == 3 and all("failed" in e["error_message"] for e in ev10)
    finally:
        if svc is not None:
            svc.stop()
        weed.stop()


def _dacirco(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dacirco.cli", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_catalog_add_and_list_on_s3(s3_catalog, catalog_dir, tmp_path):
    source = catalog_dir / "videos" / "input-videos" / "bbb_0.mp4"
    name = f"own-{uuid.uuid4().hex[:8]}.mp4"
    args = s3_args(s3_catalog)
    added = _dacirco("catalog", "add", str(source), "--name", name, *args, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    listed = _dacirco("catalog", "list", *args, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "s3://videos" in listed.stdout
    assert "bbb_5.mp4" in listed.stdout and name[:10] in listed.stdout
    wrong = args[:]
    wrong[wrong.index("--minio-secret-key") + 1] = "nope"
    refused = _dacirco("catalog", "list", *wrong, cwd=tmp_path)
    assert refused.returncode == 1
    assert "S3 refused the credentials for access key 'minio'" in refused.stderr


def test_storage_serve_answers_keeps_data_across_restarts_and_stops_on_ctrl_c(tmp_path):
    import signal
    import time

    import psutil

    from dacirco.storage.s3 import S3Config, S3Storage

    port = free_port()
    source = tmp_path / "movie.mp4"
    source.write_bytes(b"not really a movie" * 1000)
    for round_ in range(2):
        cmd = [
            sys.executable, "-m", "dacirco.cli", "storage", "serve",
            "--data-dir", str(tmp_path / "data"), "--port", str(port),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()  # printed once S3 answers
            assert f"S3 listening on http://127.0.0.1:{port}" in line, proc.stderr.read()
            children = psutil.Process(proc.pid).children(recursive=True)
            storage = S3Storage(S3Config(port=port))
            storage.check()
            if round_ == 0:
                storage.put_file("input-videos/kept.mp4", source, {"duration": "1.0"})
            info = storage.stat("input-videos/kept.mp4")
            assert info is not None and info.size == source.stat().st_size
            assert info.metadata == {"duration": "1.0"}
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive
        time.sleep(0.2)
