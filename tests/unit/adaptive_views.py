"""Hand-made views for adaptive's tests: jobs, workers and recent statistics at ``NOW``,
on one node of a reference-like data center (20 s boots, one second of work a second)."""

from __future__ import annotations

from types import MappingProxyType

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import ClusterView, JobView, Limits, NodeView, WorkerView
from dacirco.policies.stats import RecentStats

NOW = 1000.0
P1080_30 = 1920 * 1080 * 30


def job(
    i: int, duration: float = 10.0, speed: str = "ultrafast", frames: int | None = 300
) -> JobView:
    return JobView(
        id=f"j{i}",
        id_video="bbb_9.mp4",
        bitrate=1000,
        speed=speed,
        received_at=NOW,
        input_duration=duration,
        input_pixel_rate=P1080_30,
        frames=frames,
    )


def idle(i: int, since: float = NOW - 1) -> WorkerView:
    return WorkerView(f"w{i}", FLAVORS["tiny"], WorkerState.IDLE, NOW - 500, "n0", idle_since=since)


def stats(
    rate: float, works: tuple[float, ...] = (10.0,) * 9, last: float | None = NOW
) -> RecentStats:
    return RecentStats(
        rate_short=rate,
        rate_long=rate,
        arrivals=100,
        last_arrival=last,
        boot_seconds=20.0,
        seconds_per_work=MappingProxyType({"tiny": 1.0}),
        recent_work=works,
    )


def view(waiting=(), workers=(), st=None, split=True, cores=18) -> ClusterView:  # type: ignore[no-untyped-def]
    used = sum(w.flavor.cpus for w in workers)
    return ClusterView(
        now=NOW,
        waiting=tuple(waiting),
        workers=tuple(workers),
        nodes=(NodeView("n0", cores, 64.0, cores - used, 64.0 - 2 * used),),
        limits=Limits(max_workers=cores, can_split=split),
        stats=st or RecentStats(),
    )


def busy(i: int, left: float) -> WorkerView:
    """A busy worker whose 10 s task ends in ``left`` seconds (one second of work a second)."""
    return WorkerView(
        f"b{i}", FLAVORS["tiny"], WorkerState.BUSY, NOW - 500, "n0",
        job_id=f"r{i}", busy_since=NOW - (10.0 - left), job_work=10.0,
    )  # fmt: skip
