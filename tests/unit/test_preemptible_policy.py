"""The policy sees the difference: opportunistic capacity is free but preemptible, so
grace-period and adaptive give it chunks and short jobs first and keep long whole jobs on
our own nodes (``policies/preemptible.py``)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import (
    Assign,
    ClusterView,
    JobView,
    Limits,
    NodeView,
    StartWorker,
    WorkerView,
)
from dacirco.policies.grace_period import GracePeriod
from dacirco.policies.stats import RecentStats

NOW = 1000.0
OURS = NodeView("compute1", 6, 16.0, 6, 16.0)
IDLE_DESK = NodeView("idle-desk1", 4, 8.0, 4, 8.0, opportunistic=True)


def job(i: int, seconds: float, part: str | None = None) -> JobView:
    return JobView(
        id=f"j{i}" if part is None else f"p{i}#{i}",
        id_video="bbb_9.mp4",
        bitrate=1000,
        speed="ultrafast",
        received_at=NOW + i,
        input_duration=seconds,
        part=part,
        parent_id=None if part is None else f"p{i}",
    )


def idle(wid: str, pilot: bool, flavor: str = "small") -> WorkerView:
    node = IDLE_DESK.name if pilot else OURS.name
    return WorkerView(
        wid, FLAVORS[flavor], WorkerState.IDLE, NOW - 50, node, NOW - 10, preemptible=pilot
    )


def view(waiting, workers=(), nodes=(OURS, IDLE_DESK), split=False) -> ClusterView:  # type: ignore[no-untyped-def]
    stats = RecentStats(seconds_per_work=MappingProxyType({"tiny": 1.0}), boot_seconds=5.0)
    limits = Limits(max_workers=10, default_flavor="small", can_split=split)
    return ClusterView(NOW, tuple(waiting), tuple(workers), tuple(nodes), limits, stats)


LONG, SHORT = 1800.0, 20.0  # seconds of movie


@pytest.mark.parametrize("policy", [GracePeriod(), Adaptive()], ids=lambda p: p.name)
def test_chunks_and_short_jobs_start_on_the_idle_desk_long_jobs_on_ours(policy) -> None:  # type: ignore[no-untyped-def]
    v = view([job(1, LONG), job(2, SHORT), job(3, 4.0, part="chunk")])
    starts = policy.decide(v).start
    assert len(starts) == 3
    on_ours = [s for s in starts if s.node == OURS.name]
    on_desk = [s for s in starts if s.node == IDLE_DESK.name]
    assert (len(on_ours), len(on_desk)) == (1, 2)


@pytest.mark.parametrize("policy", [GracePeriod(), Adaptive()], ids=lambda p: p.name)
def test_a_long_job_never_takes_an_idle_pilot(policy) -> None:  # type: ignore[no-untyped-def]
    flavor = "tiny" if isinstance(policy, Adaptive) else "small"
    pilot, ours = idle("wp", True, flavor), idle("wo", False, flavor)
    # The long job first in the queue: it takes our worker, the short one the pilot.
    d = policy.decide(view([job(1, LONG), job(2, SHORT)], [pilot, ours]))
    assert set(d.assign) == {Assign("j1", "wo"), Assign("j2", "wp")}
    # Only a pilot idle: the long job waits for a new worker of ours, never on the pilot.
    d = policy.decide(view([job(1, LONG)], [pilot]))
    assert d.assign == ()
    assert d.start == (StartWorker(flavor, OURS.name),)


def test_a_short_job_takes_an_idle_pilot_before_our_idle_worker() -> None:
    d = GracePeriod().decide(view([job(2, SHORT)], [idle("wo", False), idle("wp", True)]))
    assert d.assign == (Assign("j2", "wp"),)


def test_with_no_room_on_ours_a_long_job_waits() -> None:
    full = NodeView("compute1", 6, 16.0, 0, 0.0)
    d = GracePeriod().decide(view([job(1, LONG)], nodes=(full, IDLE_DESK)))
    assert d.start == () and d.assign == ()


def test_the_idle_desk_full_short_jobs_go_to_ours() -> None:
    desk_full = NodeView("idle-desk1", 4, 8.0, 0, 0.0, opportunistic=True)
    d = GracePeriod().decide(view([job(2, SHORT)], nodes=(OURS, desk_full)))
    assert d.start == (StartWorker("small", OURS.name),)


def test_without_opportunistic_nodes_nothing_changes() -> None:
    v = view([job(1, LONG), job(2, SHORT)], nodes=(OURS,))
    assert GracePeriod().decide(v).start == (StartWorker("small"), StartWorker("small"))
