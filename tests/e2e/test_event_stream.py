"""`GET /events` on a real service: a job's changes pushed as they happen, filtered by job,
resumed with Last-Event-ID, and passed through `rest-api` when it runs apart."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import httpx
import pytest

from tests.conftest import free_port, run_command, start_service

pytestmark = pytest.mark.slow
FINAL = {"Completed", "Error", "Canceled"}


class Listener:
    """Reads an SSE stream in a thread: (id, event, data, seconds of arrival) per event."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[tuple[int, str, dict, float]] = []
        self.comments = 0
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with self._client.stream("GET", url, headers=headers) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in resp.iter_lines():
                if self._stop:
                    return
                if line.startswith(":"):
                    self.comments += 1
                elif line == "" and fields:
                    data = json.loads(fields["data"])
                    self.events.append((int(fields["id"]), fields["event"], data, time.time()))
                    fields = {}
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.removeprefix(" ")

    def connected(self) -> Listener:
        """Once the stream's opening comment came: what happens from now on is seen."""
        deadline = time.monotonic() + 30
        while self.comments == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.comments, "the stream did not open"
        return self

    def wait(self, predicate, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.events):
                return
            time.sleep(0.05)
        raise AssertionError(f"not seen within {timeout} s: {self.events[-5:]}")

    def close(self) -> None:
        self._stop = True
        self._client.close()


def job_states(events, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [d["state"] for _, kind, d, _ in events if kind == "job" and d["id"] == job_id]


def test_a_jobs_changes_are_pushed_filtered_and_resumed(service_factory):
    svc = service_factory()
    everything = Listener(f"{svc.url}/events").connected()
    job_id = svc.submit()
    mine = Listener(f"{svc.url}/events?job={job_id}&after=0")
    try:
        everything.wait(lambda ev: "Completed" in job_states(ev, job_id))
        mine.wait(lambda ev: "Completed" in job_states(ev, job_id))
        assert job_states(everything.events, job_id) == ["Waiting", "Started", "Completed"]
        assert [kind for _, kind, _, _ in mine.events] == ["job"] * 3
        workers = [d["state"] for _, kind, d, _ in everything.events if kind == "worker"]
        assert workers[:4] == ["Booting", "Idle", "Busy", "Idle"]
        # Pushed as they happen: from the change to the client, well under a second.
        lags = [
            arrived - datetime.fromisoformat(d["at"].replace("Z", "+00:00")).timestamp()
            for _, _, d, arrived in everything.events
        ]
        print(f"\nevent stream latency: median {sorted(lags)[len(lags) // 2] * 1000:.1f} ms")
        assert max(lags) < 5.0

        # Resumed after the second event: everything after it, nothing before.
        second = everything.events[1][0]
        resumed = Listener(f"{svc.url}/events", headers={"Last-Event-ID": str(second)})
        resumed.wait(lambda ev: len(ev) >= len(everything.events) - 2)
        assert [e[0] for e in resumed.events] == [e[0] for e in everything.events[2:]]
        resumed.close()
        # Bad input: named.
        bad = svc.client.get("/events", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 422 and "last-event-id" in bad.json()["message"].lower()
        assert svc.client.get("/events?job=nope").status_code == 404
    finally:
        everything.close()
        mine.close()


def test_rest_api_passes_the_stream_through(catalog_dir, tmp_path):
    controller = start_service(catalog_dir, tmp_path, command="controller")
    api_port = free_port()
    api = run_command(
        tmp_path,
        "rest-api",
        api_port,
        ["--port", str(api_port), "--controller-url", controller.url],
        controller.data_dir,
        controller.event_log,
    )
    listener = Listener(f"{api.url}/events").connected()
    try:
        job_id = api.submit()
        listener.wait(lambda ev: FINAL & set(job_states(ev, job_id)))
        assert job_states(listener.events, job_id) == ["Waiting", "Started", "Completed"]
        assert api.client.get("/events?job=nope").status_code == 404
    finally:
        listener.close()
        api.stop()
        controller.stop()
