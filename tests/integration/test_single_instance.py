"""One DaCirco per data dir and per port: a second `dacirco serve` fails at once, in one line,
before touching anything of the one already running (its SQLite, event log and workers)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import Service, free_port, start_service

pytestmark = pytest.mark.slow

LOST = {"EV8", "EV12", "EV14"}  # what a second instance's recovery would write


def _second_serve(cwd: Path, *args: str) -> tuple[int, list[str], float]:
    """Run another `dacirco serve`; its exit code, its stderr lines and how long it took."""
    cmd = [sys.executable, "-m", "dacirco.cli", "serve", "--call-interval", "0.2", *args]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.communicate(timeout=30)
        raise AssertionError("the second `dacirco serve` kept running") from None
    return proc.returncode, err.decode().splitlines(), time.monotonic() - began


@pytest.fixture
def first(catalog_dir, tmp_path):
    # grace-period keeps the idle worker for its whole grace: it is there to be harmed.
    svc = start_service(
        catalog_dir, tmp_path, "--algorithm", "grace-period", "--max-workers", "1",
        "--max-idle-time", "600",
    )  # fmt: skip
    yield svc
    svc.stop()


def _one_done_job_and_an_idle_worker(svc: Service) -> tuple[str, list[int]]:
    job_id = svc.submit(id_video="bbb_0.mp4")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    worker_id = svc.client.get(f"/jobs/{job_id}").json()["worker_id"]
    svc.wait_for(lambda: svc.worker_states() == {worker_id: "Idle"}, what="an idle worker")
    return worker_id, svc.worker_pids()


def test_a_second_serve_on_the_same_data_dir_or_port_fails_fast_and_harms_nothing(first, tmp_path):
    worker_id, pids = _one_done_job_and_an_idle_worker(first)
    events_before = first.event_log.read_text()
    config = first.event_log.with_name(first.event_log.stem + ".config.txt")
    config_before = config.read_bytes()
    port = int(first.url.rsplit(":", 1)[1])

    # Same data dir (and the same event log file), another port.
    code, err, took = _second_serve(
        tmp_path,
        "--port", str(free_port()),
        "--data-dir", str(first.data_dir),
        "--event-log-file", str(first.event_log),
    )  # fmt: skip
    assert code == 2, err
    assert err == [
        f"error: data dir {first.data_dir} is in use by another DaCirco (pid {first.proc.pid})"
    ]
    assert took < 15

    # Same port, another data dir: refused before that data dir is even made.
    other = tmp_path / "other-data"
    code, err, took = _second_serve(
        tmp_path,
        "--port", str(port),
        "--data-dir", str(other),
        "--event-log-file", str(first.event_log),
    )  # fmt: skip
    assert code == 2, err
    assert err == [f"error: port {port} on 127.0.0.1 is already in use"]
    assert took < 15
    assert not other.exists()

    # The first one goes on as if nothing happened: same worker, same state, same logs.
    assert config.read_bytes() == config_before
    assert first.event_log.read_text().startswith(events_before)
    assert not [e for e in first.events() if e["code"] in LOST]
    assert (first.data_dir / ".lock").read_text().strip() == str(first.proc.pid)
    assert first.worker_states() == {worker_id: "Idle"}
    assert first.worker_pids() == pids and all(psutil.pid_exists(p) for p in pids)
    job_id = first.submit(id_video="bbb_1.mp4")
    assert first.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    assert first.client.get(f"/jobs/{job_id}").json()["worker_id"] == worker_id
    assert first.client.get(f"/workers/{worker_id}").json()["jobs_done"] == 2
    assert not [e for e in first.events() if e["code"] in LOST]


def test_the_data_dir_is_free_again_once_the_first_has_stopped(first, catalog_dir, tmp_path):
    first.stop()
    assert (first.data_dir / ".lock").exists()  # left behind, but no longer locked
    stale = first.data_dir / "work" / "worker-of-a-crashed-run" / "dacirco-t1-x"
    stale.mkdir(parents=True)
    (stale / "input.mp4").write_bytes(b"x" * 1000)
    again = start_service(catalog_dir, tmp_path)
    try:
        assert again.client.get("/health").status_code == 200
        assert (again.data_dir / ".lock").read_text().strip() == str(again.proc.pid)
        assert not stale.parent.exists()  # the data dir is its alone: leftovers go
    finally:
        again.stop()
