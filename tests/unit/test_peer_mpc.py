"""mpc (Gao, Wen, Westphal, ACM MM 2016 / IEEE TCSVT 2019; docs/peers/literature.md): its
decisions on hand-built views, and claims of its sources reproduced in the simulator.

- Under a time-varying (diurnal) workload, the model-predictive provisioner meets the QoS
  target of delay-sensitive jobs, where a reactive autoscaler (hpa: utilization only) with as
  many reserved core-seconds does not.
- The prediction moves capacity with the trend: with it, more of the reserved core-seconds
  fall in the rising half of each day and fewer in the falling half than without it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from dacirco.analytics.run import RunData
from dacirco.domain import WorkerState
from dacirco.policies.base import make_policy
from dacirco.policies.covt import erlang_c
from dacirco.policies.deadline import WAIT_ALLOWANCE
from dacirco.policies.mpc import Mpc, mean_waits

from .test_peer_literature import (
    diurnal,
    job,
    reserved_between,
    served,
    simulate,
    started_within,
    view,
    worker,
)


# ---- hand-built views -----------------------------------------------------------------------
def test_mean_waits_is_the_erlang_c_mean() -> None:
    waits = mean_waits(3.2, 8, 20.0, 1.0)
    assert waits[:4] == [math.inf] * 4  # unstable at c <= load
    for c in range(4, 9):
        assert waits[c] == pytest.approx(erlang_c(c, 3.2) * 20.0 / (c - 3.2))
    assert mean_waits(3.2, 8, 20.0, 3.0)[5] == pytest.approx(2 * waits[5])  # Allen-Cunneen


def test_mpc_serves_delay_sensitive_jobs_before_deferrable_ones() -> None:
    deferrable = replace(job(1, at=0.0), priority=-10)  # first in the queue
    sensitive = job(2, at=50.0)
    d = Mpc().decide(view(waiting=[deferrable, sensitive], workers=[worker(1, idle_since=0.0)]))
    assert [a.job_id for a in d.assign] == ["j2"]


def test_mpc_provisions_ahead_of_a_rising_trend() -> None:
    def starts(policy: Mpc, short: float, long: float) -> int:
        v = view(rate=short, work=(60.0,) * 20, free_cpus=18.0)
        v = replace(v, stats=replace(v.stats, rate_long=long))
        return len(policy.decide(v).start)

    flat = starts(Mpc(), 0.15, 0.15)
    assert starts(Mpc(), 0.15, 0.03) > flat  # rising: more workers before any job waits
    assert starts(Mpc(), 0.15, 0.45) < flat  # falling: fewer
    assert starts(Mpc(trend_span=0.0), 0.15, 0.03) == flat  # no prediction, no difference


def test_mpc_gives_a_deferrable_backlog_fewer_workers() -> None:
    busy = [worker(9, "small", WorkerState.BUSY, job_id="x", busy_since=90.0, job_work=50.0)]
    jobs = [job(i, at=95.0, seconds=20) for i in range(8)]
    later = [replace(j, priority=-20) for j in jobs]
    sensitive = Mpc().decide(view(waiting=jobs, workers=busy))
    deferrable = Mpc().decide(view(waiting=later, workers=busy))
    assert len(deferrable.start) < len(sensitive.start)
    # Nothing busy or booting: a deferrable job still gets a worker.
    assert len(Mpc().decide(view(waiting=later[:1])).start) == 1


def test_mpc_stops_what_its_plan_does_not_need() -> None:
    idle = [worker(i, "small", idle_since=float(i)) for i in range(4)]
    d = Mpc().decide(view(workers=idle))  # no traffic: none needed
    assert [s.worker_id for s in d.stop] == ["w0", "w1", "w2", "w3"]
    d = Mpc().decide(view(workers=idle, rate=0.03, work=(60.0,) * 20))  # traffic: some kept
    assert 0 < len(d.stop) < 4 and d.wake_at is None


# ---- claims, in the simulator ---------------------------------------------------------------
def window(*runs: RunData) -> tuple[float, float]:
    t0 = min(j.received for r in runs for j in r.jobs)
    return t0, max(j.uploaded for r in runs for j in served(r))


@pytest.mark.parametrize("seed", [1, 2])
def test_mpc_meets_the_waiting_target_where_a_reactive_autoscaler_does_not(seed: int) -> None:
    jobs = diurnal(seed)  # a 'day' of an hour, 0.15 requests/s on average
    mpc, hpa = simulate(Mpc(), jobs, seed), simulate(make_policy("hpa"), jobs, seed)
    assert started_within(mpc, WAIT_ALLOWANCE) >= 0.95
    assert started_within(hpa, WAIT_ALLOWANCE) < 0.9
    t0, t1 = window(mpc, hpa)
    assert reserved_between(mpc, t0, t1) <= 1.05 * reserved_between(hpa, t0, t1)


def halves(run: RunData, period: float) -> tuple[float, float]:
    """Reserved core-seconds in the rising and in the falling halves of each day."""
    end = max(j.uploaded for j in served(run))
    rise = fall = 0.0
    for k in range(int(end // period) + 1):
        t = k * period
        rise += reserved_between(run, t, t + period / 4) + reserved_between(
            run, t + 3 * period / 4, t + period
        )
        fall += reserved_between(run, t + period / 4, t + 3 * period / 4)
    return rise, fall


@pytest.mark.parametrize("seed", [1, 2])
def test_mpc_moves_capacity_with_the_predicted_trend(seed: int) -> None:
    period = 1200.0
    jobs = diurnal(seed, period=period)
    runs = {span: simulate(Mpc(trend_span=span), jobs, seed) for span in (120.0, 0.0)}
    (rise, fall), (rise0, fall0) = halves(runs[120.0], period), halves(runs[0.0], period)
    assert rise / fall > 1.03 * rise0 / fall0, (rise, fall, rise0, fall0)
    assert fall < 0.97 * fall0  # scaled down ahead of the fall
    assert (
        started_within(runs[120.0], WAIT_ALLOWANCE)
        >= started_within(runs[0.0], WAIT_ALLOWANCE) - 0.02
    )
