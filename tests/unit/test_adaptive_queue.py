"""adaptive's plan of the queue, decision by decision on hand-made views: the chunks each
job is split in, the new workers its tasks need, a queue drained with no rise forecast,
merges first."""

from __future__ import annotations

from dataclasses import replace

from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import Limits, NodeView, WorkerView
from dacirco.policies.chunk_plan import Plan, split_soonest
from dacirco.policies.season import BIN, Season
from dacirco.policies.stats import RecentStats

from .adaptive_views import busy, idle, job, stats, view


def test_a_job_is_split_in_chunks_shorter_than_a_typical_one() -> None:
    # The median recent job lasts 10 s on one core: chunks of 7.5 s (3/4 of it). A 40 s job
    # would make six: five, the most.
    v = view([job(1, duration=40.0)], st=stats(0.1))
    d = Adaptive().decide(v)
    assert [(s.job_id, s.chunks) for s in d.split] == [("j1", 5)]
    assert all(s.flavor == "tiny" for s in d.start)
    assert [(s.job_id, s.chunks) for s in Adaptive(max_chunks=8).decide(v).split] == [("j1", 6)]
    # A typical job goes in two; one no longer than a chunk, or without splitting: whole.
    typical = Adaptive().decide(view([job(1, duration=10.0)], st=stats(0.1)))
    assert [(s.job_id, s.chunks) for s in typical.split] == [("j1", 2)]
    assert Adaptive().decide(view([job(1, duration=7.5)], st=stats(0.1))).split == ()
    assert Adaptive().decide(view([job(1, duration=40.0)], st=stats(0.1), split=False)).split == ()


def test_a_job_gets_the_chunks_that_end_it_soonest() -> None:
    """A 40 s job asks for four chunks of 10 s. With two idle workers and two more due in
    5 s, four end it at 15 s; with only the two idle ones (the others a 20 s boot away),
    two chunks end it at 20 s where four would end at 30 s. (Chunks of a typical job's length
    here, at most eight: ``piece_share=1``, ``max_chunks=8``.)"""
    policy = Adaptive(piece_share=1.0, max_chunks=8)
    long_job, two = [job(1, duration=40.0)], [idle(1), idle(2)]

    def chunks(workers: list[WorkerView]) -> list[tuple[str, int]]:
        return [
            (s.job_id, s.chunks) for s in policy.decide(view(long_job, workers, stats(0.1))).split
        ]

    assert chunks([*two, busy(3, 5.0), busy(4, 5.0)]) == [("j1", 4)]
    assert chunks(two) == [("j1", 2)]
    assert chunks([*two, busy(3, 15.0), busy(4, 15.0)]) == [("j1", 2)]
    # A worker busy for long is not waited for when a new one is up sooner: a 60 s job
    # (two chunks of the typical 30 s), one idle worker, one busy for 100 s, the boot 20 s:
    # two chunks, one on a new worker, end it at 50 s (whole: 60 s).
    typical = stats(0.1, works=(30.0,) * 9)
    mixed = view([job(1, duration=60.0)], [idle(1), busy(3, 100.0)], typical)
    assert [(s.job_id, s.chunks) for s in policy.decide(mixed).split] == [("j1", 2)]
    # No room for a new worker: the one idle worker runs the job whole.
    one = view(long_job, [idle(1)], stats(0.1), cores=1)
    assert one.room == 0 and policy.decide(one).split == ()
    # The jobs before it take the workers first: behind a 20 s whole job and two 10 s
    # chunks, with four idle workers, it gets the last one and those due after.
    ahead = [
        job(0, duration=20.0, frames=None),
        replace(job(5), id="j5#0", part="chunk", parent_id="j5"),
        replace(job(5), id="j5#1", part="chunk", parent_id="j5"),
        job(1, duration=40.0),
    ]
    crowded = view(ahead, [idle(i) for i in range(4)], stats(0.1))
    assert [(s.job_id, s.chunks) for s in policy.decide(crowded).split] == [("j1", 3)]


def test_the_queues_plan_counts_the_new_workers_its_chunks_need() -> None:
    """A 70 s job in seven chunks of 10 s, one idle worker, 20 s boots: the idle worker runs
    the chunks it can start within a boot (at 0, 10 and 20 s), new workers the four others;
    it ends at 30 s either way."""
    v = view([job(1, duration=70.0)], [idle(1)], stats(0.1))
    plan = split_soonest(v, 1.0, 20.0, len(v.workers) + v.room, lambda j: 7)
    assert [(s.job_id, s.chunks) for s in plan.splits] == [("j1", 7)]
    assert plan.started == 4
    # Twelve 5 s jobs, one idle worker, room for one more: the plan stops at the two tasks
    # the workers there may be take first; counting them all, the idle worker runs four
    # within a boot (at 0, 5, 10 and 15 s) and a new one is needed.
    queue = view([job(i, duration=5.0) for i in range(12)], [idle(1)], stats(0.1), cores=2)
    assert queue.room == 1
    assert split_soonest(queue, 1.0, 20.0, 2, lambda j: 1).started == 0
    assert split_soonest(queue, 1.0, 20.0, 2, lambda j: 1, count=True).started == 1
    # Nothing waiting: nothing to start; without splitting, each job one task.
    assert split_soonest(view(), 1.0, 20.0, 18, lambda j: 7) == Plan((), 0)
    whole = view([job(i, duration=30.0) for i in range(3)], [idle(1)], stats(0.1), split=False)
    assert split_soonest(whole, 1.0, 20.0, 18, lambda j: 7) == Plan((), 2)


def test_with_no_rise_forecast_the_queue_waits_for_the_workers_free_within_a_boot() -> None:
    """Between two bursts of a rhythm, a queue is drained by the workers there are: a task
    waits for the worker free first when it is free within a boot, even after other tasks;
    new workers only for the tasks none of them can start by then. Without the season the
    queue may be the start of a rise: every task but one per worker due counts, as before."""
    policy = Adaptive()
    counts = tuple(30 if (i * BIN) % 150.0 < 30.0 else 0 for i in range(100))
    season = Season(150.0, 0.0, counts, error=1.0, error_flat=5.0)
    quiet = stats(0.02, last=1250.0)
    lull = replace(view(), now=1260.0)
    assert season.rate(1260.0, 1280.0) == 0.0  # the next burst is at 1350 s
    # Two workers busy until 1262 s; jobs of 5 s each (one task), 20 s boots.
    due = [replace(busy(i, 2.0), busy_since=1252.0) for i in range(2)]

    def started(jobs: int, st: RecentStats) -> int:
        v = replace(lull, waiting=tuple(job(i, duration=5.0) for i in range(jobs)))
        v = replace(v, workers=tuple(due), stats=st)
        v = replace(v, nodes=(NodeView("n0", 18, 64.0, 16, 60.0),))
        assert v.waiting_count == jobs and len(v.busy) == 2
        return len(policy.decide(v).start)

    rhythm = replace(quiet, season=season)
    # Four tasks: each of the two takes two by 1272 s, within a boot.
    assert started(4, rhythm) == 0
    assert started(4, quiet) == 2  # four tasks, less the two workers due
    # Ten: each takes four by 1280 s (at 1262, 1267, 1272 and 1277 s): two new workers.
    assert started(10, rhythm) == 2
    assert started(10, quiet) == 8
    # Thirty, with room for two more workers only: the jobs beyond those the plan splits
    # are counted too, and the two are started.
    few = replace(lull, waiting=tuple(job(i, duration=5.0) for i in range(30)), stats=rhythm)
    few = replace(few, workers=tuple(due), nodes=(NodeView("n0", 4, 64.0, 2, 60.0),))
    few = replace(few, limits=Limits(max_workers=4, can_split=True))
    assert few.room == 2 and len(policy.decide(few).start) == 2


def test_merges_go_first() -> None:
    merge = replace(job(9), id="j9#merge", part="merge", parent_id="j9", frames=None)
    d = Adaptive().decide(view([job(1, frames=None), merge], [idle(1)], st=stats(0.01)))
    assert [a.job_id for a in d.assign] == ["j9#merge"]
