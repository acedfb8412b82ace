"""The resource sampler, the controller's use of worker samples, and /metrics' collector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from dacirco.analytics.samples import read_samples, sample_pieces
from dacirco.api.metrics import registry_for
from dacirco.controller.errors import WorkerGone
from dacirco.controller.retention import delete_sample_pieces
from dacirco.controller.usage import Usage
from dacirco.protocol import SamplesReport, WorkerSample
from dacirco.sampling import NodeProbe, SampleFile, Sampler, TreeProbe, own_tree
from tests.unit.conftest import Make

BUSY = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def test_a_tree_probe_counts_the_cpu_of_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        spinner = psutil.Process(child.pid)
        cpu0, t0 = _cpu_seconds(spinner), time.monotonic()
        probe = own_tree("worker", "w1")
        time.sleep(0.6)
        with_children = probe.sample(time.time())
        # What the child really got over the same moment (less than a core on a busy machine).
        got = (_cpu_seconds(spinner) - cpu0) / (time.monotonic() - t0)
        alone = TreeProbe(probe.root.pid, "controller", children=False)
        time.sleep(0.6)
        without = alone.sample(time.time())
    finally:
        child.kill()
        child.wait()
    # The child spins; this process sleeps: the tree's figure is the child's, not ours.
    assert got > 0.05, "the child never ran"
    assert with_children["cpu_cores"] > 0.5 * got, (with_children, got)
    assert without["cpu_cores"] < 0.3, without
    assert with_children["worker_id"] == "w1" and with_children["kind"] == "process"
    assert with_children["rss_gb"] > without["rss_gb"] > 0


def test_a_node_sample_is_within_bounds_and_fits_the_protocol() -> None:
    probe = NodeProbe()
    record = probe.sample(time.time())
    assert 0 <= record["cpu_percent"] <= 100
    assert 0 < record["memory_used_gb"] <= record["memory_total_gb"]
    WorkerSample.model_validate(record)  # what a worker sends is what the protocol accepts


def test_the_sampler_thread_writes_and_measures_its_own_cost(tmp_path: Path) -> None:
    out = SampleFile(tmp_path / "s.jsonl")
    sampler = Sampler([NodeProbe(), own_tree("controller")], out.write, interval=0.05).start()
    time.sleep(0.5)
    sampler.stop()
    out.close()
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert sampler.count >= 3 and len(lines) == 2 * sampler.count
    assert 0 < sampler.cost < 0.5


@pytest.mark.parametrize(
    "bad",
    [{"cpu_percent": 101.0}, {"cpu_cores": -1.0}, {"kind": "disk"}, {"host": "h" * 300}],
)
def test_samples_out_of_bounds_are_refused_with_the_field_named(bad: dict) -> None:
    sample = {"time": "2026-01-01T00:00:00+00:00", "kind": "node", "host": "h", **bad}
    with pytest.raises(ValidationError) as err:
        SamplesReport.model_validate({"samples": [sample]})
    assert next(iter(bad)) in str(err.value)


def test_worker_samples_are_written_as_that_workers_own(tmp_path: Path) -> None:
    usage = Usage(tmp_path / "run.samples.jsonl", interval=0)
    sample = WorkerSample(
        time="2026-01-01T00:00:00.300000+00:00",
        kind="process",
        host="h",
        cpu_cores=1.5,
        rss_gb=0.25,
    )
    node = WorkerSample(
        time="2026-01-01T00:00:00.300000+00:00", kind="node", host="h", cpus=2, cpu_percent=80.0,
        memory_used_gb=3.0, memory_total_gb=8.0,
    )  # fmt: skip
    usage.add("w-real", [sample, node])
    usage.close()
    samples = read_samples(tmp_path / "run.samples.jsonl")
    assert samples is not None and samples.skipped == 0
    assert samples.worker_cpu_cores["w-real"].values == [1.5]
    assert samples.node_cpu_percent["h"].values == [80.0]
    assert usage.workers["w-real"].cpu_cores == 1.5


def test_node_samples_of_one_host_count_once_per_second(tmp_path: Path) -> None:
    path = tmp_path / "x.samples.jsonl"
    rows = [
        {"time": f"2026-01-01T00:00:0{s}.{f}00000+00:00", "kind": "node", "host": "h", "cpus": 2,
         "cpu_percent": v, "memory_used_gb": 1.0, "memory_total_gb": 8.0}
        for s, f, v in ((1, 1, 10.0), (1, 6, 30.0), (2, 2, 50.0))
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    samples = read_samples(path)
    assert samples is not None and samples.skipped == 1
    assert samples.node_cpu_percent["h"].values == [20.0, 50.0]


async def test_samples_of_a_stopped_worker_are_refused_and_metrics_match_state(
    make: Make, tmp_path: Path
) -> None:
    h = make("minimize-workers")
    h.controller.usage = Usage(tmp_path / "m.samples.jsonl", interval=0)
    _, worker, task = await h.assigned()
    await h.submit()  # a second job waits: max_workers 2, a second worker boots
    await h.controller.reconcile()
    report = SamplesReport(
        samples=[
            WorkerSample(
                time="2026-01-01T00:00:00+00:00", kind="process", host="h", cpu_cores=1.25,
                rss_gb=0.5,
            )
        ]
    )  # fmt: skip
    h.controller.record_samples(h.auth(worker.id), report)
    text = generate_latest(registry_for(h.controller)).decode()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("dacirco_jobs", (("state", "Started"),))] == 1
    assert values[("dacirco_jobs", (("state", "Waiting"),))] == 1
    assert values[("dacirco_queue_length", ())] == 1
    assert values[("dacirco_workers", (("flavor", "small"), ("state", "Busy")))] == 1
    assert values[("dacirco_workers", (("flavor", "small"), ("state", "Booting")))] == 1
    assert values[("dacirco_reserved_cores", ())] == 4
    assert values[("dacirco_used_cores", ())] == 1.25
    assert values[("dacirco_capacity_cores", ())] == 8

    await h.finish(worker, task)
    await h.runtime.crash(worker.id)  # its process dies: the worker is stopped
    text = generate_latest(registry_for(h.controller)).decode()
    assert "dacirco_job_delay_seconds_count 1.0" in text
    assert "dacirco_used_cores 0.0" in text  # a stopped worker uses nothing
    with pytest.raises(WorkerGone):
        h.controller.record_samples(worker, report)


def _node(second: int, cpu: float) -> dict[str, object]:
    return {
        "time": f"2026-01-01T00:00:{second:02d}+00:00",
        "kind": "node",
        "host": "h",
        "cpus": 2,
        "cpu_percent": cpu,
        "memory_used_gb": 1.0,
        "memory_total_gb": 8.0,
    }


def test_a_samples_file_is_cut_in_pieces_that_read_as_one(tmp_path: Path) -> None:
    path = tmp_path / "run.samples.jsonl"
    out = SampleFile(path, max_bytes=300)
    for s in range(12):
        out.write([_node(s, float(s))])
    out.close()
    pieces = sample_pieces(path)
    assert [n for n, _ in pieces] == list(range(1, len(pieces) + 1)) and len(pieces) >= 3
    assert pieces[1][1].name == "run.samples.jsonl.002"
    assert all(p.stat().st_size < 300 + 200 for _, p in pieces)  # one write past the size
    samples = read_samples(path)
    assert samples is not None and samples.skipped == 0
    assert samples.node_cpu_percent["h"].values == [float(s) for s in range(12)]
    # Reopened (a controller started again), it goes on in its last piece.
    again = SampleFile(path, max_bytes=300)
    assert again.current == pieces[-1][1]
    again.write([_node(12, 12.0)])
    again.close()
    assert read_samples(path).node_cpu_percent["h"].values[-1] == 12.0  # type: ignore[union-attr]


def test_samples_read_from_the_pieces_left_when_the_first_ones_are_gone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.samples.jsonl"
    out = SampleFile(path, max_bytes=1)  # a piece a write
    for s in range(6):
        out.write([_node(s, float(s))])
    out.close()
    old = time.time() - 3600
    for _, piece in sample_pieces(path)[:2]:
        os.utime(piece, (old, old))
    assert delete_sample_pieces(out, time.time() - 60) == 2
    assert not path.exists() and sample_pieces(path)[0][0] == 3
    samples = read_samples(path)
    assert samples is not None
    assert samples.node_cpu_percent["h"].values == [float(s) for s in range(2, 6)]
    # The piece being written is never deleted, however old.
    os.utime(out.current, (old, old))
    assert delete_sample_pieces(out, time.time()) == 3  # pieces 3, 4 and 5
    assert [p for _, p in sample_pieces(path)] == [out.current]
    (tmp_path / "run.samples.jsonl.7").write_text("not a piece: two digits")
    assert [p for _, p in sample_pieces(path)] == [out.current]
