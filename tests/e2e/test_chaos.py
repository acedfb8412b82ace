"""Nothing lost: worker processes killed with -9 at random during a scenario, the controller
killed with -9 and restarted on its data dir, the S3 storage down for a while, damaged input
movies. Real `dacirco serve`, real workers, real ffmpeg; each test prints its figures."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from dacirco.scenario.model import Request, write_scenario
from tests.conftest import Service, start_service, start_weed, upload_catalog

pytestmark = pytest.mark.slow

TOKEN = "chaos-test-token"
FINAL = {"Completed", "Error"}
SHORT_MOVIES = ("bbb_0.mp4", "bbb_1.mp4", "bbb_2.mp4", "bbb_3.mp4")  # 0.4 .. 1 s each


def authed(svc: Service) -> Service:
    svc.client.headers["Authorization"] = f"Bearer {TOKEN}"
    return svc


def states(svc: Service, ids: list[str]) -> dict[str, str]:
    return {j: svc.client.get(f"/jobs/{j}/state").json() for j in ids}


def wait_all_final(svc: Service, ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    now = states(svc, ids)
    while time.monotonic() < deadline and not all(s in FINAL for s in now.values()):
        time.sleep(0.5)
        now = states(svc, ids)
    return now


def worker_id_of(pid: int) -> str | None:
    try:
        cmd = psutil.Process(pid).cmdline()
    except psutil.Error:
        return None
    return cmd[cmd.index("--worker-id") + 1] if "--worker-id" in cmd else None


def scenario_file(path: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    requests = [
        Request(
            delay=0.0 if i == 0 else round(rng.uniform(0.2, 0.6), 2),
            movie=rng.choice(SHORT_MOVIES),
            bitrate=rng.choice((800, 1000, 1500)),
            speed="ultrafast",
        )
        for i in range(count)
    ]
    write_scenario(path, requests)
    return path


def play(svc: Service, path: Path, cwd: Path) -> subprocess.Popen[str]:
    """`dacirco scenario -f` in the background, sending the API token from the environment."""
    port = svc.url.rsplit(":", 1)[1]
    cmd = [sys.executable, "-m", "dacirco.cli", "scenario", "-f", str(path), "-p", port]
    env = {**os.environ, "DACIRCO_API_TOKEN": TOKEN}
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_workers_killed_at_random_lose_no_job(service_factory, tmp_path):
    jobs_played, max_kills = 24, 8
    svc = authed(
        service_factory(
            "--max-workers", "2", "--max-idle-time", "30", "--api-token", TOKEN,
        )
    )  # fmt: skip
    started = time.monotonic()
    player = play(svc, scenario_file(tmp_path / "chaos.csv", jobs_played, seed=11), tmp_path)
    rng = random.Random(5)
    killed = 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        ids = svc.client.get("/jobs").json()["items"]
        if player.poll() is not None and all(s in FINAL for s in states(svc, ids).values()):
            break
        if killed < max_kills:
            victims = []
            for pid in svc.worker_pids():
                worker_id = worker_id_of(pid)
                if worker_id is None:
                    continue
                worker = svc.client.get(f"/workers/{worker_id}").json()
                # A booting worker killed counts as a failed boot (starts back off): spare it.
                # A job already lost once keeps its last attempts (max 3): spare its worker.
                if worker["state"] not in ("Idle", "Busy"):
                    continue
                job_id = worker["job_id"]
                if job_id and svc.client.get(f"/jobs/{job_id}").json()["attempts"] >= 2:
                    continue
                victims.append((job_id is not None, pid))
            busy = [pid for has_job, pid in victims if has_job]  # a job to lose, preferably
            if not busy and (not victims or rng.random() > 0.3):
                time.sleep(0.1)  # look again soon for a worker in the middle of a job
                continue
            os.kill(rng.choice(busy or [pid for _, pid in victims]), signal.SIGKILL)
            killed += 1
        time.sleep(rng.uniform(0.7, 1.5))
    out, _ = player.communicate(timeout=30)
    assert player.returncode == 0, out
    ids = svc.client.get("/jobs").json()["items"]
    final = wait_all_final(svc, ids, timeout=60)
    completed = sum(s == "Completed" for s in final.values())
    lost = jobs_played - completed
    retried = sum(svc.client.get(f"/jobs/{j}").json()["attempts"] > 1 for j in ids)
    lost_events = [e for e in svc.events() if e["code"] == "EV12"]
    print(
        f"\nchaos: {jobs_played} jobs played, {killed} workers killed (-9), {completed} "
        f"completed, {lost} lost, {retried} jobs retried, {len(lost_events)} workers lost "
        f"(EV12), {time.monotonic() - started:.0f} s"
    )
    assert len(ids) == jobs_played, out  # every request accepted (201) and listed
    assert killed >= 4, "the chaos loop found too few workers to kill"
    assert final == dict.fromkeys(ids, "Completed"), final
    assert len(lost_events) >= killed


def test_a_controller_killed_9_mid_scenario_loses_no_accepted_job(service_factory, tmp_path):
    svc = authed(
        service_factory("--max-workers", "2", "--max-idle-time", "30", "--api-token", TOKEN)
    )
    accepted: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def submit_all() -> None:  # a client sending 16 requests, one every 0.15 s
        with httpx.Client(base_url=svc.url, headers=svc.client.headers, timeout=10) as http:
            for i in range(16):
                if stop.is_set():
                    return
                body = {"id_video": f"bbb_{2 + i % 4}.mp4", "bitrate": 1000, "speed": "fast"}
                try:
                    resp = http.post("/jobs", json=body)
                except httpx.TransportError as exc:
                    refused.append(type(exc).__name__)
                    continue
                if resp.status_code == 201:
                    accepted.append(resp.json())
                else:
                    refused.append(str(resp.status_code))
                time.sleep(0.15)

    client = threading.Thread(target=submit_all)
    client.start()
    svc.wait_for(
        lambda: (
            len(accepted) >= 8
            and "Completed" in states(svc, accepted[:3]).values()
            and "Started" in states(svc, list(accepted)).values()
        ),
        timeout=60,
        what="a job completed and another started",
    )
    before = states(svc, list(accepted))
    workers = [psutil.Process(pid) for pid in svc.worker_pids()]
    svc.proc.kill()  # SIGKILL: no shutdown, no cleanup
    svc.proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)  # the parent-death signal
    client.join(timeout=30)
    stop.set()
    kept = list(accepted)
    again = authed(
        service_factory("--max-workers", "2", "--max-idle-time", "30", "--api-token", TOKEN)
    )
    final = wait_all_final(again, kept, timeout=120)
    completed = sum(s == "Completed" for s in final.values())
    requeued = [e for e in again.events() if e["code"] == "EV14"]
    in_flight = sum(s == "Started" for s in before.values())
    print(
        f"\ncontroller kill -9: {len(kept)} jobs accepted, {len(refused)} sends failed while "
        f"it was down, {sum(s == 'Completed' for s in before.values())} completed before "
        f"the kill, {in_flight} in flight, {sum(s == 'Waiting' for s in before.values())} "
        f"waiting, {completed} completed after the restart, "
        f"{len(kept) - completed} lost, {len(requeued)} requeued (EV14)"
    )
    assert not alive, f"workers outlived their controller: {alive}"
    assert final == dict.fromkeys(kept, "Completed"), final
    assert set(kept) <= set(again.client.get("/jobs").json()["items"])
    assert in_flight == 0 or any("controller restarted" in e["reason"] for e in requeued)


def test_storage_down_for_a_while_costs_time_not_jobs(catalog_dir, tmp_path):
    """SeaweedFS stopped while jobs run, started again ~10 s later: the workers' transfers
    retry with backoff (8 tries, about 20 s), the controller requeues what still failed."""
    weed = start_weed(tmp_path / "weed")
    svc = None
    try:
        upload_catalog(catalog_dir, weed)
        svc = start_service(
            catalog_dir, tmp_path, "--max-workers", "1", "--max-idle-time", "30", s3=weed
        )
        ids = [svc.submit(id_video=m) for m in ("bbb_4.mp4", "bbb_5.mp4", "bbb_3.mp4")]
        svc.wait_for(
            lambda: svc.client.get(f"/jobs/{ids[0]}/state").json() == "Started",
            what="first job started",
        )
        down = time.monotonic()
        weed.stop()
        during = svc.client.post("/jobs", json={"id_video": "bbb_1.mp4", "bitrate": 1000,
                                                "speed": "ultrafast"})  # fmt: skip
        time.sleep(8)
        weed.start()
        outage = time.monotonic() - down
        final = wait_all_final(svc, ids, timeout=150)
        jobs = [svc.client.get(f"/jobs/{j}").json() for j in ids]
        logs = "".join(p.read_text(errors="replace") for p in (svc.data_dir / "logs").glob("*"))
        retries = logs.count(" of 8")
        ev10 = [e for e in svc.events() if e["code"] == "EV10"]
        print(
            f"\nstorage down {outage:.1f} s: {len(ids)} jobs, {retries} transfer retries, "
            f"{len(ev10)} attempts failed on storage (EV10), attempts "
            f"{[j['attempts'] for j in jobs]}, "
            f"{sum(s == 'Completed' for s in final.values())} completed, "
            f"{sum(s != 'Completed' for s in final.values())} lost; a submission meanwhile: "
            f"{during.status_code} {during.json()['message']!r}"
        )
        assert during.status_code == 503 and "storage is unavailable" in during.json()["message"]
        assert final == dict.fromkeys(ids, "Completed"), [j["errors"] for j in jobs]
        assert retries + len(ev10) > 0, "the outage hit no transfer: nothing was tested"
    finally:
        if svc is not None:
            svc.stop()
        weed.stop()


def test_damaged_inputs_fail_with_ffmpegs_reason_and_the_worker_goes_on(service_factory):
    svc = service_factory("--max-workers", "1", "--max-idle-time", "30")
    folder = svc.data_dir / "videos" / "input-videos"
    (folder / "corrupt.mp4").write_bytes(random.Random(3).randbytes(300_000))
    whole = (folder / "bbb_2.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    corrupt = svc.submit(id_video="corrupt.mp4")
    truncated = svc.submit(id_video="truncated.mp4")
    good = svc.submit(id_video="bbb_1.mp4")
    for job_id, expected in ((corrupt, "Error"), (truncated, "Error"), (good, "Completed")):
        assert svc.wait_state(job_id, FINAL) == expected
    jobs = {name: svc.client.get(f"/jobs/{j}").json() for name, j in
            (("corrupt", corrupt), ("truncated", truncated), ("good", good))}  # fmt: skip
    for name in ("corrupt", "truncated"):
        print(f"\n{name}: {jobs[name]['error']}")
    assert "transcoding failed" in jobs["corrupt"]["error"]
    assert "Invalid data" in jobs["corrupt"]["error"] or "moov atom" in jobs["corrupt"]["error"]
    assert "the input is truncated or damaged" in jobs["truncated"]["error"]
    assert "[error]" not in jobs["truncated"]["error"]  # ffmpeg's words, without its tags
    assert all(j["attempts"] == 1 for j in jobs.values())  # a bad movie is not retried
    assert (
        len(
            {j["worker_id"] for j in jobs.values() if j["worker_id"]}
            | {e["worker_id"] for e in svc.events() if e["code"] == "EV3"}
        )
        == 1
    ), "the same worker took the three jobs"
