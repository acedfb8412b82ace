"""The oracle knows the traffic ahead of time: on the same jobs it must beat the classic
policies on delay, boot just in time, and keep no worker idle once the traffic is over."""

from __future__ import annotations

import pytest

from dacirco.analytics.figures import figures
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.oracle import ORACLE
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape


@pytest.mark.parametrize(
    ("split", "catalog"), [(True, "default"), (False, "default"), (True, "short")]
)
def test_the_oracle_is_faster_than_the_classic_policies_on_the_same_jobs(split, catalog):
    setup = Setup(
        DataCenter.uniform(3, 6, 16.0), SimConfig(split=split), Models.build("vm"),
        jobs=200, load=0.5, catalog=CatalogShape.named(catalog),
    )  # fmt: skip
    jobs, _ = setup.workload("poisson", 3)
    oracle = figures(setup.run(ORACLE, jobs, 3).run)
    for classic in ("grace-period", "minimize-workers"):
        other = figures(setup.run(classic, jobs, 3).run)
        # Whole jobs on one flavor: the p95 is the longest movies' transcode, for everyone.
        assert oracle.delay.p95 <= other.delay.p95, (classic, oracle.delay, other.delay)
        assert oracle.delay.avg < other.delay.avg, (classic, oracle.delay, other.delay)


def test_the_oracle_boots_ahead_of_the_requests_and_ends_with_no_worker():
    dc = DataCenter.uniform(2, 4, 16.0)
    setup = Setup(dc, SimConfig(), Models.build("vm"), jobs=40, load=0.3)
    jobs, _ = setup.workload("poisson", 5)
    result = setup.run(ORACLE, jobs, 5)
    run = result.run
    # Nothing happens before the first request (the simulator starts there): after it, the
    # oracle starts workers ahead of the requests, so hardly any waits for a boot.
    later = [j for j in run.jobs if j.received > run.start + 60 and j.reused_from is None]
    waits = sorted(j.assigned - j.received for j in later if j.assigned is not None)
    assert len(waits) == len(later) > 10
    assert waits[len(waits) // 2] < 1.0, waits  # the median request finds its worker ready
    assert all(w.destroyed is not None for w in run.workers)
    assert result.stats.refused == {}
