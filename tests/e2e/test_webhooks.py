"""Webhooks from a real service: signed, from each job's callback_url and the service-wide
--webhook, at least once across a kill -9, and a receiver that hangs costs no job."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest

from dacirco.webhooks import verify
from tests.conftest import start_service
from tests.integration.test_webhooks_delivery import Receiver, receivers  # noqa: F401

pytestmark = pytest.mark.slow


def until(predicate, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def types(receiver: Receiver, job_id: str) -> list[str]:
    bodies = [json.loads(r.body) for r in receiver.received]
    return [b["type"] for b in bodies if b.get("id") == job_id and b["type"] != "job.progress"]


def test_a_jobs_changes_reach_its_callback_and_the_service_webhook_signed(
    catalog_dir,
    tmp_path,
    receivers,  # noqa: F811
):
    own, everyone, hanging = receivers(), receivers(), receivers()
    hanging.hang = True
    svc = start_service(catalog_dir, tmp_path, "--webhook", everyone.url, "--webhook-allow-private")
    try:
        job_id = svc.submit(callback_url=own.url)
        stuck = svc.submit(callback_url=hanging.url)
        for j in (job_id, stuck):
            assert svc.wait_state(j, {"Completed", "Error"}) == "Completed"
        assert svc.client.get(f"/jobs/{job_id}").json()["callback_url"] == own.url
        until(lambda: "job.completed" in types(own, job_id), "the completion delivered")
        until(lambda: "job.completed" in types(everyone, stuck), "the service hook, too")
        assert types(own, job_id) == ["job.waiting", "job.started", "job.completed"]
        assert stuck not in {json.loads(r.body).get("id") for r in own.received}
        secret = (svc.data_dir / "webhook-secret").read_text().strip().encode()
        for r in own.received:
            assert verify(secret, r.body, r.headers["dacirco-signature"], time.time())
            assert r.headers["dacirco-event-id"] == json.loads(r.body)["event_id"]
        done = json.loads(own.received[-1].body)
        assert done["job"]["output"] and done["previous"] == "Started"
        assert (svc.data_dir / "webhook-secret").stat().st_mode & 0o077 == 0
        # The receiver that hangs held its deliveries, not the jobs nor the API.
        assert len(hanging.received) >= 1
        assert svc.client.get("/jobs").status_code == 200
        # A callback that is not http(s): refused at submission, naming the field.
        bad = svc.client.post(
            "/jobs",
            json={"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast", "callback_url": "x"},
        )
        assert bad.status_code == 422 and bad.json()["message"].startswith("callback_url:")
    finally:
        svc.stop()


def test_webhooks_are_delivered_at_least_once_across_a_kill_9(
    catalog_dir,
    tmp_path,
    receivers,  # noqa: F811
):
    hook = receivers()
    args = ("--webhook", hook.url, "--webhook-allow-private", "--max-workers", "2")
    svc = start_service(catalog_dir, tmp_path, *args)
    jobs = [svc.submit(id_video=f"bbb_{i % 4}.mp4") for i in range(6)]
    svc.wait_state(jobs[0], {"Completed"})
    os.kill(svc.proc.pid, signal.SIGKILL)  # mid-way: some jobs done, some running, some waiting
    svc.proc.wait(timeout=30)
    port = int(svc.url.rsplit(":", 1)[1])
    again = start_service(catalog_dir, tmp_path, *args, port=port)
    try:
        for j in jobs:
            assert again.wait_state(j, {"Completed", "Error"}) == "Completed"
        with sqlite3.connect(again.data_dir / "dacirco.sqlite3") as db:
            sent = {str(s) for (s,) in db.execute("SELECT seq FROM changes WHERE kind = 'job'")}
        until(lambda: sent <= set(hook.ids()), "every job change delivered")
        received = [i for i in hook.ids() if i in sent]
        duplicates = len(received) - len(set(received))
        print(
            f"\nwebhooks across a kill -9: {len(sent)} sent, {len(received)} received, "
            f"{duplicates} duplicates, {len(sent - set(received))} lost"
        )
        assert sent - set(received) == set()
        for j in jobs:
            assert types(hook, j)[-1] == "job.completed"
    finally:
        again.stop()
