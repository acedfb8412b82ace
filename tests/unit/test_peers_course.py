"""The course's peers (reserve, queue-threshold, adaptive-grace, priority-dynamic): each
one's claim checked through the simulator, then decision by decision on hand-made views."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from types import MappingProxyType

import pytest

from dacirco.analytics.run import RunData
from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.adaptive_grace import AdaptiveGrace
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    Limits,
    NodeView,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    make_policy,
)
from dacirco.policies.grace_period import GracePeriod
from dacirco.policies.priority_dynamic import PriorityDynamic
from dacirco.policies.queue_threshold import QueueThreshold
from dacirco.policies.reserve import Reserve
from dacirco.policies.stats import LONG_WINDOW, RecentStats
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation

NOW = 1000.0
PEERS = ("reserve", "queue-threshold", "adaptive-grace", "priority-dynamic")


def queueing(run: RunData) -> list[float]:
    return [
        s.assigned - s.received
        for s in run.jobs
        if s.assigned is not None and s.reused_from is None
    ]


# ---- the claims, through the simulator ----------------------------------------------------
def test_reserve_has_fewer_cold_starts_than_minimize_workers_at_low_load() -> None:
    """At low load a request finds the reserve worker idle, where minimize-workers boots one
    for nearly every request (a cold start: waiting longer than 5 s, well below a VM boot)."""
    setup = Setup(DataCenter.reference(), SimConfig(), Models.build("vm"), jobs=150, load=0.1)
    for seed in (1, 2):
        jobs, _ = setup.workload("poisson", seed)
        cold = {}
        for policy in ("minimize-workers", "reserve"):
            result = setup.run(policy, jobs, seed)
            assert not result.stats.cut and result.stats.refused == {}
            cold[policy] = sum(1 for q in queueing(result.run) if q > 5.0)
        assert cold["reserve"] < cold["minimize-workers"] / 2, cold


def test_queue_threshold_boots_fewer_workers_and_queues_more_as_the_threshold_rises() -> None:
    """Under bursts, on a data center that never runs out of room: jobs wait for busy workers
    instead of booting, the more so the higher the threshold."""
    dc = DataCenter.uniform(8, 8, 32.0)
    setup = Setup(dc, SimConfig(), Models.build("vm"), jobs=150)
    for seed in (1, 2):
        jobs, _ = setup.workload("bursty", seed)
        booted, waited = [], []
        policies = [GracePeriod(), *(QueueThreshold(threshold=t) for t in (1, 3, 6))]
        for policy in policies:
            result = Simulation(setup.config, dc, setup.models, jobs, seed, policy=policy).run()
            assert not result.stats.cut and result.stats.refused == {}
            booted.append(len(result.run.workers))
            waited.append(statistics.fmean(queueing(result.run)))
        assert booted[0] > booted[2] > booted[3], booted  # grace-period boots the most
        assert waited == sorted(waited) and waited[0] < waited[-1], waited


class Recorder:
    """Passes the views to an AdaptiveGrace and notes its grace and its stops."""

    def __init__(self, policy: AdaptiveGrace) -> None:
        self.policy, self.name = policy, policy.name
        self.graces: list[tuple[bool, float]] = []  # (arrivals rising, grace) per view
        self.idle_kept: list[tuple[bool, float]] = []  # (rising, idle seconds) of kept ones
        self.stopped_after: list[float] = []  # idle seconds of the workers it stopped

    def decide(self, view: ClusterView) -> Decisions:
        d = self.policy.decide(view)
        rising = view.stats.rate_short > view.stats.rate_long
        self.graces.append((rising, self.policy.grace))
        stopped = {s.worker_id for s in d.stop}
        for w in view.idle:
            idle_for = view.now - (w.idle_since or view.now)
            if w.id in stopped:
                self.stopped_after.append(idle_for)
            else:
                self.idle_kept.append((rising, idle_for))
        return d


def test_adaptive_grace_lengthens_under_rising_load_and_shortens_when_quiet() -> None:
    """Diurnal traffic (a request every 20 s on average, a 30-minute "day", so that workers
    do fall idle in every phase): while arrivals rise the grace climbs to twice its setting
    and idle workers are kept past the setting, where grace-period stops them; as arrivals
    fall it drops to half and idle workers go sooner than grace-period's 60 s."""
    params = {"mean_rate": 0.05, "period_seconds": 1800.0}
    setup = Setup(DataCenter.reference(), SimConfig(), Models.build("vm"), jobs=200, params=params)
    for seed in (1, 2):
        jobs, _ = setup.workload("diurnal", seed)
        rec = Recorder(AdaptiveGrace(max_idle_time=60.0))
        result = Simulation(setup.config, setup.datacenter, setup.models, jobs, seed, policy=rec)
        run = result.run()
        assert not run.stats.cut and run.stats.refused == {}
        rising = [g for r, g in rec.graces if r]
        falling = [g for r, g in rec.graces if not r]
        assert statistics.fmean(rising) > statistics.fmean(falling) + 20
        assert {30.0, 120.0} <= {g for _, g in rec.graces}  # both bounds reached
        assert max(i for r, i in rec.idle_kept if r) > 60.0  # kept past the setting
        assert rec.stopped_after and statistics.fmean(rec.stopped_after) < 50.0


def test_priority_dynamic_serves_small_inputs_first_and_starves_none() -> None:
    """Saturation (offered load 1.2 on one 6-core node): the smaller half of the inputs waits
    far less than the larger half, where grace-period's FIFO treats them alike; every job
    completes."""
    dc = DataCenter.uniform(1, 6, 24.0)
    setup = Setup(dc, SimConfig(), Models.build("vm"), jobs=200, load=1.2)
    for seed in (1, 2):
        jobs, _ = setup.workload("poisson", seed)
        size = {j.id: j.movie.size_bytes for j in jobs}
        median = sorted(size.values())[len(size) // 2]
        ratio = {}
        for policy in (GracePeriod(), PriorityDynamic()):
            result = Simulation(setup.config, dc, setup.models, jobs, seed, policy=policy).run()
            assert not result.stats.cut and result.stats.refused == {}
            done = [s for s in result.run.jobs if s.state == "Completed"]
            assert len(done) == len(jobs)
            q = {s.job_id: s.assigned - s.received for s in done if s.assigned is not None}
            small = statistics.fmean(v for k, v in q.items() if size[k] < median)
            large = statistics.fmean(v for k, v in q.items() if size[k] >= median)
            ratio[policy.name] = small / large
        assert ratio["priority-dynamic"] < 0.6 < ratio["grace-period"], ratio


# ---- decisions on hand-made views -------------------------------------------------------
def job(i: int, age: float = 0.0, size_mb: float = 10.0, **kw: object) -> JobView:
    return JobView(
        id=f"j{i}",
        id_video="bbb_1.mp4",
        bitrate=kw.pop("bitrate", 2000),  # type: ignore[arg-type]
        speed=kw.pop("speed", "ultrafast"),  # type: ignore[arg-type]
        received_at=NOW - age,
        input_size=int(size_mb * 1e6),
        **kw,  # type: ignore[arg-type]
    )


def worker(i: int, state: WorkerState, idle_for: float | None = None) -> WorkerView:
    idle_since = None if idle_for is None else NOW - idle_for
    return WorkerView(f"w{i}", FLAVORS["small"], state, NOW - 500, "n0", idle_since)


def view(
    waiting: Sequence[JobView] = (),
    workers: Sequence[WorkerView] = (),
    free: float | None = None,
    max_workers: int = 9,
    now: float = NOW,
    **stats: object,
) -> ClusterView:
    used = sum(w.flavor.cpus for w in workers)
    free = 18.0 - used if free is None else free
    stats.setdefault("last_arrival", NOW - 1.0)
    return ClusterView(
        now=now,
        waiting=tuple(waiting),
        workers=tuple(workers),
        nodes=(NodeView("n0", 18, 48.0, free, free * 48.0 / 18),),
        limits=Limits(max_workers=max_workers),
        stats=RecentStats(**stats),  # type: ignore[arg-type]
    )


IDLE, BUSY, BOOTING = WorkerState.IDLE, WorkerState.BUSY, WorkerState.BOOTING


@pytest.mark.parametrize("name", PEERS)
def test_registered_and_within_the_limits(name: str) -> None:
    policy = make_policy(name, PolicyParams(max_idle_time=30.0, flavor="tiny"))
    assert policy.name == name
    waiting = [job(i) for i in range(5)]
    assert policy.decide(view(waiting, free=0.0)).start == ()  # no node has room
    busy = [worker(i, BUSY) for i in range(3)]
    assert policy.decide(view(waiting, busy, max_workers=3)).start == ()  # max reached
    d = policy.decide(view())  # nothing at all: nothing to do but (reserve) a reserve
    assert not d.stop and not d.assign and len(d.start) <= 1


def test_reserve_starts_a_worker_for_the_request_and_one_in_reserve() -> None:
    assert len(Reserve().decide(view([job(1)])).start) == 2
    d = Reserve().decide(view([job(1)], [worker(1, IDLE, 5.0)]))
    assert d.assign == (Assign("j1", "w1"),) and d.start == (StartWorker("small"),)
    # A booting worker is the coming reserve.
    assert Reserve().decide(view([], [worker(1, BOOTING)])).start == ()
    assert Reserve().decide(view([], [])).start == (StartWorker("small"),)
    assert Reserve().decide(view([], [], max_workers=0)).start == ()


def test_reserve_keeps_one_idle_worker_the_longest_idle() -> None:
    idle = [worker(1, IDLE, 5.0), worker(2, IDLE, 50.0), worker(3, IDLE, 1.0)]
    d = Reserve().decide(view([], idle))
    assert {s.worker_id for s in d.stop} == {"w1", "w3"} and d.start == ()
    assert d.wake_at == NOW - 1.0 + LONG_WINDOW  # when the traffic is deemed stopped


def test_reserve_holds_nothing_once_requests_stop() -> None:
    quiet = NOW - LONG_WINDOW - 1.0
    d = Reserve().decide(view([], [worker(1, IDLE, 700.0)], last_arrival=quiet))
    assert d.stop == (StopWorker("w1", "no request lately"),)
    assert Reserve().decide(view([], [], last_arrival=None)).start == ()  # none ever came


def test_queue_threshold_starts_only_beyond_the_threshold() -> None:
    busy = [worker(1, BUSY), worker(2, BUSY)]
    policy = QueueThreshold(threshold=2)
    assert policy.decide(view([job(1), job(2)], busy)).start == ()
    assert len(policy.decide(view([job(i) for i in range(5)], busy)).start) == 3
    booting = [*busy, worker(3, BOOTING)]
    assert len(policy.decide(view([job(i) for i in range(5)], booting)).start) == 2
    # Nothing busy, nothing booting: the first job gets a worker whatever the threshold.
    assert len(QueueThreshold(threshold=9).decide(view([job(1)])).start) == 1
    assert QueueThreshold(threshold=0).decide(view([job(1)], busy)).start != ()


def test_queue_threshold_keeps_idle_workers_for_the_grace() -> None:
    idle = [worker(1, IDLE, 70.0), worker(2, IDLE, 10.0)]
    d = QueueThreshold(max_idle_time=60.0).decide(view([], idle))
    assert [s.worker_id for s in d.stop] == ["w1"] and d.wake_at == NOW - 10.0 + 60.0
    d = QueueThreshold().decide(view([job(1)], idle))
    assert d.assign == (Assign("j1", "w1"),) and d.stop == ()  # longest idle first


def test_adaptive_grace_steps_by_5_s_between_half_and_twice() -> None:
    policy = AdaptiveGrace(max_idle_time=60.0)
    busy = [worker(1, BUSY)]
    for k in range(30):
        policy.decide(view([], busy, now=NOW + k))  # busy share 1: grows
        if k == 1:
            assert policy.grace == 65.0
    assert policy.grace == 120.0
    policy.decide(view([], busy, now=NOW + 29.5))  # within step_every: holds
    assert policy.grace == 120.0
    for k in range(30, 60):
        policy.decide(view([], [], now=NOW + k))  # nothing busy, nothing arriving: shrinks
    assert policy.grace == 30.0
    steady = AdaptiveGrace()
    for k in range(5):
        steady.decide(view([], [worker(1, IDLE, 0.0)], now=NOW + k, rate_short=0.2, rate_long=0.2))
    assert steady.grace == 60.0  # neither busy nor a trend: holds


def test_adaptive_grace_stops_idle_workers_after_its_grace_and_is_deterministic() -> None:
    policy = AdaptiveGrace(max_idle_time=60.0)
    idle = [worker(1, IDLE, 35.0), worker(2, IDLE, 20.0)]
    v = view([], idle, rate_short=0.0, rate_long=0.1)
    assert policy.decide(v) == policy.decide(v)  # the same view twice: one state
    for k in range(1, 7):
        policy.decide(view([], idle, now=NOW + k - 7, rate_short=0.0, rate_long=0.1))
    d = policy.decide(view([], idle, now=NOW + 1, rate_short=0.0, rate_long=0.1))
    assert policy.grace == 30.0
    assert [s.worker_id for s in d.stop] == ["w1"] and d.wake_at is None


def test_adaptive_grace_starts_a_worker_ahead_under_a_high_rate() -> None:
    # 0.5 requests/s x 10 s each = 5 workers' worth, with 2 workers: one started ahead.
    stats = dict(
        rate_short=0.5,
        rate_long=0.5,
        seconds_per_work=MappingProxyType({"small": 1.0}),
        recent_work=(5.0, 15.0),
    )
    busy = [worker(1, BUSY), worker(2, BUSY)]
    assert len(AdaptiveGrace().decide(view([], busy, **stats)).start) == 1
    assert len(AdaptiveGrace().decide(view([job(1)], busy, **stats)).start) == 2
    assert AdaptiveGrace().decide(view([], [*busy, worker(3, BOOTING)], **stats)).start == ()
    slow = {**stats, "rate_short": 0.1}
    assert AdaptiveGrace().decide(view([], busy, **slow)).start == ()
    unknown = {**stats, "seconds_per_work": MappingProxyType({})}
    assert AdaptiveGrace().decide(view([], busy, **unknown)).start == ()
    assert AdaptiveGrace().decide(view([], busy, max_workers=2, **stats)).start == ()


def test_priority_dynamic_serves_the_cheapest_first_and_ages() -> None:
    idle = [worker(1, IDLE, 5.0)]
    big_old, small_new = job(1, age=20.0, size_mb=60.0), job(2, size_mb=5.0)
    assert PriorityDynamic().decide(view([big_old, small_new], idle)).assign[0].job_id == "j2"
    # The source's order as written: the largest first.
    d = PriorityDynamic(largest_first=True).decide(view([big_old, small_new], idle))
    assert d.assign[0].job_id == "j1"
    # Aging: 0.5 x 55 MB more is worth 275 s of waiting.
    older = job(1, age=300.0, size_mb=60.0)
    assert PriorityDynamic().decide(view([older, small_new], idle)).assign[0].job_id == "j1"
    # A fast preset and a higher bitrate cost more.
    fast, cheap = job(1, speed="fast", bitrate=8000), job(2)
    assert PriorityDynamic().decide(view([fast, cheap], idle)).assign[0].job_id == "j2"
    # The core's priority counts through the rank.
    ranked = job(1, size_mb=60.0, rank=NOW - 3000.0)
    assert PriorityDynamic().decide(view([ranked, small_new], idle)).assign[0].job_id == "j1"


def test_priority_dynamic_starts_and_stops_as_grace_period() -> None:
    waiting = [job(i) for i in range(3)]
    workers = [worker(1, BOOTING), worker(2, IDLE, 70.0)]
    d = PriorityDynamic().decide(view(waiting, workers))
    assert len(d.start) == 1 and d.stop == () and len(d.assign) == 1
    d = PriorityDynamic().decide(view([], [worker(2, IDLE, 70.0), worker(3, IDLE, 1.0)]))
    assert [s.worker_id for s in d.stop] == ["w2"] and d.wake_at == NOW - 1.0 + 60.0


@pytest.mark.parametrize("name", ["reserve", "queue-threshold", "priority-dynamic"])
def test_the_simulator_shortcuts_change_nothing(name: str) -> None:
    """Their ``wake_at`` is right: skipping the ticks before it gives the run of every tick."""
    setup = Setup(DataCenter.reference(), SimConfig(max_workers=4), Models.build("vm"), jobs=120)
    jobs, _ = setup.workload("bursty", 3)
    lazy = setup.run(name, jobs, 3)
    exact = Setup(setup.datacenter, SimConfig(max_workers=4, exact=True), setup.models).run(
        name, jobs, 3
    )
    assert lazy.stats.policy_calls < exact.stats.policy_calls
    assert lazy.run.workers == exact.run.workers and lazy.run.jobs == exact.run.jobs
