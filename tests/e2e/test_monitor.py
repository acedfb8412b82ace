"""`dacirco monitor` against a real service: one snapshot, an unreachable server, the live loop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import typer
from typer.testing import CliRunner

from dacirco.monitor import monitor
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def monitor_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(monitor)
    return app


def test_once_shows_jobs_workers_and_counts(service_factory):
    # grace-period: the second job reuses the first one's worker, which then stays idle.
    svc = service_factory("--algorithm", "grace-period", "--max-idle-time", "30")
    job_ids = [svc.submit(id_video="bbb_0.mp4") for _ in range(2)]
    for job_id in job_ids:
        assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"
    workers = svc.worker_states()
    assert list(workers.values()) == ["Idle"], workers
    (worker_id,) = workers
    name = svc.client.get(f"/workers/{worker_id}").json()["name"]
    port = svc.url.rsplit(":", 1)[1]

    result = CliRunner().invoke(monitor_app(), ["--port", port, "--once"])

    assert result.exit_code == 0, result.output
    out = result.output
    assert svc.url in out
    for job_id in job_ids:
        assert job_id[:8] in out and job_id not in out
    worker_line = next(line for line in out.splitlines() if name in line)
    assert worker_id[:8] in worker_line and "Idle" in worker_line
    assert "jobs: 2 total · Waiting 0 · Started 0 · Completed 2 · Error 0" in out
    assert "workers: Booting 0 · Idle 1 · Busy 0 · Stopped 0" in out
    # --limit keeps the newest job only, and still counts both.
    result = CliRunner().invoke(monitor_app(), ["-t", "127.0.0.1", "-p", port, "--once",
                                                "--limit", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert job_ids[1][:8] in result.output and job_ids[0][:8] not in result.output
    assert "Jobs (newest 1 of 2)" in result.output


def test_once_with_an_unreachable_server_exits_1():
    port = free_port()
    result = CliRunner().invoke(monitor_app(), ["--port", str(port), "--once"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach http://127.0.0.1:{port}")
    assert "Traceback" not in result.output


def _run_live(port: int, seconds: float) -> subprocess.CompletedProcess[str]:
    code = "import typer; from dacirco.monitor import monitor; typer.run(monitor)"
    args = ["--port", str(port), "--refresh-interval", "0.2"]
    # Its imports first, alone: on a busy machine with cold caches they alone may take longer
    # than ``seconds``, and a Ctrl-C during the imports is not what is tested here.
    subprocess.run([sys.executable, "-c", "import typer, dacirco.monitor"], check=True, timeout=120)
    # Started with SIGINT ignored, as a shell starts a command in its background: Ctrl-C
    # must stop it all the same.
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(seconds)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running 60 s after Ctrl-C; stderr: {err[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_live_loop_stops_cleanly_on_ctrl_c(service_factory):
    svc = service_factory("--max-idle-time", "30")
    job_id = svc.submit(id_video="bbb_0.mp4")
    assert svc.wait_state(job_id, {"Completed", "Error"}) == "Completed"

    done = _run_live(int(svc.url.rsplit(":", 1)[1]), 3.0)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Aborted" not in done.stderr, done.stderr
    assert job_id[:8] in done.stdout and "Completed 1" in done.stdout


def test_live_loop_keeps_retrying_an_unreachable_server():
    port = free_port()
    done = _run_live(port, 2.0)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"cannot reach http://127.0.0.1:{port}" in done.stdout
    assert "retrying every 0.2 s" in done.stdout
