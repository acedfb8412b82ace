"""Pilot workers on an idle machine, for real: a real `dacirco serve`, a real `dacirco
node-agent` on this machine, a real pilot transcoding with ffmpeg; then the "owner" comes
back (busy loops, more than the machine has cores) and the pilot must stop within seconds,
its job requeued without an attempt and completed elsewhere, nothing lost, nothing left
behind. Also the agent's bad-input lines: a refused token, an unreachable controller."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import psutil
import pytest

from tests.conftest import Service, free_port, start_service

pytestmark = pytest.mark.slow

TOKEN = "pilot-test-token"
NODE = "idle-test"
# Busy loops for the owner: more than the cores, so that the run queue shows them however
# busy the machine already is (the agent's threshold is relative to the load it measured).
BURNERS = 12
BURN = "import time\nwhile True: pass"


def agent(url: str, tmp: Path, token_file: Path, *args: str, name: str = "agent") -> tuple:  # type: ignore[type-arg]
    log = tmp / f"{name}.log"
    cmd = [
        sys.executable, "-m", "dacirco.cli", "node-agent",
        "--controller", url, "--token-file", str(token_file),
        "--work-dir", str(tmp / name), *args,
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    return proc, log


def wait_until(predicate, timeout: float, what: str, poll: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def pilot_pids(agent_pid: int) -> list[int]:
    try:
        children = psutil.Process(agent_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if "dacirco.worker" in " ".join(_cmd(c))]


def _cmd(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def worker(svc: Service, wid: str) -> dict:  # type: ignore[type-arg]
    return svc.client.get(f"/workers/{wid}").json()


def pilot_on(svc: Service, job_id: str) -> str | None:
    """The pilot busy with ``job_id``'s task, once its transcode has started."""
    job = svc.client.get(f"/jobs/{job_id}").json()
    wid = job.get("worker_id")
    if not wid or job.get("state") != "Started":
        return None
    w = worker(svc, wid)
    started = any(e["code"] == "EV4" and e.get("worker_id") == wid for e in svc.events())
    return wid if w["node"] == NODE and w["state"] == "Busy" and started else None


def gone(svc: Service, job_id: str) -> str | None:
    """ "gone" once ``job_id`` left the pilot before the test's owner came back."""
    requeued = any(e["code"] == "EV14" and e.get("request_id") == job_id for e in svc.events())
    done = svc.client.get(f"/jobs/{job_id}/state").json() == "Completed"
    return "gone" if requeued or done else None


def offers(svc: Service) -> bool:
    resp = svc.client.get("/agents")
    assert resp.status_code == 200, resp.text
    return any(a["node"] == NODE and a["cpus"] >= 1 for a in resp.json())


def probe(path: Path) -> tuple[str, float]:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name, float(container.duration) / 1e6


def test_the_owner_comes_back_the_pilot_stops_and_nothing_is_lost(
    long_catalog: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    svc = start_service(
        long_catalog, tmp_path, "--api-token-file", str(token_file),
        "--algorithm", "grace-period", "--flavor", "tiny", "--max-workers", "3",
        "--max-idle-time", "120",
    )  # fmt: skip
    svc.client.headers["Authorization"] = f"Bearer {TOKEN}"
    burners: list[subprocess.Popen[bytes]] = []
    proc, log = agent(
        svc.url, tmp_path, token_file,
        "--node-name", NODE, "--cpus", "1", "--baseline", "2",
        "--max-owner-load", "6", "--window", "2", "--preempt-after", "2", "--pilot-idle", "30",
    )  # fmt: skip
    seen: list[int] = []
    try:
        # The agent's node, offering a core (its baseline measured first).
        wait_until(lambda: offers(svc), 60, "the agent's offer")
        # A 60 s movie is a short job: the policy puts it on the pilot. This machine is shared:
        # a surge of other work may preempt the pilot before the test's owner comes (as it
        # should); then the job goes elsewhere and another one is tried.
        jobs: list[str] = []
        wid = None
        while wid is None:
            assert len(jobs) < 4, "the pilot was preempted by other work four times"
            jobs.append(svc.submit(id_video="long.mp4", bitrate=8000))
            wid = wait_until(lambda: pilot_on(svc, jobs[-1]) or gone(svc, jobs[-1]), 90, "a pilot")
            wid = None if wid == "gone" else wid
        job_id = jobs[-1]
        seen += pilot_pids(proc.pid)
        assert seen, "no pilot process under the agent"
        # The owner comes back.
        t0 = time.monotonic()
        burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(BURNERS)]
        wait_until(lambda: worker(svc, wid)["state"] == "Stopped", 60, "the pilot's stop")
        stopped_after = time.monotonic() - t0
        wait_until(lambda: not any(psutil.pid_exists(p) for p in seen), 30, "the pilot's exit")
        gone_after = time.monotonic() - t0
        print(f"\nowner's load -> pilot stopped: {stopped_after:.1f} s, gone: {gone_after:.1f} s")
        for b in burners:
            b.kill()
            b.wait()
        burners = []
        w = worker(svc, wid)
        assert w["preempted"] is True and w["preemptible"] is True
        assert w["stop_reason"].startswith("preempted: owner's load")
        assert stopped_after < 20, "the pilot was not stopped within a few seconds"
        # Requeued without an attempt, completed (elsewhere, or here once the owner left).
        assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed"
        job = svc.client.get(f"/jobs/{job_id}").json()
        assert job["attempts"] == 1, job
        codes = [(e["code"], e.get("worker_id"), e.get("request_id")) for e in svc.events()]
        assert ("EV20", wid, None) in codes and ("EV14", None, job_id) in codes
        out = tmp_path / "out.mp4"
        resp = svc.client.get(f"/jobs/{job_id}/output", follow_redirects=False)
        assert resp.status_code == 307, resp.text
        out.write_bytes(svc.client.get(resp.headers["location"]).content)
        codec, duration = probe(out)
        _, in_duration = probe(svc.data_dir / "videos" / "input-videos" / "long.mp4")
        assert codec == "h264" and abs(duration - in_duration) <= 0.2
        states = [svc.wait_state(j, {"Completed", "Error"}, timeout=180) for j in jobs]
        done = states.count("Completed")
        print(f"jobs completed {done}, lost {len(states) - done}")
        assert done == len(jobs)
        # The agent stops cleanly (SIGTERM) and leaves no pilot behind.
        seen += pilot_pids(proc.pid)
        assert stop(proc) == 0, log.read_text()[-2000:]
        assert not any(psutil.pid_exists(p) for p in seen)
        assert "Traceback" not in log.read_text()
    finally:
        for b in burners:
            b.kill()
        stop(proc)
        svc.stop()


def test_a_refused_token_and_an_unreachable_controller_are_one_line_each(
    catalog_dir: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    svc = start_service(catalog_dir, tmp_path, "--api-token-file", str(token_file))
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused, refused_log = agent(svc.url, tmp_path, wrong, "--node-name", "a1", name="refused")
    away, away_log = agent(nowhere, tmp_path, token_file, "--node-name", "a2", name="away")
    try:
        wait_until(
            lambda: "refused this agent's token (403" in refused_log.read_text(), 60, "403 line"
        )
        wait_until(
            lambda: "cannot reach the controller at" in away_log.read_text(), 60, "away line"
        )
        time.sleep(2)  # retried meanwhile, with backoff: still alive, still one line each
        assert refused.poll() is None and away.poll() is None
        for path in (refused_log, away_log):
            text = path.read_text()
            assert "Traceback" not in text
            assert sum("retrying with backoff" in line for line in text.splitlines()) == 1, text
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{svc.url}/agents", headers=auth).json() == []
    finally:
        assert stop(refused) == 0 and stop(away) == 0
        svc.stop()
