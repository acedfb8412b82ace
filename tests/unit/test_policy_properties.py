"""Properties every registered policy keeps, on random views (hypothesis).

- never more workers than ``max_workers``, never more than the nodes hold;
- decisions refer to jobs and workers of the view, in the state they need (assign: a waiting
  job to an idle worker, each at most once; stop: never a busy worker);
- no starvation here: a waiting job with no idle worker to take it gets a worker started,
  unless one is booting or busy or there is no room (under max_workers and on the nodes);
  over whole runs, tests/unit/test_policy_runs.py checks that every job completes;
- deterministic: the same view gives the same decisions.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import (
    ClusterView,
    JobView,
    Limits,
    NodeView,
    PolicyParams,
    WorkerView,
    available,
    make_policy,
)
from dacirco.policies.common import fits
from dacirco.policies.season import BIN, Season
from dacirco.policies.stats import RecentStats

NOW = 10_000.0
ALIVE = (WorkerState.BOOTING, WorkerState.IDLE, WorkerState.BUSY)


@st.composite
def seasons(draw: st.DrawFn) -> Season:
    """A season found on counts that end before NOW: any period, any counts."""
    counts = tuple(draw(st.lists(st.integers(0, 40), min_size=6, max_size=200)))
    period = BIN * draw(st.integers(3, max(3, len(counts) // 2)))
    return Season(period, NOW - BIN * len(counts), counts, 1.0, 2.0)


@st.composite
def views(draw: st.DrawFn) -> ClusterView:
    n_nodes = draw(st.integers(1, 4))
    node_cpus = draw(st.sampled_from([4, 6, 8, 16]))
    workers = []
    per_node: Counter[str] = Counter()
    per_node_mem: Counter[str] = Counter()
    for i in range(draw(st.integers(0, 10))):
        flavor = FLAVORS[draw(st.sampled_from(sorted(FLAVORS)))]
        node = f"n{draw(st.integers(0, n_nodes - 1))}"
        if per_node[node] + flavor.cpus > node_cpus:
            continue  # the controller never lets a node be over-committed
        per_node[node] += flavor.cpus
        per_node_mem[node] += flavor.memory_gb
        state = draw(st.sampled_from(ALIVE))
        created = NOW - draw(st.floats(0, 3600))
        workers.append(
            WorkerView(
                id=f"w{i}",
                flavor=flavor,
                state=state,
                created_at=created,
                node=node,
                idle_since=created + draw(st.floats(0, 1)) if state == WorkerState.IDLE else None,
                job_id=f"running{i}" if state == WorkerState.BUSY else None,
                busy_since=NOW - draw(st.floats(0, 300)) if state == WorkerState.BUSY else None,
                job_work=draw(st.floats(0, 400)) if state == WorkerState.BUSY else None,
            )
        )
    nodes = tuple(
        NodeView(
            name=f"n{k}",
            cpus=node_cpus,
            memory_gb=4.0 * node_cpus,
            free_cpus=node_cpus - per_node[f"n{k}"],
            free_memory_gb=4.0 * node_cpus - per_node_mem[f"n{k}"],
        )
        for k in range(n_nodes)
    )
    waiting = tuple(
        JobView(
            id=f"j{i}",
            id_video=f"bbb_{i % 10}.mp4",
            bitrate=draw(st.integers(500, 8000)),
            speed=draw(st.sampled_from(["ultrafast", "fast"])),
            received_at=NOW - 100 + i,
            input_duration=draw(st.one_of(st.none(), st.floats(1, 600))),
        )
        for i in range(draw(st.integers(0, 12)))
    )
    stats = RecentStats(
        rate_short=draw(st.floats(0, 5)),
        rate_long=draw(st.floats(0, 5)),
        arrivals=100,
        last_arrival=NOW - draw(st.floats(0, 600)),
        boot_seconds=draw(st.one_of(st.none(), st.floats(0.5, 60))),
        seconds_per_work={f: draw(st.floats(0.05, 5)) for f in FLAVORS},
        mean_input_seconds=draw(st.one_of(st.none(), st.floats(1, 120))),
        recent_work=tuple(sorted(draw(st.lists(st.floats(0.1, 400), max_size=20)))),
        season=draw(st.one_of(st.none(), seasons())),
    )
    max_workers = draw(st.integers(len(workers), len(workers) + 8))
    return ClusterView(
        now=NOW,
        waiting=waiting,
        workers=tuple(workers),
        nodes=nodes,
        limits=Limits(max_workers=max_workers),
        stats=stats,
    )


def _check(name: str, view: ClusterView) -> None:
    policy = make_policy(name, PolicyParams())
    decisions = policy.decide(view)
    assert decisions == policy.decide(view), "not deterministic"
    by_id = {w.id: w for w in view.workers}
    waiting = {j.id for j in view.waiting}
    # Assignments: waiting jobs to idle workers, each at most once.
    jobs = [a.job_id for a in decisions.assign]
    targets = [a.worker_id for a in decisions.assign]
    assert len(set(jobs)) == len(jobs) and set(jobs) <= waiting
    assert len(set(targets)) == len(targets)
    assert all(by_id[w].state == WorkerState.IDLE for w in targets)
    # Stops: known, never busy, never one just given a job.
    stopped = {s.worker_id for s in decisions.stop}
    assert stopped <= set(by_id)
    assert all(by_id[w].state != WorkerState.BUSY for w in stopped)
    assert not stopped & set(targets)
    # Starts: within max_workers and the nodes' capacity (counting the stops as freed).
    assert len(view.workers) - len(stopped) + len(decisions.start) <= view.limits.max_workers
    free = {n.name: [n.free_cpus, n.free_memory_gb] for n in view.nodes}
    for w in stopped:
        free[by_id[w].node][0] += by_id[w].flavor.cpus  # type: ignore[index]
        free[by_id[w].node][1] += by_id[w].flavor.memory_gb  # type: ignore[index]
    unplaced: Counter[str] = Counter()
    for s in decisions.start:
        flavor = FLAVORS[s.flavor]
        if s.node is None:
            unplaced[s.flavor] += 1
            continue
        free[s.node][0] -= flavor.cpus
        free[s.node][1] -= flavor.memory_gb
        assert free[s.node][0] >= 0 and free[s.node][1] >= 0, f"{s.node} over-committed"
    for flavor, count in unplaced.items():
        assert count <= fits(view, FLAVORS[flavor]), f"more {flavor} than the nodes hold"
    # No starvation: with nothing booting and nothing busy (that could be due soon).
    idle_now = len(view.idle) - len(stopped)
    if len(view.waiting) > idle_now and not view.booting and not view.busy and not decisions.start:
        room = view.room + len(stopped)
        # A policy may wait for room for its flavor; the largest fitting leaves it no excuse.
        largest = max(FLAVORS.values(), key=lambda f: f.cpus)
        assert room == 0 or fits(view, largest) == 0, "jobs wait and nothing is started"


@settings(max_examples=300, deadline=None)
@given(view=views())
def test_every_policy_keeps_the_rules(view: ClusterView) -> None:
    for name in available():
        _check(name, view)
