"""End to end: a real run's event log converted by process-logs."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dacirco.analytics.cli import process_logs

pytestmark = pytest.mark.slow

STEPS = ("assigned", "started", "file_downloaded", "transcoding_done", "file_uploaded")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_real_run_converts_to_both_csv_files(service_factory) -> None:
    svc = service_factory("--algorithm", "minimize-workers")
    jobs = [svc.submit(id_video="bbb_0.mp4") for _ in range(2)]
    for job in jobs:
        assert svc.wait_state(job, {"Completed", "Error"}) == "Completed"
    svc.wait_for(lambda: set(svc.worker_states().values()) == {"Stopped"}, what="workers stopped")
    svc.stop()

    app = typer.Typer()
    app.command()(process_logs)
    result = CliRunner().invoke(app, [str(svc.event_log)])
    assert result.exit_code == 0, result.output

    folder = svc.event_log.parent
    workers_csv = folder / "tc-events-01-workers.csv"
    requests_csv = folder / "tc-events-01-ok-requests.csv"
    assert workers_csv.exists() and requests_csv.exists()

    requests = rows(requests_csv)
    assert sorted(r["request_id"] for r in requests) == sorted(jobs)
    for r in requests:
        diffs = [float(r[f"timediff_{s}"]) for s in STEPS]
        assert all(d >= 0 for d in diffs), r
        delay = (
            datetime.fromisoformat(r["time_file_uploaded"])
            - datetime.fromisoformat(r["time_received"])
        ).total_seconds()
        assert abs(sum(diffs) - delay) <= 0.001, r
        assert r["input_video"] == "bbb_0.mp4" and r["worker_id"] and r["task_id"]

    workers = rows(workers_csv)
    assert len(workers) >= 1
    assert any(w["timediff_registered"] and float(w["timediff_registered"]) > 0 for w in workers)
    assert all(w["time_destroyed"] for w in workers)
