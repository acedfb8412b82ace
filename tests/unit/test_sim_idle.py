"""Idle cycles in the simulator (``sim/idle.py``): office machines whose owners come and go
beside a small data center. Their pilots do part of the work, owners preempt them, and no
job is lost or charged an attempt for it."""

from __future__ import annotations

import random

from dacirco.analytics.figures import figures
from dacirco.domain import Node
from dacirco.scenario.generate import poisson
from dacirco.sim.cluster import DataCenter
from dacirco.sim.idle import IdleCyclesSimulation, OwnerTrace
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import make_jobs

DESKS = (Node("desk1", 4, 8.0), Node("desk2", 4, 8.0))


def test_an_office_day_is_merged_and_the_same_for_a_seed() -> None:
    trace = OwnerTrace.office_hours(seed=3)
    assert trace == OwnerTrace.office_hours(seed=3)
    assert all(a < b for a, b in trace.busy)
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(trace.busy, trace.busy[1:], strict=False))
    assert trace.busy_at(11 * 3600) and not trace.busy_at(3 * 3600)


def run(algorithm: str, owners: dict[str, OwnerTrace]) -> IdleCyclesSimulation:
    models = Models.build("vm")
    requests = poisson(300, random.Random(5), rate=0.05)  # about 100 minutes of requests
    jobs = make_jobs(requests, models, seed=5)
    config = SimConfig(algorithm=algorithm, flavor="tiny", max_workers=12)
    sim = IdleCyclesSimulation(
        config, DataCenter.uniform(1, 2, 8.0), models, jobs, 5, idle_nodes=DESKS, traces=owners
    )
    sim.result = sim.run()  # type: ignore[attr-defined]
    return sim


def test_pilots_do_part_of_the_work_and_preemptions_lose_no_job() -> None:
    # Each owner at the machine for ten minutes every half hour.
    spells = tuple((600.0 + k * 1800, 1200.0 + k * 1800) for k in range(4))
    owners = {"desk1": OwnerTrace(spells), "desk2": OwnerTrace(spells[1:])}
    for algorithm in ("grace-period", "adaptive"):
        sim = run(algorithm, owners)
        f = sim.idle_figures()
        fig = figures(sim.result.run)  # type: ignore[attr-defined]
        assert (fig.completed, fig.failed) == (300, 0), algorithm
        assert 0.2 < f.share < 1.0, (algorithm, f)
        assert f.preemptions > 0 and f.tasks_preempted > 0, (algorithm, f)
        # No attempt charged for a preemption: none failed, and each whole job's count is
        # its tasks that were not preempted.
        st = sim.state
        for job in st.jobs.values():
            tasks = [st.tasks[t] for t in st.job_tasks.get(job.id, ())]
            if not job.chunks:
                assert job.attempts == sum(not t.preempted for t in tasks), job.id


def test_the_work_by_hour_adds_up_to_the_run_and_owners_to_their_traces() -> None:
    spells = ((600.0, 2400.0), (4000.0, 4600.0))
    sim = run("adaptive", {"desk1": OwnerTrace(spells), "desk2": OwnerTrace(())})
    f = sim.idle_figures()
    ours, idle, owners = sim.work_by_hour(hours=24)
    assert abs(sum(idle) - f.pilot_core_s / 3600) < 1e-6
    assert abs(sum(ours) + sum(idle) - f.total_core_s / 3600) < 1e-6
    # desk1's owner: 1800 s in the first hour, 600 s in the second; desk2's never there.
    assert owners[:3] == [0.5, 600 / 3600, 0.0] and sum(owners) == 2400 / 3600
