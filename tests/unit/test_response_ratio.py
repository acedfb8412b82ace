"""adaptive's order of a backlog (``policies/response_ratio.py``): when a backlog is one, the
order itself against a plain sort on random queues, and what adaptive assigns with it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import JobView
from dacirco.policies.response_ratio import backlogged, by_response_ratio
from dacirco.policies.work import view_work

from .adaptive_views import NOW, busy, idle, job, stats, view


def aged(i: int, duration: float | None, waited: float) -> JobView:
    return replace(job(i, duration=duration or 0.0, frames=None), received_at=NOW - waited)


def chunk(parent: int, k: int, duration: float, waited: float) -> JobView:
    whole = aged(parent, duration, waited)
    return replace(whole, id=f"j{parent}#{k}", part="chunk", parent_id=f"j{parent}")


def test_a_backlog_is_more_jobs_than_workers_that_can_take_one_within_a_boot() -> None:
    two = [aged(1, 10.0, 5.0), aged(2, 10.0, 1.0)]
    # Two cores: one idle worker, one busy for 30 s more (a boot is 20 s), no room.
    late = view(two, [idle(1), busy(2, 30.0)], stats(0.1), cores=2)
    assert backlogged(late, 1.0, 20.0)
    assert not backlogged(replace(late, waiting=tuple(two[:1])), 1.0, 20.0)
    # The busy one due within the boot takes the second job; room for a worker does too.
    assert not backlogged(view(two, [idle(1), busy(2, 5.0)], stats(0.1), cores=2), 1.0, 20.0)
    assert not backlogged(view(two, [idle(1)], stats(0.1), cores=2), 1.0, 20.0)


def test_adaptive_serves_a_backlog_by_response_ratio_and_a_queue_in_arrival_order() -> None:
    """One core, one idle worker, a 100 s job waiting for 10 s and a 5 s job for 1 s: the
    short one's ratio is (1 + 5) / 5 = 1.2, the long one's (10 + 100) / 100 = 1.1."""
    long_, short = aged(1, 100.0, 10.0), aged(2, 5.0, 1.0)
    policy = Adaptive()

    def assigned(waiting: list[JobView], cores: int = 1) -> list[str]:
        v = view(waiting, [idle(1)], stats(0.1), split=False, cores=cores)
        return [a.job_id for a in policy.decide(v).assign]

    assert assigned([long_, short]) == ["j2"]
    # Waiting 200 s, the long one's ratio is 3: it goes first (no job starves).
    assert assigned([replace(long_, received_at=NOW - 200.0), short]) == ["j1"]
    # With room for two more workers, no backlog: arrival order.
    assert assigned([long_, short], cores=3) == ["j1"]


def test_a_split_jobs_chunks_count_what_is_left_of_it_and_merges_come_first() -> None:
    whole = aged(9, 15.0, 30.0)
    merge = replace(chunk(7, 0, 0.0, 1.0), id="j7#merge", part="merge")
    two_left = [chunk(5, 1, 10.0, 30.0), chunk(5, 2, 10.0, 30.0)]
    v = view([*two_left, whole, merge], st=stats(0.1))
    # The chunks are 20 s of work together: ratio 2.5, the whole job's 3.
    assert [j.id for j in by_response_ratio(v, 1.0, 10.0)] == ["j7#merge", "j9", "j5#1", "j5#2"]
    # One chunk left, 10 s: ratio 4, before the whole job.
    v = view([two_left[1], whole], st=stats(0.1))
    assert [j.id for j in by_response_ratio(v, 1.0, 10.0)] == ["j5#2", "j9"]


def test_a_negative_priority_counts_no_wait_until_its_rank_and_unknown_lengths_are_typical():
    """Priority -1 at 60 s a level: both jobs rank a minute after now, the short one first.
    Counted from the rank, the waits would be negative and the long job's ratio the higher
    (0.39 against -11); each counts no wait (ratio 1), and they stay in rank order. A job of
    unknown length counts as ``typical``."""
    low = [
        replace(aged(2, 5.0, 0.0), rank=NOW + 60.0),
        replace(aged(1, 100.0, 0.0), rank=NOW + 61.0),
    ]
    assert [j.id for j in by_response_ratio(view(low, st=stats(0.1)), 1.0, 10.0)] == ["j2", "j1"]
    # Unknown length (10 s typical) waiting 10 s: ratio 2; a 5 s job waiting 4 s: 1.8.
    unknown = [aged(3, 5.0, 4.0), aged(4, None, 10.0)]
    v = view(unknown, st=stats(0.1))
    assert [j.id for j in by_response_ratio(v, 1.0, 10.0)] == ["j4", "j3"]
    # With 40 s typical, 1.25: after the 5 s job.
    assert [j.id for j in by_response_ratio(v, 1.0, 40.0)] == ["j3", "j4"]


def test_adaptive_counts_a_job_of_unknown_length_as_the_median_known_one() -> None:
    """Most recent requests of unknown length (work 0): the median known one, 30 s, stands
    for a job of unknown length, not 0 (which would put it before every known job). One core,
    one idle worker: a 5 s job waiting 5 s (ratio 2) goes before an unknown one waiting 10 s
    (ratio 1.33)."""
    recent = stats(0.1, works=(0.0,) * 6 + (30.0,) * 3)
    v = view([aged(4, None, 10.0), aged(3, 5.0, 5.0)], [idle(1)], recent, split=False, cores=1)
    assert [a.job_id for a in Adaptive().decide(v).assign] == ["j3"]


@st.composite
def queues(draw: st.DrawFn) -> list[JobView]:
    jobs: list[JobView] = []
    for i in range(draw(st.integers(0, 25))):
        waited = float(draw(st.integers(0, 300)))
        duration = draw(st.sampled_from([None, 2.0, 5.0, 10.0, 40.0]))
        kind = draw(st.sampled_from(["whole", "chunk", "merge"]))
        parent = draw(st.integers(90, 93))
        if kind == "whole":
            priority = draw(st.sampled_from([0, 0, 1, -1, -5]))
            job = aged(i, duration, waited)
            jobs.append(replace(job, priority=priority, rank=job.received_at - 60.0 * priority))
        elif kind == "chunk":
            jobs.append(chunk(parent, i, duration or 5.0, 300.0 - parent))
        else:
            jobs.append(replace(chunk(parent, i, 0.0, waited), part="merge"))
    return jobs


@settings(max_examples=300, deadline=None)
@given(queues(), st.booleans())
def test_the_order_is_a_sort_by_response_ratio(jobs: list[JobView], ordered: bool) -> None:
    """The lazy merge of the queue's kinds yields exactly the queue sorted by decreasing
    (wait + s) / s, merges first, ties in queue order; on a queue in arrival order (the
    core's) and on one that is not (each job then its own group)."""
    if ordered:
        jobs.sort(key=lambda j: j.ranked_at)
    v = view(jobs, st=stats(0.1))
    typical = 7.0
    left: dict[str, float] = {}
    for j in jobs:
        if j.part == "chunk":
            key = j.parent_id or j.id
            left[key] = left.get(key, 0.0) + view_work(j)

    def key(pair: tuple[int, JobView]) -> tuple[bool, float, int]:
        i, j = pair
        s = (left[j.parent_id or j.id] if j.part == "chunk" else view_work(j)) or typical
        ratio = (max(0.0, NOW - j.ranked_at) + s) / s
        return (j.part != "merge", 0.0 if j.part == "merge" else -ratio, i)

    want = [j.id for _, j in sorted(enumerate(jobs), key=key)]
    assert [j.id for j in by_response_ratio(v, 1.0, typical)] == want
