"""Properties of whole runs, for every registered policy, on random workloads and data
centers (hypothesis drives the simulator, which runs the very same policy objects):

- no job starves: every request completes;
- no decision is refused by the mechanism (max_workers, node capacity, a busy worker
  stopped, a job or worker in the wrong state): the policy keeps the rules itself;
- deterministic: the same run twice gives the same figures.

The simulator's oracle (``sim/oracle.py``) is held to the same rules.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dacirco.analytics.figures import figures
from dacirco.policies.base import available
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.oracle import ORACLE
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape


@st.composite
def setups(draw: st.DrawFn) -> tuple[Setup, str, int]:
    nodes = draw(st.integers(1, 4))
    cores = draw(st.sampled_from([4, 6, 8]))
    dc = DataCenter.uniform(nodes, cores, 4.0 * cores)
    config = SimConfig(
        max_workers=draw(st.integers(1, 2 * nodes * cores)),
        max_idle_time=draw(st.sampled_from([0.0, 10.0, 60.0])),
        call_interval=draw(st.sampled_from([0.5, 1.0])),
        split=draw(st.booleans()),
    )
    setup = Setup(
        dc,
        config,
        Models.build(draw(st.sampled_from(["vm", "pod"]))),
        jobs=draw(st.integers(5, 80)),
        catalog=CatalogShape.named(draw(st.sampled_from(["default", "short"]))),
        load=draw(st.sampled_from([None, 0.3, 0.9, 1.5])),
    )
    return (
        setup,
        draw(st.sampled_from(["classic", "poisson", "bursty", "diurnal"])),
        draw(st.integers(1, 1000)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=setups())
def test_every_policy_completes_every_job_within_the_rules(drawn) -> None:  # type: ignore[no-untyped-def]
    setup, workload, seed = drawn
    jobs, _ = setup.workload(workload, seed)
    for policy in [*available(), ORACLE]:
        result = setup.run(policy, jobs, seed)
        f = figures(result.run)
        # Every job done: transcoded, or served with an identical job's output (reuse).
        assert f.completed + f.reused == len(jobs), (policy, result.stats.cut)
        assert not result.stats.cut, (policy, result.stats.cut)
        assert result.stats.refused == {}, (policy, result.stats.refused)
        again = figures(setup.run(policy, jobs, seed).run)
        assert again == f, f"{policy} is not deterministic"


@pytest.mark.parametrize("policy", [*available(), ORACLE])
def test_a_burst_far_beyond_capacity_still_completes(policy: str) -> None:
    dc = DataCenter.uniform(1, 4, 16.0)
    setup = Setup(dc, SimConfig(max_workers=3), Models.build("pod"), jobs=60, load=5.0)
    jobs, _ = setup.workload("bursty", 7)
    result = setup.run(policy, jobs, 7)
    f = figures(result.run)
    assert f.completed + f.reused == 60 and result.stats.refused == {}
