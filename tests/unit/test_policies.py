"""The classic policies on hand-built views: pure, milliseconds."""

from __future__ import annotations

import pytest

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import (
    Assign,
    ClusterView,
    JobView,
    Limits,
    NodeView,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    available,
    make_policy,
)

SMALL = FLAVORS["small"]


def job(i: int, at: float = 0.0) -> JobView:
    return JobView(id=f"j{i}", id_video="bbb_1.mp4", bitrate=1000, speed="fast", received_at=at)


def worker(i: int, state: WorkerState, idle_since: float | None = None) -> WorkerView:
    return WorkerView(id=f"w{i}", flavor=SMALL, state=state, created_at=0.0, idle_since=idle_since)


def view(now=100.0, waiting=(), workers=(), max_workers=2, nodes=()) -> ClusterView:
    return ClusterView(
        now=now,
        waiting=tuple(waiting),
        workers=tuple(workers),
        nodes=tuple(nodes),
        limits=Limits(max_workers=max_workers),
    )


@pytest.fixture(params=["minimize-workers", "grace-period"])
def policy(request):
    return make_policy(request.param, PolicyParams(max_idle_time=60))


def test_registry_lists_both_and_names_unknown():
    assert {"minimize-workers", "grace-period"} <= set(available())
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        make_policy("nope")


def test_first_request_starts_one_worker(policy):
    d = policy.decide(view(waiting=[job(1)]))
    assert d.start == (StartWorker("small"),)
    assert d.assign == () and d.stop == ()


def test_booting_worker_covers_a_waiting_job(policy):
    d = policy.decide(view(waiting=[job(1)], workers=[worker(1, WorkerState.BOOTING)]))
    assert d.empty


def test_starts_are_clamped_to_max_workers(policy):
    d = policy.decide(view(waiting=[job(i) for i in range(5)], max_workers=2))
    assert len(d.start) == 2
    busy = [worker(1, WorkerState.BUSY), worker(2, WorkerState.BUSY)]
    assert policy.decide(view(waiting=[job(9)], workers=busy)).start == ()


def test_starts_are_clamped_to_node_capacity(policy):
    node = NodeView("n1", cpus=6, memory_gb=16, free_cpus=4, free_memory_gb=16)
    d = policy.decide(view(waiting=[job(i) for i in range(5)], max_workers=10, nodes=[node]))
    assert len(d.start) == 2  # 4 free cores / 2 cores per small worker


def test_fifo_the_oldest_job_gets_the_longest_idle_worker(policy):
    d = policy.decide(
        view(
            waiting=[job(1, at=1), job(2, at=2)],
            workers=[worker(1, WorkerState.IDLE, 95.0), worker(2, WorkerState.IDLE, 50.0)],
        )
    )
    assert d.assign == (Assign("j1", "w2"), Assign("j2", "w1"))
    assert d.start == () and d.stop == ()


def test_an_idle_worker_is_never_stopped_while_a_job_waits(policy):
    # The classic starvation fault: the worker idle for ages must take the job, not be stopped.
    d = policy.decide(view(now=1000, waiting=[job(1)], workers=[worker(1, WorkerState.IDLE, 0)]))
    assert d.assign == (Assign("j1", "w1"),)
    assert d.stop == ()


def test_a_waiting_job_gets_a_worker_when_a_busy_one_is_lost(policy):
    # max_workers reached by a busy worker; once it is gone the waiting job gets a new one.
    assert policy.decide(
        view(waiting=[job(1)], workers=[worker(1, WorkerState.BUSY)], max_workers=1)
    ).empty
    d = policy.decide(view(waiting=[job(1)], workers=[], max_workers=1))
    assert d.start == (StartWorker("small"),)


def test_minimize_workers_stops_an_idle_worker_at_once():
    p = make_policy("minimize-workers")
    d = p.decide(view(now=10.0, workers=[worker(1, WorkerState.IDLE, 10.0)]))
    assert d.stop == (StopWorker("w1", "idle with nothing queued"),)


def test_grace_period_keeps_an_idle_worker_until_max_idle_time():
    p = make_policy("grace-period", PolicyParams(max_idle_time=60))
    idle = [worker(1, WorkerState.IDLE, 10.0)]
    assert p.decide(view(now=69.9, workers=idle)).empty
    d = p.decide(view(now=70.0, workers=idle))
    assert [s.worker_id for s in d.stop] == ["w1"]


def test_busy_and_booting_workers_are_never_stopped(policy):
    workers = [worker(1, WorkerState.BUSY), worker(2, WorkerState.BOOTING)]
    assert policy.decide(view(now=10_000, workers=workers)).stop == ()


def test_policies_are_pure(policy):
    v = view(waiting=[job(1), job(2)], workers=[worker(1, WorkerState.IDLE, 3.0)])
    assert policy.decide(v) == policy.decide(v)
