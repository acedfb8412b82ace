"""Backpressure on a real service: a burst of 1,000 concurrent submissions against a small
``--max-queue``. Every answer is 201 or 429, no accepted job is lost, the API stays
responsive; prints accepted, refused, lost and the latency of GETs during the burst."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.slow

BURST = 1000
MAX_QUEUE = 20
# The shortest clip; each request its own job (identical ones would share one output).
BODY = {"id_video": "bbb_0.mp4", "bitrate": 800, "speed": "ultrafast", "reuse": False}


async def burst(url: str) -> tuple[list[httpx.Response], list[float], float]:
    """``BURST`` POSTs at once (up to 50 connections) while another thread GETs every 50 ms
    (its own client, off this event loop, so its latency is the server's, not this loop's);
    the answers, the GET latencies and the burst's duration."""
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=url, timeout=60) as probe:
            while not done.is_set():
                started = time.perf_counter()
                resp = probe.get("/jobs", params={"limit": 1})
                assert resp.status_code == 200, resp.text
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        watcher.start()
        try:
            started = time.perf_counter()
            answers = await asyncio.gather(*(http.post("/jobs", json=BODY) for _ in range(BURST)))
            elapsed = time.perf_counter() - started
        finally:
            done.set()
            watcher.join()
    return list(answers), latencies, elapsed


def test_a_burst_gets_201_or_429_and_loses_no_accepted_job(service_factory):
    svc = service_factory(
        "--max-queue", str(MAX_QUEUE), "--max-workers", "2", "--max-idle-time", "30"
    )
    answers, latencies, elapsed = asyncio.run(burst(svc.url))
    by_status: dict[int, int] = {}
    for resp in answers:
        by_status[resp.status_code] = by_status.get(resp.status_code, 0) + 1
    accepted = [r.json() for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 429]
    assert set(by_status) <= {201, 429}, by_status
    assert MAX_QUEUE <= len(accepted) < BURST, by_status
    for resp in refused:
        assert int(resp.headers["retry-after"]) >= 1
        body = resp.json()
        assert body["detail"] and "the queue is full" in body["message"]

    listed = svc.client.get("/jobs").json()["items"]
    assert sorted(listed) == sorted(accepted)  # nothing stored for a refused job
    assert sum(e["code"] == "EV1" for e in svc.events()) == len(accepted)
    deadline = time.monotonic() + 180
    final: dict[str, str] = {}
    while time.monotonic() < deadline:
        final = {j: svc.client.get(f"/jobs/{j}/state").json() for j in accepted}
        if all(s in ("Completed", "Error") for s in final.values()):
            break
        time.sleep(1)
    completed = sum(s == "Completed" for s in final.values())
    print(
        f"\nburst: {BURST} submissions in {elapsed:.1f} s against --max-queue {MAX_QUEUE}: "
        f"{len(accepted)} accepted, {len(refused)} refused (429, Retry-After "
        f"{min(int(r.headers['retry-after']) for r in refused)}.."
        f"{max(int(r.headers['retry-after']) for r in refused)} s), "
        f"{len(accepted) - completed} lost, {completed} completed; GET /jobs during the burst: "
        f"{len(latencies)} answered, median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert final == dict.fromkeys(accepted, "Completed"), final
    assert latencies, "no GET answered during the burst"
