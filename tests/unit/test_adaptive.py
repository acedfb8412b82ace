"""adaptive's pool and the workers it stops, decision by decision on hand-made views, and
against the classic policies in the simulator (its plan of the queue:
``test_adaptive_queue.py``)."""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from dacirco.analytics.figures import figures
from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.adaptive import Adaptive
from dacirco.policies.base import Limits, NodeView, WorkerView
from dacirco.policies.chunk_plan import due_within
from dacirco.policies.season import BIN, Season
from dacirco.policies.stats import SHORT_WINDOW
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig
from dacirco.sim.workload import CatalogShape

from .adaptive_views import NOW, idle, job, stats, view


def test_the_pool_follows_the_traffic() -> None:
    policy = Adaptive()
    # 0.5 requests/s of 10 s each keep 5 workers busy; the pool adds a margin above that.
    busy = policy.pool(view(st=stats(0.5)), 1.0)
    assert 5.0 < busy < 10.0
    # Ten times the traffic: about ten times the pool, relatively less margin.
    more = policy.pool(view(st=stats(5.0)), 1.0)
    assert 50.0 < more < 10 * busy
    # A warm pool is started with nothing waiting ...
    starts = policy.decide(view(st=stats(0.5))).start
    assert len(starts) == math.ceil(busy)
    # ... and kept while the traffic lasts, idle workers beyond it stopped.
    workers = [idle(i, since=NOW - 30) for i in range(12)]
    d = policy.decide(view(workers=workers, st=stats(0.5)))
    assert len(d.stop) == 12 - math.ceil(busy) and not d.start


def test_a_silence_empties_the_pool_and_a_burst_fills_it() -> None:
    policy = Adaptive()
    workers = [idle(i, since=NOW - 100) for i in range(8)]
    # Nothing for 100 s at 0.5 requests/s (50 expected): the traffic stopped.
    quiet = view(workers=workers, st=stats(0.5, last=NOW - 100))
    assert policy.arrival_rate(quiet) == pytest.approx(0.01)
    assert len(policy.decide(quiet).stop) == 7  # one kept: a request may still come
    # The last minute's count far above the ten-minute rate's: the last minute's rate.
    burst = replace(stats(0.1), rate_short=1.0)
    assert policy.arrival_rate(view(st=burst)) == 1.0
    # Within Poisson noise of it: the steady rate.
    noise = replace(stats(0.5), rate_short=0.5 + 1.9 * math.sqrt(0.5 * SHORT_WINDOW) / SHORT_WINDOW)
    assert policy.arrival_rate(view(st=noise)) == 0.5


def test_a_rhythm_keeps_the_pool_of_what_comes_and_no_more() -> None:
    """With a season, the pool is the one of the rate forecast over the next boot: the
    workers of a burst that is over go at once (none lingers), and a burst due within a
    boot keeps them."""
    policy = Adaptive()
    # Bursts of 30 s at 3 requests/s every 150 s, none between: ... 1050 s, 1200 s ...
    counts = tuple(30 if (i * BIN) % 150.0 < 30.0 else 0 for i in range(100))
    season = Season(150.0, 0.0, counts, error=1.0, error_flat=5.0)
    rhythm = replace(stats(0.5), season=season)
    # At 1090 s, the burst of 1050 s over (the boot 20 s): its ten workers, idle for 2 s
    # only, all go; without a season the recent rate keeps them for linger_boots.
    assert season.rate(1090.0, 1110.0) == 0.0
    after = replace(view(), now=1090.0)
    workers = tuple(idle(i, since=after.now - 2.0) for i in range(10))
    assert len(policy.decide(replace(after, workers=workers, stats=rhythm)).stop) == 10
    recent = stats(0.5, last=after.now - 1.0)  # the same rate, a request a second ago
    assert policy.decide(replace(after, workers=workers, stats=recent)).stop == ()
    # Nor is any started for the minute the burst's rate takes to leave the recent windows:
    # it would be stopped once booted (and another started: churn).
    lagging = replace(stats(1.0), season=season)
    assert policy.decide(replace(after, stats=stats(1.0))).start != ()
    assert policy.decide(replace(after, stats=lagging)).start == ()
    # At 1185 s, the burst of 1200 s within the boot: they stay, however long idle.
    assert season.rate(1185.0, 1205.0) == pytest.approx(1.0)
    before = replace(view(), now=1185.0)
    workers = tuple(idle(i, since=before.now - 60.0) for i in range(10))
    assert policy.decide(replace(before, workers=workers, stats=rhythm)).stop == ()


def test_a_burst_forecast_a_boot_ahead_finds_its_busy_workers_booted() -> None:
    """A boot before the burst it forecasts, the workers that the burst's work keeps busy are
    started (whole ones, no spare), though no request has come yet; none earlier, and none
    without the season. (Jobs whole here, one task each: ``piece_share=1``.)"""
    policy = Adaptive(piece_share=1.0)
    counts = tuple(30 if (i * BIN) % 150.0 < 30.0 else 0 for i in range(100))
    season = Season(150.0, 0.0, counts, error=1.0, error_flat=5.0)
    quiet = stats(0.02, last=1140.0)  # between bursts: a request now and then
    rhythm = replace(quiet, season=season)
    # At 1185 s the burst of 1200 s is within the boot (20 s): 1 request/s forecast over it,
    # of 10 s of work each on one core: 10 workers busy.
    before = replace(view(), now=1185.0)
    assert season.rate(1185.0, 1205.0) == pytest.approx(1.0)
    started = policy.decide(replace(before, stats=rhythm)).start
    assert len(started) == math.floor(policy.busy(replace(before, stats=rhythm), 1.0, 1.0)) == 10
    assert all(s.flavor == "tiny" for s in started)
    # Those already up or booting count: only the rest is started.
    booting = tuple(
        WorkerView(f"b{i}", FLAVORS["tiny"], WorkerState.BOOTING, 1180.0, "n0") for i in range(4)
    )
    assert len(policy.decide(replace(before, workers=booting, stats=rhythm)).start) == 6
    # No more than there is room for, nor than the forecast pool: with 5 s boots, at the
    # burst's start, 3 requests/s keep 30 busy, but the pool keeps no more idle workers than
    # a boot's worth of requests takes (15).
    assert len(policy.decide(replace(before, stats=rhythm, limits=Limits(6, True))).start) == 6
    fast_boots = replace(rhythm, boot_seconds=5.0)
    at_start = replace(view(cores=40), now=1200.0, stats=fast_boots)
    assert math.floor(policy.busy(at_start, 1.0, season.rate(1200.0, 1205.0) or 0.0)) == 30
    assert len(policy.decide(at_start).start) == math.ceil(policy.pool(at_start, 1.0, 3.0)) == 15
    # Without the season, the quiet rate's pool only (rounded up to one worker); with it, a
    # boot and more before the burst, none (the forecast pool is empty).
    no_season = replace(before, stats=quiet)
    assert len(policy.decide(no_season).start) == math.ceil(policy.pool(no_season, 1.0)) == 1
    early = replace(view(), now=1150.0)
    assert season.rate(1150.0, 1170.0) == 0.0
    assert policy.decide(replace(early, stats=rhythm)).start == ()


def test_idle_workers_beyond_what_the_next_boot_may_take_go_at_once() -> None:
    """Idle workers beyond the pool are kept a boot (ski rental), but none beyond those the
    next boot's requests may take: the busy ones and one per task expected within a boot,
    at the higher of the two recent rates; after a silence that says the traffic stopped,
    at one over the silence. (Jobs whole here, one task each: ``piece_share=1``.)"""
    policy = Adaptive(piece_share=1.0)
    assert policy.linger_boots == 1.0
    # Eight workers just freed by the chunks of a long job, at 0.05 requests/s of 10 s jobs
    # (one task each) and 20 s boots: one task expected within a boot, so one is kept.
    freed = tuple(idle(i, since=NOW) for i in range(8))
    slow = view(workers=freed, st=stats(0.05))
    assert math.ceil(policy.hold(slow, 1.0, 20.0)) == 1
    assert math.ceil(policy.pool(slow, 1.0)) <= 1
    assert len(policy.decide(slow).stop) == 7
    # At 0.5 requests/s, ten tasks within a boot: the eight are kept (for a boot at most).
    assert policy.decide(view(workers=freed, st=stats(0.5))).stop == ()
    gone = policy.decide(replace(view(workers=freed, st=stats(0.05)), now=NOW + 21.0))
    assert len(gone.stop) == 8 - math.ceil(policy.pool(slow, 1.0))
    # A dip of the last minute below the ten minutes' rate: the higher one holds them.
    dip = replace(stats(0.5), rate_short=0.1)
    assert policy.arrival_rate(view(st=dip)) == 0.1  # the pool follows the dip ...
    assert policy.decide(view(workers=freed, st=dip)).stop == ()  # ... the kept ones do not
    # A burst at 1 request/s: 5 s without a request is nothing unusual among its 600 gaps of
    # the long window; 10 s would have been seen with a chance below 5 %: it stopped.
    assert math.log(600 / 0.05) == pytest.approx(9.39, abs=0.01)
    burst = stats(1.0, last=NOW - 5.0)
    assert policy.decide(view(workers=freed, st=burst)).stop == ()
    over = stats(1.0, last=NOW - 10.0)
    assert policy.hold(view(workers=freed, st=over), 1.0, 20.0) == pytest.approx(2.0)
    assert len(policy.decide(view(workers=freed, st=over)).stop) == 6


def test_beyond_the_pool_booting_workers_go_first_and_pilots_last() -> None:
    """Workers beyond what the next boot's requests may take go: those still booting first,
    the latest started first (an idle one serves now, a booting one only after its boot),
    our own idle ones next, pilots (free while idle) last. (Jobs whole here: ``piece_share=1``.)"""
    policy = Adaptive(piece_share=1.0)
    booting = [
        WorkerView(f"b{i}", FLAVORS["tiny"], WorkerState.BOOTING, NOW - 10 + i, "n0")
        for i in range(3)
    ]
    # 0.05 requests/s of 10 s jobs, 20 s boots: one worker kept; the one idle for a second
    # is kept (it would linger a boot), the three booting go, the latest started first.
    slow = view(workers=[idle(1), *booting], st=stats(0.05))
    assert math.ceil(policy.hold(slow, 1.0, 20.0)) == 1
    assert [s.worker_id for s in policy.decide(slow).stop] == ["b2", "b1", "b0"]
    # At 0.5 requests/s the next boot's ten tasks may take them all: none goes.
    assert policy.decide(view(workers=[idle(1), *booting], st=stats(0.5))).stop == ()
    # An idle worker goes after max_idle_time at the latest, even while the pool grows.
    old = view(workers=[idle(9, since=NOW - 4000)], st=stats(0.5))
    grows = policy.decide(old)
    assert grows.start and [s.worker_id for s in grows.stop] == ["w9"]
    # Beyond the pool, our own idle worker goes before the pilot, though idle for less.
    pilot = replace(idle(2, since=NOW - 200), node="desk", preemptible=True)
    own = idle(3, since=NOW - 100)
    desk = NodeView("desk", 4, 8.0, 3, 6.0, opportunistic=True)
    both = replace(view(workers=[pilot, own], st=stats(0.05)), nodes=(*slow.nodes, desk))
    assert [s.worker_id for s in policy.decide(both).stop] == ["w3"]


def test_the_pools_cap_counts_busy_workers_due_within_a_boot_and_whole_ones_with_a_season() -> None:
    """The pool keeps no more idle workers than the tasks expected within a boot, less the
    busy workers due by then (each takes one of those tasks itself); with a season, whole
    workers only. (Jobs whole here, one task each: ``piece_share=1``.)"""
    policy = Adaptive(piece_share=1.0)

    def busy(i: int, left: float) -> WorkerView:  # its task ends in ``left`` seconds
        return WorkerView(
            f"b{i}", FLAVORS["tiny"], WorkerState.BUSY, NOW - 500, "n0",
            busy_since=NOW - 5.0, job_work=5.0 + left,
        )  # fmt: skip

    # 0.05 requests/s of 10 s each on one core, 20 s boots: one task expected within a boot.
    soon = view(workers=[busy(i, 5.0) for i in range(3)], st=stats(0.05))
    late = view(workers=[busy(i, 100.0) for i in range(3)], st=stats(0.05))
    assert due_within(soon, 1.0, 20.0) == 3 and due_within(late, 1.0, 20.0) == 0
    assert policy.pool(soon, 1.0) == pytest.approx(1.0)  # 3 busy + 1 expected - 3 due
    assert policy.pool(late, 1.0) > policy.pool(soon, 1.0)
    assert policy.pool(soon, 1.0, due=0) == policy.pool(late, 1.0)  # given, not counted
    # 0.07 requests/s: 1.4 tasks expected within a boot; a worker and a fraction kept from the
    # recent rate, one from a season's forecast of that rate.
    counts = tuple(30 if (i * BIN) % 150.0 < 30.0 else 0 for i in range(100))
    season = Season(150.0, 0.0, counts, error=1.0, error_flat=5.0)
    assert policy.pool(view(st=stats(0.05)), 1.0, 0.07) == pytest.approx(1.4)
    assert policy.pool(view(st=replace(stats(0.05), season=season)), 1.0, 0.07) == 1.0


def test_requests_of_unknown_length_make_no_spare_pool() -> None:
    """Recent requests whose movie length is unknown count no work: no load, no margin (and
    no division by their mean length)."""
    unknown = stats(0.1, works=(0.0,) * 9)
    assert Adaptive().pool(view(st=unknown), 1.0) == 0.0
    d = Adaptive().decide(view([job(1, frames=None)], [idle(1)], st=unknown))
    assert [a.job_id for a in d.assign] == ["j1"] and d.stop == ()


@settings(max_examples=300, deadline=None)
@given(
    works=hs.lists(hs.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=200),
    rate=hs.floats(1e-3, 10.0),
    boot=hs.floats(0.5, 200.0),
    split=hs.booleans(),
)
def test_the_recent_digest_is_the_request_by_request_arithmetic(
    works: list[float], rate: float, boot: float, split: bool
) -> None:
    """``Adaptive.recent`` bisects the sorted works; each figure is the one computed request
    by request, to the bit, so the memo changes no decision."""
    policy = Adaptive()
    st = replace(
        stats(1.0, tuple(sorted(works))),
        boot_seconds=boot,
        seconds_per_work=MappingProxyType({"tiny": rate}),
    )
    v = view(st=st, split=split)
    r = policy.recent(v, rate)
    piece = policy.piece(v, rate) if split else math.inf
    seconds = [w * rate for w in st.recent_work]
    chunks = [max(1, min(policy.max_chunks, math.ceil(t / piece))) for t in seconds]
    sensitive = [
        (t, k) for t, k in zip(seconds, chunks, strict=True) if t * policy.wait_share < boot
    ]
    assert r.chunks == tuple(chunks) and r.chunk_sum == sum(chunks)
    assert r.seconds == sum(seconds)
    assert r.sensitive == len(sensitive)
    assert r.sensitive_seconds == sum(t for t, _ in sensitive)
    if sensitive and sum(k for _, k in sensitive):
        assert r.spread == sum(k * k for _, k in sensitive) / sum(k for _, k in sensitive)
    assert policy.recent(v, rate) is r  # made once for the same works, rate and boot
    assert policy.recent(v, rate * 2) is not r


def test_the_recent_digest_takes_an_int_rate_and_a_single_chunk_knob() -> None:
    # Chunks of 3/4 of the median (7.5 s), five at most.
    v = view(st=stats(1.0, (5.0, 10.0, 40.0)))
    assert Adaptive().recent(v, 1).chunks == Adaptive().recent(v, 1.0).chunks == (1, 2, 5)
    assert Adaptive(piece_share=1.0, max_chunks=8).recent(v, 1.0).chunks == (1, 1, 4)
    assert Adaptive(max_chunks=0).recent(v, 1.0).chunks == (1, 1, 1)


@pytest.mark.parametrize("workload", ["poisson@0.3", "bursty"])
def test_faster_than_grace_period_and_leaner_than_minimize_workers(workload: str) -> None:
    """The simulator, reference data center, VM boots, jobs split: about grace-period's
    average delay (within 5 % on 300 requests), a p95 well below it, and fewer reserved
    core-seconds than minimize-workers'."""
    setup = Setup(
        DataCenter.reference(),
        SimConfig(split=True),
        Models.build("vm"),
        jobs=300,
        catalog=CatalogShape.named("default"),
    )
    jobs, _ = setup.workload(workload, 1)
    got = {
        p: figures(setup.run(p, jobs, 1).run)
        for p in ("adaptive", "grace-period", "minimize-workers")
    }
    new = got["adaptive"]
    assert new.completed + new.reused == len(jobs)
    assert new.delay.avg < 1.05 * got["grace-period"].delay.avg
    assert new.delay.p95 < 0.8 * got["grace-period"].delay.p95
    assert new.reserved_core_seconds < got["minimize-workers"].reserved_core_seconds
