"""The figures of a run (dacirco.analytics.figures) on examples computed by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dacirco.analytics.figures import (
    Step,
    busy_cores,
    busy_seconds,
    figures,
    percentile,
    reserved_cores,
    stats,
    step_function,
    used_cores,
    weighted,
)
from dacirco.analytics.run import JobSpan, NodeCapacity, RunData, WorkerSpan, from_log

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ev(seconds: float, code: str, **fields: object) -> dict[str, object]:
    return {"time": (T0 + timedelta(seconds=seconds)).isoformat(), "code": code, **fields}


def run_of(workers: list[WorkerSpan], jobs: list[JobSpan], end: float = 100.0) -> RunData:
    return RunData("r", 0.0, end, [NodeCapacity("n1", 8, 16)], workers, jobs)


def test_percentile_is_linear_between_ranks() -> None:
    assert percentile(list(range(1, 21)), 95) == pytest.approx(19.05)
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(percentile([], 95))
    s = stats([3.0, None, 1.0, 2.0])
    assert (s.n, s.avg, s.max) == (3, 2.0, 3.0)


def test_step_function_sums_overlapping_intervals_and_clips() -> None:
    step = step_function([(0, 10, 2), (5, 15, 2), (-5, 2, 1), (18, 30, 3)], 0, 20)
    # an interval clipped at the end closes there: a last, empty step at 20
    assert step.times == (0, 2, 5, 10, 15, 18, 20)
    assert step.values == (3, 2, 4, 2, 0, 3, 0)


def test_weighted_average_and_p95_are_by_time() -> None:
    # 1 core for 10 s then 3 cores for 10 s, over a capacity of 4.
    s = weighted(Step((0.0, 10.0), (1.0, 3.0)), end=20.0, scale=4.0)
    assert s.avg == pytest.approx(0.5)
    assert s.p95 == pytest.approx(0.75) and s.max == pytest.approx(0.75)
    # 0 for 94 s, 1 for 6 s: the top 5 % of the time is at 1 -> p95 = 1; with 95 s at 0, it is 0.
    assert weighted(Step((0.0, 94.0), (0.0, 1.0)), end=100.0).p95 == 1.0
    assert weighted(Step((0.0, 95.0), (0.0, 1.0)), end=100.0).p95 == 0.0
    # A sample-count p95 would say 1 for both (one value of two): the weighting matters.
    assert math.isnan(weighted(Step((0.0,), (1.0,)), end=0.0).avg)


def test_busy_overlap_is_counted_once() -> None:
    w = WorkerSpan("w", "w", 2, 4, created=0, destroyed=10, busy=[(1, 5), (3, 8), (9, 20)])
    run = run_of([w], [])
    assert busy_seconds(w, run) == pytest.approx(8.0)  # [1, 8) and [9, 10)
    f = figures(run)
    assert f.reserved_core_seconds == pytest.approx(20.0)
    assert f.busy_core_seconds == pytest.approx(16.0)
    assert f.idle_core_seconds == pytest.approx(4.0)
    # busy_cores sums the intervals as they are: the overlap shows as 4 cores
    assert busy_cores(run).values[:3] == (0.0, 2.0, 4.0)


def test_worker_alive_at_the_end_counts_until_the_end() -> None:
    w = WorkerSpan("w", "w", 2, 4, created=40, registered=45, destroyed=None)
    f = figures(run_of([w], [], end=100.0))
    assert f.reserved_core_seconds == pytest.approx(120.0)  # 2 cores * 60 s
    assert f.reserved_gb_seconds == pytest.approx(240.0)
    assert f.idle_core_seconds == pytest.approx(120.0)
    assert f.boot.avg == pytest.approx(5.0)
    # 2 of 8 cores for 60 s of 100: average 15 %, p95 25 %
    assert f.reserved_cpu_util.avg == pytest.approx(0.15)
    assert f.reserved_cpu_util.p95 == pytest.approx(0.25)
    step = reserved_cores(run_of([w], []))
    assert (step.times, step.values) == ((0.0, 40.0, 100.0), (0.0, 2.0, 0.0))


def test_figures_of_a_small_run() -> None:
    workers = [
        WorkerSpan("a", "a", 2, 4, created=0, registered=2, destroyed=50, busy=[(2, 12), (20, 30)]),
        WorkerSpan("b", "b", 4, 8, created=10, registered=14, destroyed=30, busy=[(14, 24)]),
    ]
    jobs = [
        JobSpan("j1", received=0, state="Completed", assigned=2, uploaded=12),
        JobSpan("j2", received=10, state="Completed", assigned=14, uploaded=24),
        JobSpan("j3", received=18, state="Completed", assigned=20, uploaded=30),
        JobSpan("j4", received=40, state="Error", assigned=41),
        JobSpan("j5", received=45, state="Waiting"),
    ]
    f = figures(run_of(workers, jobs))
    assert (f.jobs, f.completed, f.failed, f.unfinished) == (5, 3, 1, 1)
    assert f.delay.avg == pytest.approx(38 / 3)  # 12, 14, 12
    assert f.delay.p95 == pytest.approx(13.8) and f.delay.max == 14.0
    assert f.queueing.avg == pytest.approx((2 + 4 + 2) / 3)
    assert f.boot.avg == pytest.approx(3.0)
    assert f.reserved_core_seconds == pytest.approx(2 * 50 + 4 * 20)
    assert f.busy_core_seconds == pytest.approx(2 * 20 + 4 * 10)
    assert f.idle_core_seconds == pytest.approx(180 - 80)
    assert f.reserved_gb_seconds == pytest.approx(4 * 50 + 8 * 20)
    assert f.used_source == "busy workers" and f.node_cpu_util is None
    assert f.cpu_util.avg == pytest.approx(80 / (8 * 100))


def write(path: Path, events: list[dict[str, object]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return path


def test_a_crashed_run_counts_open_spans_until_its_last_event(tmp_path: Path) -> None:
    log = write(
        tmp_path / "tc-events-02.txt",
        [
            ev(0, "EV1", request_id="r1", input_video="v", bitrate=1000, speed="fast"),
            ev(1, "EV2", name="w1", worker_id="w1", flavor="small"),
            ev(3, "EV11", name="w1", worker_id="w1", node="n1", cpus=2, memory=4),
            ev(3.5, "EV3", request_id="r1", worker_id="w1", task_id="t1"),
            ev(4, "EV4", request_id="r1", worker_id="w1", task_id="t1"),
            ev(6, "EV1", request_id="r2", input_video="v", bitrate=1000, speed="fast"),
            ev(11, "EV5", request_id="r1", worker_id="w1", task_id="t1"),
        ],
        tail='{"time": "2024-05-01T12:00:1',
    )
    run = from_log(log)
    assert run.duration == pytest.approx(11.0)
    f = figures(run)
    assert (f.completed, f.failed, f.unfinished) == (0, 0, 2)
    assert math.isnan(f.delay.avg)
    assert f.reserved_core_seconds == pytest.approx(2 * 10)  # alive from 1 s to the end, 11 s
    assert f.busy_core_seconds == pytest.approx(2 * 7.5)  # busy from 3.5 s to the end


def test_used_comes_from_the_samples_when_there_are_some(tmp_path: Path) -> None:
    log = write(
        tmp_path / "tc-events-03.txt",
        [
            ev(0, "EV2", name="w1", worker_id="w1", flavor="small"),
            ev(10, "EV8", name="w1", worker_id="w1"),
        ],
    )
    samples = [
        {"time": ev(s, "")["time"], "kind": "process", "role": "worker", "worker_id": "w1",
         "host": "h", "cpu_cores": 1.5, "rss_gb": 0.5}
        for s in range(2, 6)
    ] + [
        {"time": ev(s, "")["time"], "kind": "node", "host": "h", "cpus": 4, "cpu_percent": 50.0,
         "memory_used_gb": 2.0, "memory_total_gb": 8.0}
        for s in range(0, 10)
    ]  # fmt: skip
    (tmp_path / "tc-events-03.samples.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in samples)
    )
    run = from_log(log)
    _, source = used_cores(run)
    assert source == "samples"
    f = figures(run)
    assert f.used_source == "samples"
    capacity = run.capacity_cpus  # no config: the peak of the workers seen, 2 cores
    assert f.cpu_util.avg == pytest.approx(1.5 * 4 / 10 / capacity)
    assert f.node_cpu_util is not None and f.node_cpu_util.avg == pytest.approx(0.5)
