"""The core's views made for what changed only: a view's workers and statistics made when a
policy first reads them, its waiting groups made when asked, and the waiting view that only
loses its first jobs when they are assigned in order. A view a policy keeps must show its own
time whatever happened since, and every view must equal one made from scratch."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from dacirco.core import views
from dacirco.domain import WorkerState
from dacirco.policies.base import ClusterView, Decisions, Policy, group_kinds, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs, requests_for


@dataclass
class Keeping:
    """A policy that keeps every view it is given; ``eager``: it reads the view's workers,
    statistics and waiting groups at once (what the view held then), else only at the end."""

    policy: Policy
    eager: bool
    seen: list[ClusterView] = field(default_factory=list)
    read: list[tuple[object, ...]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.policy.name

    def decide(self, view: ClusterView) -> Decisions:
        self.seen.append(view)
        if self.eager:
            self.read.append(what_it_holds(view))
        return self.policy.decide(view)


def what_it_holds(view: ClusterView) -> tuple[object, ...]:
    # What a core's view answers without making its workers first, then the rest.
    counts = tuple(view.count(s) for s in WorkerState)
    quick = (*counts, view.oldest_idle(2), view.room, view.idle_since_known, view.waiting_count)
    quick += (view.first_waiting(2),)
    workers = (view.workers, view.idle, view.busy, view.booting, view.idle_by_age)
    return (*quick, *workers, view.stats, view.waiting, view.waiting_groups)


def run(policy: str, eager: bool, n: int = 300) -> Keeping:
    models = Models.build("vm")
    jobs = make_jobs(requests_for("bursty", n, 4), models, 4)
    keeping = Keeping(make_policy(policy), eager)
    config = SimConfig(algorithm=policy, max_workers=4)
    Simulation(config, DataCenter.reference(), models, jobs, 4, policy=keeping).run()
    return keeping


@pytest.mark.parametrize(
    ("policy", "compact"),
    [("grace-period", None), ("right-size", None), ("grace-period", 4), ("right-size", 4)],
)
def test_a_kept_view_shows_its_own_time(
    policy: str, compact: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Views read at once and views read after the whole run hold the same workers,
    statistics, room, waiting jobs (counted, then made) and groups; the groups are those made
    from scratch. ``compact``: the queue's list is made again once that many jobs left its
    head (and most of it), here many times in a run (4,096 in the service)."""
    if compact is not None:
        monkeypatch.setattr(views, "_COMPACT", compact)
    eager, late = run(policy, eager=True), run(policy, eager=False)
    assert len(late.seen) == len(eager.read) > 300
    assert [what_it_holds(v) for v in late.seen] == eager.read
    queues = [v for v in late.seen if len(v.waiting) > 1]
    assert len({len(v.waiting) for v in queues}) > 3  # the queue grew and shrank
    for view in late.seen:
        assert view.waiting_groups == group_kinds(view.waiting)
        assert view.waiting_count == len(view.waiting)
        assert view.first_waiting(3) == view.waiting[:3]
        assert view.room == max(0, view.limits.max_workers - len(view.workers))
        assert view.idle_count == len(view.idle) and view.oldest_idle(3) == view.idle_by_age[:3]
        assert all(view.count(s) == len(view.in_state(s)) for s in WorkerState)
