"""The observations every view carries: arrival rates over two windows, boots, task times."""

from __future__ import annotations

import pytest

from dacirco.policies.stats import LONG_WINDOW, SHORT_WINDOW, StatsTracker


def test_rates_count_the_arrivals_of_each_window() -> None:
    t = StatsTracker()
    for i in range(120):  # one request every 5 s for 600 s
        t.arrival(i * 5.0, input_seconds=10.0)
    s = t.snapshot(600.0)
    assert s.rate_long == pytest.approx(119 / LONG_WINDOW, rel=0.02)
    assert s.rate_short == pytest.approx(12 / SHORT_WINDOW)
    assert s.arrivals == 120 and s.last_arrival == 595.0
    assert s.mean_input_seconds == 10.0
    # Nothing for a long while: both rates fall to zero, the count stays.
    quiet = t.snapshot(600.0 + LONG_WINDOW + 1)
    assert quiet.rate_short == quiet.rate_long == 0.0 and quiet.arrivals == 120


def test_a_young_run_is_measured_over_its_own_length() -> None:
    t = StatsTracker()
    for i in range(10):
        t.arrival(100.0 + i)
    # 10 arrivals in the 10 s since the first: 1 per second, not 10 per minute.
    assert t.snapshot(110.0).rate_short == pytest.approx(1.0)


def test_boots_and_task_times_are_averaged_per_flavor() -> None:
    t = StatsTracker()
    assert t.snapshot(0.0).boot_seconds is None
    t.booted(16.0)
    t.booted(18.0)
    t.task_done("small", 10.0, 12.0)
    t.task_done("small", 20.0, 16.0)
    t.task_done("medium", 10.0, 7.0)
    t.task_done("tiny", 0.0, 5.0)  # unknown work: not counted
    s = t.snapshot(1.0)
    assert s.boot_seconds == 17.0
    assert dict(s.seconds_per_work) == {"small": pytest.approx(1.0), "medium": 0.7}


def test_a_long_run_keeps_memory_bounded() -> None:
    t = StatsTracker()
    for i in range(100_000):
        t.arrival(float(i))
        if i % 1000 == 0:
            t.snapshot(float(i))
    t.snapshot(100_000.0)
    assert len(t._arrivals) < 10_000
    assert t.snapshot(100_000.0).rate_long == pytest.approx(1.0, rel=0.01)


def test_maker_builds_the_same_frozen_object_as_its_class():
    from dataclasses import FrozenInstanceError

    import pytest

    from dacirco.domain import FLAVORS, WorkerState
    from dacirco.policies.base import ClusterView, JobView, WorkerView
    from dacirco.policies.stats import RecentStats, maker

    cases = [
        (JobView, ("j", "bbb_1.mp4", 900, "fast", 3.0, 1, 10.0, 5, 2e6, "chunk", "p", 250, 2, 1.0)),
        (
            WorkerView,
            ("w", FLAVORS["tiny"], WorkerState.BUSY, 1.0, "n", None, "j", 2.0, 3.5, True, "chunk"),
        ),
        (RecentStats, (0.1, 0.2, 3, 4.0, 5.0, {"tiny": 0.5}, 6.0, (1.0, 2.0), None)),
        (ClusterView, (7.0, (), (), (), None, RecentStats())),
    ]
    for cls, values in cases:
        made, plain = maker(cls)(*values), cls(*values)
        assert made == plain and vars(made) == vars(plain)
        with pytest.raises(FrozenInstanceError):
            made.id = "x"  # type: ignore[misc,union-attr]
    with pytest.raises(TypeError):  # as the class's own constructor
        maker(JobView)("too", "few")
