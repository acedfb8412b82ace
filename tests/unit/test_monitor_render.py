"""The monitor's rendering and parsing, from hand-built snapshots (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from dacirco.monitor.render import format_duration, render, render_unreachable, shorten
from dacirco.monitor.snapshot import (
    JOB_STATES,
    JobRow,
    Snapshot,
    WorkerRow,
    count,
    idle_since,
    job_row,
    parse_time,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
W_IDLE = "aaaaaaaa-1111-2222-3333-444444444444"
W_BUSY = "bbbbbbbb-1111-2222-3333-444444444444"
J_DONE = "11111111-aaaa-bbbb-cccc-dddddddddddd"
J_RUN = "22222222-aaaa-bbbb-cccc-dddddddddddd"
J_FAIL = "33333333-aaaa-bbbb-cccc-dddddddddddd"


def text_of(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def snapshot() -> Snapshot:
    workers = [
        WorkerRow(W_IDLE, "dacirco-worker-001", "Idle", "local", "1", "2", None, 1,
                  idle_since=NOW - timedelta(seconds=184)),
        WorkerRow(W_BUSY, "dacirco-worker-002", "Busy", "local", "2", "4", J_RUN, 0),
    ]  # fmt: skip
    jobs = [
        JobRow(J_FAIL, "bbb_3.mp4", 500, "fast", "Error", W_BUSY,
               error="ffmpeg exited with status 1: Invalid data found when processing input",
               received=NOW - timedelta(hours=2, minutes=5)),
        JobRow(J_RUN, "bbb_2.mp4", 2000, "fast", "Started", W_BUSY, progress=0.42,
               received=NOW - timedelta(seconds=12)),
        JobRow(J_DONE, "bbb_1.mp4", 7000, "ultrafast", "Completed", W_IDLE, progress=1.0,
               delay=8.25, received=NOW - timedelta(minutes=3, seconds=4)),
    ]  # fmt: skip
    return Snapshot(
        url="http://127.0.0.1:8000",
        taken_at=NOW,
        workers=workers,
        jobs=jobs,
        job_counts={"Waiting": 0, "Started": 1, "Completed": 1, "Error": 1},
        worker_counts={"Booting": 0, "Idle": 1, "Busy": 1, "Stopped": 0},
        total_jobs=3,
    )


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(None, ""), (-3, "0s"), (0, "0s"), (12, "12s"), (59.9, "59s"), (60, "1m00s"),
     (184, "3m04s"), (3600, "1h00m"), (7500, "2h05m"), (3 * 86400 + 4 * 3600, "3d04h")],
)  # fmt: skip
def test_format_duration(seconds: float | None, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_view_lists_workers_jobs_and_counts() -> None:
    out = text_of(render(snapshot()))
    assert "http://127.0.0.1:8000" in out
    assert "jobs: 3 total · Waiting 0 · Started 1 · Completed 1 · Error 1" in out
    assert "workers: Booting 0 · Idle 1 · Busy 1 · Stopped 0" in out
    for short_id in ("aaaaaaaa", "bbbbbbbb", "11111111", "22222222", "33333333"):
        assert short_id in out
    assert W_IDLE not in out and J_DONE not in out  # ids are shortened
    assert "dacirco-worker-001" in out and "dacirco-worker-002" in out
    idle_line = next(line for line in out.splitlines() if "dacirco-worker-001" in line)
    assert "Idle" in idle_line and "3m04s" in idle_line
    busy_line = next(line for line in out.splitlines() if "dacirco-worker-002" in line)
    assert "Busy" in busy_line and "22222222" in busy_line  # its current job
    lines = {sid: next(ln for ln in out.splitlines() if ln.lstrip("│ ").startswith(sid))
             for sid in ("11111111", "22222222", "33333333")}  # fmt: skip
    assert "Completed" in lines["11111111"] and "3m04s" in lines["11111111"]
    assert "8.2s" in lines["11111111"] and "100%" in lines["11111111"]
    assert "Started" in lines["22222222"] and "12s" in lines["22222222"]
    assert "42%" in lines["22222222"]
    assert "Error" in lines["33333333"] and "2h05m" in lines["33333333"]
    assert "ffmpeg exited with status 1" in lines["33333333"]
    assert "when processing input" not in out  # the error is shortened


def test_newest_first_order_is_kept() -> None:
    out = text_of(render(snapshot()))
    out = out[out.index("Jobs (") :]
    assert out.index("33333333") < out.index("22222222") < out.index("11111111")


def test_empty_snapshot_and_hidden_stopped_workers() -> None:
    empty = Snapshot(url="http://h:1", taken_at=NOW, job_counts=count([], JOB_STATES))
    out = text_of(render(empty))
    assert "no workers" in out and "no jobs" in out and "jobs: 0 total" in out
    stopped = [WorkerRow(f"{i:08d}-x", f"w-{i:03d}", "Stopped") for i in range(8)]
    out = text_of(render(Snapshot(url="http://h:1", taken_at=NOW, workers=stopped)))
    assert "w-007" in out and "w-003" in out and "w-002" not in out
    assert "3 older stopped workers not shown" in out


def test_jobs_title_says_when_only_the_newest_are_shown() -> None:
    snap = snapshot()
    out = text_of(render(Snapshot(**{**snap.__dict__, "total_jobs": 250})))
    assert "Jobs (newest 3 of 250)" in out


def test_unreachable_message() -> None:
    out = text_of(render_unreachable("http://h:9", "Connection refused", 3, NOW))
    assert "cannot reach http://h:9: Connection refused; retrying every 3 s" in out


def test_shorten() -> None:
    assert shorten("a\n  b") == "a b"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"


def test_job_row_and_idle_since_from_api_bodies() -> None:
    body = {
        "id": J_DONE, "id_video": "bbb_0.mp4", "bitrate": 1000, "speed": "ultrafast",
        "codec": "h264", "state": "Completed", "attempts": 1, "worker_id": W_IDLE,
        "progress": 1.0, "delay": 4.5,
        "timings": {"received": "2024-05-01T11:59:00+00:00",
                    "uploaded": "2024-05-01T11:59:04.500000+00:00"},
    }  # fmt: skip
    row = job_row(body)
    assert row.received == NOW - timedelta(seconds=60)
    assert row.ended == NOW - timedelta(seconds=55.5)
    worker = {"id": W_IDLE, "state": "Idle", "registered_at": "2024-05-01T11:58:00+00:00"}
    assert idle_since(worker, [row]) == row.ended
    assert idle_since(worker, []) == NOW - timedelta(minutes=2)
    assert idle_since({**worker, "state": "Busy"}, [row]) is None
    assert parse_time("2024-05-01T12:00:00") == NOW
    assert parse_time("garbage") is None and parse_time(None) is None


def test_count_keeps_known_states_first() -> None:
    assert count(["Error", "Odd", "Error"], JOB_STATES) == {
        "Waiting": 0, "Started": 0, "Completed": 0, "Error": 2, "Odd": 1,
    }  # fmt: skip
