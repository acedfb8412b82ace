"""Figures from sparse samples and from logs without the nodes' capacity."""

from __future__ import annotations

import pytest

from dacirco.analytics.figures import figures
from dacirco.analytics.run import JobSpan, NodeCapacity, RunData, WorkerSpan, _nodes
from dacirco.analytics.samples import Samples, Series


def test_a_sample_every_two_seconds_stands_for_both_seconds() -> None:
    w = WorkerSpan("w", "w", cpus=2, memory_gb=4, created=0, registered=0, destroyed=100)
    times = [float(t) for t in range(2, 101, 2)]
    samples = Samples(
        node_cpu_percent={}, node_memory_gb={}, node_cpus={}, node_memory_total_gb={},
        worker_cpu_cores={"w": Series(times, [1.0] * len(times))},
        worker_rss_gb={"w": Series(times, [0.5] * len(times))},
        controller_cpu_cores=Series(),
    )  # fmt: skip
    run = RunData("r", 0, 100, [NodeCapacity("n", 2, 4)], [w], [JobSpan("j", 0)], samples)
    f = figures(run)
    assert f.used_source == "samples"
    assert f.cpu_util.avg == pytest.approx(0.5, abs=0.02)  # one core of two, all along


def test_without_the_config_a_node_is_as_big_as_its_workers_at_once() -> None:
    one_after_another = [
        WorkerSpan(f"w{i}", f"w{i}", 2, 4, created=10 * i, destroyed=10 * i + 5, node="h")
        for i in range(10)
    ]
    (node,) = _nodes({}, one_after_another)
    assert (node.cpus, node.memory_gb) == (2, 4)
    together = [WorkerSpan(f"w{i}", f"w{i}", 2, 4, created=0, node="h") for i in range(3)]
    assert _nodes({}, together)[0].cpus == 6
