"""The shipped policies decide as their plain definitions (``reference_policies.py``: every
waiting job sorted, every worker scanned): on random views, and on every view of whole
simulated runs (the core's views, with their indexes), queues of hundreds of jobs among them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dacirco.policies.base import ClusterView, Decisions, Limits, Policy
from dacirco.policies.grace_period import GracePeriod
from dacirco.policies.minimize_workers import MinimizeWorkers
from dacirco.policies.right_size import RightSize
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs, parse_priorities, requests_for

from .reference_policies import PlainGracePeriod, PlainMinimizeWorkers, PlainRightSize
from .test_policy_properties import views

PAIRS: list[tuple[Policy, Policy]] = [
    (RightSize(), PlainRightSize()),
    (RightSize(order="fifo"), PlainRightSize(order="fifo")),
    (
        RightSize(long_share=0.2, keep_factor=1.0, linger=5.0),
        PlainRightSize(long_share=0.2, keep_factor=1.0, linger=5.0),
    ),
    (RightSize(patience=0.0, aging=0.0), PlainRightSize(patience=0.0, aging=0.0)),
    (RightSize(aging=-1.0), PlainRightSize(aging=-1.0)),
    (GracePeriod(), PlainGracePeriod()),
    (GracePeriod(max_idle_time=0.5), PlainGracePeriod(max_idle_time=0.5)),
    (MinimizeWorkers(), PlainMinimizeWorkers()),
]


def same(view: ClusterView) -> None:
    for policy, plain in PAIRS:
        assert policy.decide(view) == plain.decide(view), (policy, view)


@settings(max_examples=300, deadline=None)
@given(views(), st.sampled_from(["whole", "chunks", "merges", "reversed"]), st.booleans())
def test_random_views(view: ClusterView, kind: str, split: bool) -> None:
    jobs = list(view.waiting)
    if kind == "chunks":  # parts of split jobs, some of equal work
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
    jobs = [  # few lengths, so that jobs share a kind; some splittable
        replace(
            j,
            input_duration=(10.0, 60.0, 33.3)[i % 3] if j.input_duration else None,
            frames=j.frames or (900 if i % 2 else None),
        )
        for i, j in enumerate(jobs)
    ]
    same(
        replace(view, waiting=tuple(jobs), limits=Limits(view.limits.max_workers, can_split=split))
    )


@dataclass
class Both:
    """A policy that decides as ``policy`` after checking its plain definition agrees."""

    policy: Policy
    plain: Policy
    name: str = ""
    views: int = 0
    longest: int = 0
    seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.policy.name

    def decide(self, view: ClusterView) -> Decisions:
        got = self.policy.decide(view)
        assert got == self.plain.decide(view), view
        self.views += 1
        self.longest = max(self.longest, len(view.waiting))
        return got


@pytest.mark.parametrize(
    ("policy", "plain"),
    [
        (RightSize(), PlainRightSize()),
        (GracePeriod(), PlainGracePeriod()),
        (MinimizeWorkers(), PlainMinimizeWorkers()),
    ],
    ids=["right-size", "grace-period", "minimize-workers"],
)
def test_every_view_of_an_overloaded_run(policy: Policy, plain: Policy) -> None:
    models = Models.build("vm")
    jobs = make_jobs(
        requests_for("bursty", 400, 3), models, 3, priorities=parse_priorities("20:0.2,0:0.8")
    )
    jobs = [replace(j, arrival=j.arrival / 8) for j in jobs]  # far beyond the capacity
    both = Both(policy, plain)
    config = SimConfig(algorithm=policy.name, max_workers=8)
    Simulation(config, DataCenter.uniform(2, 6, 16.0), models, jobs, 3, policy=both).run()
    assert both.views > 300 and both.longest > 100
