"""right-size, decision by decision, on hand-made views."""

from __future__ import annotations

import math
from types import MappingProxyType

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import (
    Assign,
    ClusterView,
    JobView,
    Limits,
    NodeView,
    PolicyParams,
    StartWorker,
    WorkerView,
    make_policy,
)
from dacirco.policies.right_size import RightSize, work
from dacirco.policies.stats import RecentStats
from dacirco.policies.work import FAST_COST, work_units

NOW = 1000.0
P1080_25 = 1920 * 1080 * 25


def job(i: int, duration: float = 10.0, speed: str = "ultrafast", age: float = 0.0) -> JobView:
    return JobView(
        id=f"j{i}",
        id_video="bbb_9.mp4",
        bitrate=1000,
        speed=speed,
        received_at=NOW - age,
        input_duration=duration,
        input_pixel_rate=P1080_25,
    )


def worker(i: int, flavor: str, state: WorkerState, node: str = "n0", **kw: object) -> WorkerView:
    return WorkerView(f"w{i}", FLAVORS[flavor], state, NOW - 500, node, **kw)  # type: ignore[arg-type]


def node(name: str, free: float, cpus: int = 6) -> NodeView:
    return NodeView(name, cpus, 16.0, free, free * 16.0 / cpus)


def view(waiting=(), workers=(), nodes=None, stats=None, max_workers=20) -> ClusterView:  # type: ignore[no-untyped-def]
    used = sum(w.flavor.cpus for w in workers)
    return ClusterView(
        now=NOW,
        waiting=tuple(waiting),
        workers=tuple(workers),
        nodes=tuple(nodes) if nodes is not None else (node("n0", 6 - used),),
        limits=Limits(max_workers=max_workers),
        stats=stats or RecentStats(),
    )


def test_work_grows_with_length_size_and_preset() -> None:
    assert work_units(60, P1080_25, "fast") == 60 * 25 / 30 * FAST_COST
    assert work_units(None, P1080_25, "fast") == 0.0
    assert work(job(0, 10)) < work(job(1, 60)) < work(job(2, 60, "fast"))


def test_short_jobs_get_the_smallest_flavor_and_long_ones_the_largest() -> None:
    policy = RightSize()
    d = policy.decide(view([job(0, 10)]))
    assert d.start == (StartWorker("tiny", "n0"),)
    d = policy.decide(view([job(1, 60, "fast")]))
    assert d.start == (StartWorker("medium", "n0"),)


def test_the_longest_job_is_served_first_and_ties_age() -> None:
    idle = [worker(1, "medium", WorkerState.IDLE, idle_since=NOW - 5)]
    short_old, long_new = job(0, 10, age=20), job(1, 60, "fast")
    d = RightSize().decide(view([short_old, long_new], idle))
    assert d.assign == (Assign("j1", "w1"),)  # the long one, though it came last
    d = RightSize(order="fifo").decide(view([short_old, long_new], idle))
    assert d.assign[0].job_id == "j0"
    # Aging: a short job that waited long enough goes before a long one that just came.
    very_old = job(2, 10, age=200)
    d = RightSize().decide(view([very_old, long_new], idle))
    assert d.assign == (Assign("j2", "w1"),)


def test_the_most_recently_idle_worker_serves_and_surplus_idle_ones_stop() -> None:
    old = worker(1, "tiny", WorkerState.IDLE, idle_since=NOW - 30)
    recent = worker(2, "tiny", WorkerState.IDLE, idle_since=NOW - 1)
    d = RightSize().decide(view([job(0)], [old, recent]))
    assert d.assign == (Assign("j0", "w2"),)
    assert [s.worker_id for s in d.stop] == ["w1"]  # nothing expected: no pool kept


def test_a_pool_is_kept_for_the_requests_expected_during_a_boot() -> None:
    idle = [worker(i, "tiny", WorkerState.IDLE, idle_since=NOW - 10 * i) for i in range(1, 5)]
    stats = RecentStats(rate_short=0.1, rate_long=0.05, boot_seconds=20.0)  # 2 per boot
    d = RightSize(keep_factor=1.0).decide(view([], idle, stats=stats))
    assert sorted(s.worker_id for s in d.stop) == ["w3", "w4"]  # the two oldest go
    assert d.wake_at is None  # the target moves with time: ask again at every tick


def test_a_job_waits_for_a_busy_worker_due_before_a_boot() -> None:
    stats = RecentStats(boot_seconds=20.0, seconds_per_work=MappingProxyType({"tiny": 1.0}))
    # 10 units of work at 1 s each, started 5 s ago: due in 5 s, sooner than a 20 s boot.
    busy = worker(1, "tiny", WorkerState.BUSY, job_id="x", busy_since=NOW - 5, job_work=10.0)
    d = RightSize().decide(view([job(0)], [busy], stats=stats))
    assert d.start == ()
    # Due in 95 s: boot a new one.
    slow = worker(1, "tiny", WorkerState.BUSY, job_id="x", busy_since=NOW - 5, job_work=100.0)
    d = RightSize().decide(view([job(0)], [slow], stats=stats))
    assert d.start == (StartWorker("tiny", "n0"),)
    # Nothing measured yet for tiny: no prediction, a worker is started.
    d = RightSize().decide(view([job(0)], [busy]))
    assert len(d.start) == 1


def test_a_long_job_takes_half_its_cores_when_its_flavor_fits_nowhere() -> None:
    full = [node("n0", 2), node("n1", 3)]
    d = RightSize().decide(view([job(0, 60, "fast")], nodes=full))
    assert d.start == (StartWorker("small", "n0"),)  # the fullest node that holds it
    # After its patience, it takes whatever is idle.
    tiny = worker(1, "tiny", WorkerState.IDLE, idle_since=NOW - 1)
    d = RightSize().decide(view([job(0, 60, "fast", age=5)], [tiny], nodes=full))
    assert d.assign == () and len(d.start) == 1
    d = RightSize().decide(view([job(0, 60, "fast", age=31)], [tiny], nodes=full))
    assert d.assign == (Assign("j0", "w1"),)


def test_new_workers_are_packed_on_the_fullest_node() -> None:
    nodes = [node("n0", 6), node("n1", 2), node("n2", 4)]
    d = RightSize().decide(view([job(0), job(1), job(2)], nodes=nodes))
    assert [s.node for s in d.start] == ["n1", "n1", "n2"]


def test_nothing_to_do_says_so_until_something_happens() -> None:
    busy = worker(1, "tiny", WorkerState.BUSY, job_id="x")
    d = RightSize().decide(view([], [busy]))
    assert d.empty and d.wake_at == math.inf


def test_registered_under_its_name() -> None:
    policy = make_policy("right-size", PolicyParams(max_idle_time=30))
    assert isinstance(policy, RightSize) and policy.max_idle_time == 30


def test_a_merge_is_no_encoding_work_and_takes_any_worker() -> None:
    merge = JobView(
        id="j#merge", id_video="bbb_9.mp4", bitrate=1000, speed="fast", received_at=NOW,
        input_duration=60.0, input_pixel_rate=P1080_25, part="merge", parent_id="j",
    )  # fmt: skip
    assert work(merge) == 0.0
    tiny = worker(1, "tiny", WorkerState.IDLE, idle_since=NOW - 1)
    d = RightSize().decide(view([merge], [tiny]))
    assert d.assign == (Assign("j#merge", "w1"),) and d.start == () and d.stop == ()


def test_an_overcommitted_node_does_not_hide_room_elsewhere() -> None:
    from dacirco.policies.common import fits

    over = ClusterView(now=NOW, nodes=(node("a", -4), node("b", 4)), limits=Limits(10))
    assert fits(over, FLAVORS["small"]) == 2
