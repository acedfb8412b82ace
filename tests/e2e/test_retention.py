"""Retention, for real: `dacirco serve --retention` deletes a finished job's row, output and
worker while the service keeps answering; an identical request is then transcoded again. The
event log and the samples file are cut in small pieces: the samples' old pieces go too."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from dacirco.analytics.samples import read_samples, sample_pieces, samples_path
from dacirco.config import database_path

pytestmark = pytest.mark.slow

CLASSIC = {"id_video": "bbb_2.mp4", "bitrate": 1200, "speed": "ultrafast"}
RETENTION = 4.0  # seconds: short, so that the test sees a sweep; every wait is on a condition
PIECE_MB = "0.002"  # the event log and the samples file in pieces of 2 KB (a few seconds)


def stored(db: Path, table: str, ident: str, column: str = "id") -> bool:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (ident,)).fetchone()
    return row is not None


class Prober(threading.Thread):
    """Asks the API all along (a listing, a job, the metrics): every answer must come."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=url, timeout=30)
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for path in ("/jobs", "/workers", "/metrics", "/health"):
                try:
                    self.answers.append(self.client.get(path).status_code)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {exc!r}")
            time.sleep(0.05)
        self.client.close()


def post(svc, body: dict) -> str:  # type: ignore[no-untyped-def]
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_finished_job_is_deleted_and_an_identical_request_transcoded_again(service_factory):
    svc = service_factory(
        "--retention", f"{RETENTION:g}s", "--max-workers", "1", "--algorithm", "minimize-workers",
        "--event-log-max-mb", PIECE_MB,
    )  # fmt: skip
    prober = Prober(svc.url)
    prober.start()
    try:
        first = post(svc, CLASSIC)
        assert svc.wait_state(first, {"Completed", "Error"}, timeout=120) == "Completed"
        job = svc.client.get(f"/jobs/{first}").json()
        worker = job["worker_id"]
        output = svc.data_dir / "videos" / "output-videos" / job["output"]
        db = database_path(svc.data_dir)

        def deleted() -> bool:
            return svc.client.get(f"/jobs/{first}").status_code == 404

        svc.wait_for(deleted, timeout=120, what="the job deleted by retention")
        answer = svc.client.get(f"/jobs/{first}").json()
        assert "unknown" in answer["detail"] and "4s" in answer["detail"], answer
        assert not output.exists()
        assert not stored(db, "jobs", first) and not stored(db, "tasks", first, "job_id")
        # Its worker stopped at once (minimize-workers): gone too, a little later at most.
        svc.wait_for(
            lambda: svc.client.get(f"/workers/{worker}").status_code == 404,
            timeout=120,
            what="the worker deleted by retention",
        )
        assert not stored(db, "workers", worker)
        metrics = svc.client.get("/metrics").text
        assert "dacirco_retention_deleted_jobs_total 1.0" in metrics
        assert "dacirco_retention_freed_bytes_total 0.0" not in metrics

        # The same request again: not served with the deleted output, transcoded anew.
        again = post(svc, CLASSIC)
        fresh = svc.client.get(f"/jobs/{again}").json()
        assert fresh["reused_from"] is None and fresh["state"] != "Completed"
        assert svc.wait_state(again, {"Completed", "Error"}, timeout=120) == "Completed"
        done = svc.client.get(f"/jobs/{again}")
        if done.status_code == 200:  # it may be deleted already on a slow machine
            assert done.json()["reused_from"] is None and done.json()["figures"]["attempts"]
        codes = [e["code"] for e in svc.events()]
        assert codes.count("EV7") == 2 and "EV19" not in codes
        # The samples' first pieces are gone, the last ones still read as the run's.
        samples = samples_path(svc.event_log)
        svc.wait_for(lambda: not samples.exists(), timeout=120, what="old samples pieces deleted")
        assert sample_pieces(samples)[0][0] > 1
        left = read_samples(samples)
        assert left is not None and left.controller_cpu_cores.times
        metrics = svc.client.get("/metrics").text
        assert "dacirco_retention_deleted_sample_pieces_total 0.0" not in metrics
    finally:
        prober.stop.set()
        prober.join(timeout=60)
    assert prober.answers and not prober.failures, prober.failures[:3]
    assert set(prober.answers) == {200}, sorted(set(prober.answers))
