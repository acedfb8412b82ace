"""The worker protocol's bodies refuse what no worker can be: zero or absurd CPUs and memory,
names longer than a host name; every field a worker sends is bounded, and a failure's message
is cut (never refused)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dacirco.protocol import (
    MAX_MESSAGE_LENGTH,
    MAX_URL_LENGTH,
    RegisterRequest,
    TaskReport,
    TaskSpec,
    clip,
)

GOOD = {"worker_id": "w1", "name": "worker-1", "node": "host", "cpus": 2, "memory_gb": 4.0}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"cpus": 1}, True),
        ({"cpus": 4096}, True),
        ({"cpus": 0}, False),
        ({"cpus": -3}, False),
        ({"cpus": 4097}, False),
        ({"cpus": 10**12}, False),
        ({"memory_gb": 0.5}, True),
        ({"memory_gb": 1e6}, True),
        ({"memory_gb": 0}, False),
        ({"memory_gb": -1.0}, False),
        ({"memory_gb": 1e6 + 1}, False),
        ({"memory_gb": float("inf")}, False),
        ({"memory_gb": float("nan")}, False),
        ({"name": "n" * 255, "node": "h" * 255}, True),
        ({"name": "n" * 256}, False),
        ({"node": "h" * 256}, False),
        ({"worker_id": "w" * 256}, False),
        ({"pid": -1}, False),
    ],
)
def test_register_request_bounds(change, accepted):
    body = {**GOOD, **change}
    if accepted:
        assert RegisterRequest.model_validate(body).model_dump(exclude={"pid"}) == body
    else:
        with pytest.raises(ValidationError) as err:
            RegisterRequest.model_validate(body)
        assert [e["loc"] for e in err.value.errors()] == [(next(iter(change)),)]


def test_register_request_bounds_hold_for_json_bodies_too():
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate_json(
            '{"worker_id": "w", "name": "n", "node": "h", "cpus": 2, "memory_gb": 1e999}'
        )


@pytest.mark.parametrize(
    "change",
    [
        {"seconds": -1.0},
        {"seconds": float("nan")},
        {"seconds": float("inf")},
        {"bytes": -1},
        {"bytes": 1 << 60},
        {"progress": 1.5},
        {"step": "finished"},
        {"error_kind": "cosmic"},
    ],
)
def test_task_reports_out_of_bounds_are_refused(change):
    with pytest.raises(ValidationError) as err:
        TaskReport.model_validate({"step": "uploaded", **change})
    assert err.value.errors()[0]["loc"] == (next(iter(change)),)


def test_a_long_message_is_cut_around_a_marker_not_refused():
    message = "first error; " + "x" * (10 * MAX_MESSAGE_LENGTH) + "; last error"
    report = TaskReport.model_validate({"step": "failed", "message": message})
    assert report.message is not None and len(report.message) == MAX_MESSAGE_LENGTH
    assert report.message.startswith("first error; ") and report.message.endswith("; last error")
    assert f"[… cut: {len(message)} characters in all …]" in report.message
    short = "ffmpeg exited with code 1: moov atom not found"
    assert TaskReport(step="failed", message=short).message == short
    assert clip("abcdef", 3) == "abc"  # a limit shorter than the marker: the head alone


def test_a_task_spec_refuses_names_and_urls_too_long():
    spec = {
        "task_id": "t", "job_id": "j", "input_name": "in.mp4", "output_name": "out.mp4",
        "input_url": "http://h/in", "output_url": "http://h/out", "bitrate_kbps": 1000,
        "speed": "fast",
    }  # fmt: skip
    TaskSpec.model_validate(spec)
    for field, value in [
        ("output_name", "o" * 256),
        ("input_url", "u" * (MAX_URL_LENGTH + 1)),
        ("chunk_urls", ["u"] * 65),
    ]:
        with pytest.raises(ValidationError):
            TaskSpec.model_validate({**spec, field: value})
