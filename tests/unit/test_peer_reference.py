"""The peer policies ``cvss``, ``covt`` and ``priority-dynamic`` decide as their plain
definitions (``reference_peers.py``: every waiting job sorted, the whole queue list-scheduled
again for each worker considered): on random views (priorities, parts, ties, views out of
queue order among them), on crowded views, and on every view of whole simulated runs (the
core's views, with their indexes), overloaded ones with queues of hundreds of jobs among
them."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import ClusterView, JobView, Limits, NodeView, Policy, WorkerView
from dacirco.policies.batch import Batch, misses_above
from dacirco.policies.covt import Covt
from dacirco.policies.cvss import Cvss
from dacirco.policies.priority_dynamic import PriorityDynamic
from dacirco.policies.provision import Room, Server, boot_seconds, completions, free_times
from dacirco.policies.stats import RecentStats
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs, parse_priorities, requests_for

from .reference_peers import PlainCovt, PlainCvss, PlainPriorityDynamic, plain_completions
from .test_policy_properties import views
from .test_policy_reference import Both

PAIRS: list[tuple[Policy, Policy]] = [
    (Cvss(), PlainCvss()),
    (Cvss(upper=0.0, lower=1.0, cycle=0.0), PlainCvss(upper=0.0, lower=1.0, cycle=0.0)),
    (Cvss(upper=0.9, lower=0.5, split_work=1.0), PlainCvss(upper=0.9, lower=0.5, split_work=1.0)),
    (Covt(), PlainCovt()),
    (Covt(target_wait=0.0, target_share=0.5), PlainCovt(target_wait=0.0, target_share=0.5)),
    (PriorityDynamic(), PlainPriorityDynamic()),
    (PriorityDynamic(aging=0.5), PlainPriorityDynamic(aging=0.5)),
    (PriorityDynamic(largest_first=True), PlainPriorityDynamic(largest_first=True)),
]


def same(view: ClusterView) -> None:
    for policy, plain in PAIRS:
        assert policy.decide(view) == plain.decide(view), (policy, view)


@settings(max_examples=300, deadline=None)
@given(
    views(),
    st.sampled_from(["whole", "chunks", "merges", "reversed", "priorities", "ties"]),
    st.booleans(),
    st.integers(0, 3),
)
def test_random_views(view: ClusterView, kind: str, split: bool, room: int) -> None:
    jobs = list(view.waiting)
    if kind == "chunks":
        jobs = [
            replace(j, part="chunk", parent_id="p", input_duration=(j.input_duration or 9) / 3)
            if i % 3 == 0
            else j
            for i, j in enumerate(jobs)
        ]
    elif kind == "merges":
        jobs = [
            replace(j, part="merge", parent_id="p") if i % 4 == 1 else j for i, j in enumerate(jobs)
        ]
    elif kind == "reversed":  # not in queue order, as a hand-made view may be
        jobs.reverse()
    elif kind == "priorities":  # ranks moved by priorities, the queue in rank order
        jobs = [replace(j, rank=j.received_at - 7.0 * (i % 3)) for i, j in enumerate(jobs)]
        jobs.sort(key=lambda j: j.ranked_at)
    elif kind == "ties":  # arrivals at the same time, queued out of id order
        jobs = [replace(j, received_at=view.now - 50.0 - i // 3) for i, j in enumerate(jobs)]
        jobs.sort(key=lambda j: j.ranked_at)
    jobs = [  # few lengths, so that jobs share a kind; some splittable
        replace(
            j,
            input_duration=(10.0, 600.0, 33.3)[i % 3] if j.input_duration else None,
            frames=j.frames or (900 if i % 2 else None),
        )
        for i, j in enumerate(jobs)
    ]
    limits = Limits(view.limits.max_workers + room, can_split=split)
    same(replace(view, waiting=tuple(jobs), limits=limits))


@pytest.mark.parametrize(
    ("policy", "plain", "max_workers", "speedup"),
    [
        (Cvss(), PlainCvss(), 8, 8),
        (Cvss(), PlainCvss(), 30, 30),
        (Covt(), PlainCovt(), 8, 8),
        (Covt(), PlainCovt(), 30, 30),
        (PriorityDynamic(), PlainPriorityDynamic(), 8, 8),
    ],
    ids=["cvss-8", "cvss-30", "covt-8", "covt-30", "priority-dynamic-8"],
)
def test_every_view_of_an_overloaded_run(
    policy: Policy, plain: Policy, max_workers: int, speedup: int
) -> None:
    models = Models.build("vm")
    jobs = make_jobs(
        requests_for("bursty", 300, 3), models, 3, priorities=parse_priorities("20:0.2,0:0.8")
    )
    jobs = [replace(j, arrival=j.arrival / speedup) for j in jobs]  # far beyond the capacity
    both = Both(policy, plain)
    config = SimConfig(algorithm=policy.name, max_workers=max_workers)
    nodes = DataCenter.uniform(max(2, max_workers // 3), 6, 16.0)
    Simulation(config, nodes, models, jobs, 3, policy=both).run()
    assert both.views > 300 and both.longest > 100


def crowded(seed: int, ranked: bool, ties: bool) -> ClusterView:
    """A queue of hundreds of jobs of a few kinds on busy and booting workers of every
    flavor, with room for more: the provisioner's rounds there."""
    rng = random.Random(seed)
    now = 1_000.0
    kinds = [(d, s) for d in (12.0, 60.0, 240.0) for s in ("ultrafast", "fast")]
    jobs = []
    for i in range(300):
        arrival = now - 200.0 + (i // 4 if ties else i * 0.6)
        d, speed = kinds[rng.randrange(len(kinds))]
        priority = rng.choice((0, 0, 5, -5)) if ranked else 0
        rank = arrival - 3.0 * priority if priority else None
        frames = int(d * 30) if rng.random() < 0.5 else None
        jobs.append(
            JobView(
                f"j{rng.randrange(10**6):06d}-{i}", f"m{d:g}", 3000, speed, arrival,
                input_duration=d, input_pixel_rate=1920 * 1080 * 30.0, frames=frames,
                priority=priority, rank=rank,
            )
        )  # fmt: skip
    jobs.sort(key=lambda j: j.ranked_at)
    workers = []
    for i in range(60):
        flavor = FLAVORS[("tiny", "small", "medium")[i % 3]]
        if i % 10 == 9:
            workers.append(WorkerView(f"w{i}", flavor, WorkerState.BOOTING, now - 10.0 * (i % 4)))
            continue
        since = now - rng.uniform(0.0, 120.0)
        w = WorkerView(f"w{i}", flavor, WorkerState.BUSY, now - 500, busy_since=since)
        workers.append(replace(w, job_id=f"r{i}", job_work=rng.choice((20.0, 60.0, 300.0))))
    workers += [
        WorkerView(f"i{k}", FLAVORS["small"], WorkerState.IDLE, now - 900, idle_since=now - k)
        for k in range(3)
    ]
    nodes = tuple(NodeView(f"n{k}", 16, 64.0, 4.0 + k % 3, 16.0) for k in range(8))
    stats = RecentStats(boot_seconds=25.0, seconds_per_work={"small": 0.33, "tiny": 0.5})
    limits = Limits(len(workers) + 15, can_split=seed % 2 == 0)
    return ClusterView(now, tuple(jobs), tuple(workers), nodes, limits, stats)


@pytest.mark.parametrize("seed", range(4))
def test_crowded_views(seed: int) -> None:
    fast = 0
    for ranked, ties in ((False, False), (False, True), (True, False)):
        base = crowded(seed, ranked, ties)
        for later in (0.0, 60.0, 400.0):
            view = replace(base, now=base.now + later)
            assert Cvss().decide(view) == PlainCvss().decide(view)
            assert Covt().decide(view) == PlainCovt().decide(view)
            assert PriorityDynamic().decide(view) == PlainPriorityDynamic().decide(view)
            fast += rounds_are_sure(view)
    assert fast  # the provisioner's quick rounds were compared too


def rounds_are_sure(view: ClusterView) -> bool:
    """Whether cvss provisions ``view`` a round at a time without scheduling the queue."""
    cvss = Cvss()
    chosen = cvss.chosen_splits(view)
    queue = Batch(view, [j for j, _ in chosen])
    cvss.map(view, queue, sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id)))
    n, room = len(queue), Room(view)
    pool = free_times(view, (*view.busy, *view.booting))
    extra = min(room.count, n)
    sure = misses_above(view, queue, pool, extra, boot_seconds(view), cvss.upper)
    return n > 0 and room.count > 0 and sure


TIMES = st.sampled_from([0.0, 1.0, 1.0 + 2**-50, 1.0 + 2**-51, 3.5, 100.0]) | st.floats(0, 500)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(TIMES, st.sampled_from(sorted(FLAVORS))), min_size=33, max_size=90),
    st.lists(st.sampled_from([0.0, 1.0, 3.3, 250.0]) | st.floats(0, 300), max_size=60),
)
@example(  # the later free time first: both complete at the same rounded time, it goes first
    [(1.0 + 2**-50, "small"), (1.0, "small")] + [(400.0, "tiny")] * 32, [250.0, 250.0, 1.0]
)
def test_list_scheduling_of_many_servers(pool: list[tuple[float, str]], works: list[float]) -> None:
    """On many servers (``line.Line``), the choices of a scan of every server, servers that
    complete at the same rounded time among them."""
    view = ClusterView(now=1_000.0, stats=RecentStats(seconds_per_work={"small": 0.33}))
    queue = [
        JobView(f"j{i}", "m", 1000, "ultrafast", 0.0, input_duration=w) for i, w in enumerate(works)
    ]
    given_pool = [Server(at, flavor) for at, flavor in pool]
    assert completions(view, queue, given_pool) == plain_completions(view, queue, given_pool)
