"""Completed jobs leave the simulated core's state as the run goes (``sim/records.py``): the
run's data is the same as when every job is kept to the end, and the state holds only the
jobs still in progress."""

from __future__ import annotations

import pytest

from dacirco.analytics.figures import figures
from dacirco.domain import JobState
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs, requests_for, with_repeats


class Keeping(Simulation):
    keep_finished = True


def simulations(policy: str, workload: str) -> tuple[Simulation, Simulation]:
    models = Models.build("vm")
    requests = with_repeats(requests_for(workload, 300, 3, rate=0.5), 0.3, 3)
    jobs = make_jobs(requests, models, 3)
    config = SimConfig(algorithm=policy)
    dc = DataCenter.uniform(2, 6, 16.0)
    return Simulation(config, dc, models, jobs, 3), Keeping(config, dc, models, jobs, 3)


@pytest.mark.parametrize(
    ("policy", "workload"), [("grace-period", "poisson"), ("adaptive", "diurnal")]
)
def test_retired_jobs_give_the_same_run(policy, workload):
    retiring, keeping = simulations(policy, workload)
    retired, kept = retiring.run().run, keeping.run().run
    assert retired.jobs == kept.jobs  # every span, field by field, in arrival order
    assert retired.workers == kept.workers  # their busy intervals in the same order
    assert figures(retired) == figures(kept)
    f = figures(kept)
    assert f.completed + f.reused == f.jobs == 300
    assert f.reused > 0  # served with an identical job's output, and retired too
    # The run kept every job, or none that completed; the tasks went with their jobs.
    assert len(keeping.state.jobs) == 300 and len(keeping.state.tasks) >= 300 - f.reused
    assert not retiring.state.jobs and not retiring.state.tasks
    parts = {t.part for t in keeping.state.tasks.values()}
    if policy == "adaptive":
        assert "chunk" in parts and "merge" in parts  # split jobs retire once merged


def test_unfinished_jobs_stay_in_the_state():
    """A run cut short: the jobs not completed are in the state, and in the run's data."""
    models = Models.build("vm")
    jobs = make_jobs(requests_for("poisson", 200, 4, rate=2.0), models, 4)
    config = SimConfig(algorithm="grace-period", stall=60.0, max_workers=1)
    sim = Simulation(config, DataCenter.reference(), models, jobs, 4)
    result = sim.run()
    assert result.stats.cut == "stall"
    left = {j.id for j in sim.state.jobs.values()}
    assert left and all(j.state is not JobState.COMPLETED for j in sim.state.jobs.values())
    unfinished = {s.job_id for s in result.run.jobs if s.state != "Completed"}
    assert unfinished == left
