"""A simulated run: the real policies decide, the controller's checks apply, the figures are
those of ``analytics.figures``, and the event log reads back to the same figures."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pytest

from dacirco.analytics.figures import figures
from dacirco.analytics.run import from_log
from dacirco.policies.base import ClusterView, Decisions, StartWorker, StopWorker, available
from dacirco.sim.bound import lower_bound
from dacirco.sim.cluster import DataCenter
from dacirco.sim.compare import Setup
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, SimResult, Simulation
from dacirco.sim.workload import CatalogShape, make_jobs, requests_for

POLICIES = ("minimize-workers", "grace-period")


def jobs_of(workload: str = "classic", n: int = 150, seed: int = 1, runtime: str = "vm"):
    models = Models.build(runtime)
    return models, make_jobs(requests_for(workload, n, seed), models, seed)


def run(policy: str, workload: str = "classic", n: int = 150, seed: int = 1, **config):
    models, jobs = jobs_of(workload, n, seed)
    cfg = SimConfig(algorithm=policy, **config)
    return Simulation(cfg, DataCenter.reference(), models, jobs, seed).run()


def same_runs(lazy: SimResult, exact: SimResult, skips: bool = True) -> None:
    """The same run; with ``skips``, for fewer calls (a policy that never says when time
    alone changes its mind, ``wake_at``, is called on every tick either way)."""
    assert lazy.stats.policy_calls < exact.stats.policy_calls or not skips
    assert figures(lazy.run) == figures(exact.run)
    assert [dataclasses.astuple(w) for w in lazy.run.workers] == [
        dataclasses.astuple(w) for w in exact.run.workers
    ]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("workload", ["classic", "bursty"])
def test_shortcuts_change_nothing(policy, workload):
    """Skipped ticks: the same run as calling on every tick."""
    lazy = run(policy, workload, max_workers=4)
    same_runs(lazy, run(policy, workload, max_workers=4, exact=True))


def split_run(policy: str, runtime: str, exact: bool, workload: str = "poisson@0.3"):
    """Short clips split in chunks (merges, workers freed together): where a policy that
    sizes its pool on the view before its own assignments would change its mind."""
    setup = Setup(
        DataCenter.reference(),
        SimConfig(split=True, exact=exact),
        Models.build(runtime),
        jobs=150,
        catalog=CatalogShape.named("short"),
    )
    work, _ = setup.workload(workload, 2)
    return setup.run(policy, work, 2)


@pytest.mark.parametrize("policy", available())
@pytest.mark.parametrize("runtime", ["vm", "pod"])
def test_skipped_ticks_change_no_policy_s_run(policy, runtime):
    """Every shipped policy says when time alone changes its mind (``wake_at``) exactly."""
    same_runs(split_run(policy, runtime, False), split_run(policy, runtime, True), skips=False)


@pytest.mark.parametrize("policy", available())
@pytest.mark.parametrize("runtime", ["vm", "pod"])
def test_no_policy_starts_a_worker_as_it_stops_one(policy, runtime):
    """Asked again at once after a stop (as the controller and the simulator do), no policy
    starts a worker of the flavor it has just stopped: that boot would be for nothing."""
    workers = split_run(policy, runtime, True).run.workers
    stopped = {(w.destroyed, w.flavor) for w in workers}
    again = [w.name for w in workers if (w.created, w.flavor) in stopped]
    assert again == []


@pytest.mark.parametrize("policy", POLICIES)
def test_every_job_completes_and_no_policy_beats_the_bound(policy):
    models, jobs = jobs_of("poisson", 200, 2)
    result = Simulation(SimConfig(algorithm=policy), DataCenter.reference(), models, jobs, 2).run()
    f = figures(result.run)
    bound = lower_bound(jobs, models, DataCenter.reference())
    assert f.completed == f.jobs == 200 and not result.stats.cut
    assert f.delay.avg >= bound.delay_avg and f.delay.p95 >= bound.delay_p95
    assert f.reserved_core_seconds >= bound.reserved_core_seconds
    assert f.idle_core_seconds >= 0
    assert all(w.destroyed is not None for w in result.run.workers)  # all stopped at the end
    assert result.stats.refused == {}


def test_workers_respect_max_workers_and_node_capacity():
    result = run("minimize-workers", "bursty", 200, flavor="medium", max_workers=100)
    alive: list[tuple[float, int]] = []
    for w in result.run.workers:
        alive += [(w.created, 1), (w.destroyed, -1)]
    level = peak = 0
    for _, d in sorted(alive, key=lambda x: (x[0], x[1])):
        level += d
        peak = max(peak, level)
    assert peak <= 3  # one medium (4 cores, 8 GB) per 6-core node
    capped = run("minimize-workers", "bursty", 200, max_workers=2).run.workers
    assert all(
        sum(1 for w in capped if w.created <= t < w.destroyed) <= 2
        for t in (w.created for w in capped)
    )


def test_grace_period_stops_an_idle_worker_at_the_first_tick_past_max_idle_time():
    models, jobs = jobs_of("classic", 1)
    cfg = SimConfig(algorithm="grace-period", max_idle_time=30.0, call_interval=1.0)
    result = Simulation(cfg, DataCenter.reference(), models, jobs, 1).run()
    (w,) = result.run.workers
    idle_from = w.busy[-1][1]
    assert idle_from + 30.0 <= w.destroyed < idle_from + 31.0
    mw = Simulation(
        dataclasses.replace(cfg, algorithm="minimize-workers"),
        DataCenter.reference(),
        models,
        jobs,
        1,
    ).run()
    assert mw.run.workers[0].destroyed == mw.run.workers[0].busy[-1][1]


def test_first_boot_on_a_vm_node_takes_53_s():
    result = run("minimize-workers", n=1)
    (w,) = result.run.workers
    assert w.registered - w.created == 53.0


@dataclass(frozen=True)
class Unruly:
    """Asks for what the controller refuses."""

    name: str = "unruly"

    def decide(self, view: ClusterView) -> Decisions:
        return Decisions(
            start=(StartWorker("huge"), StartWorker("small", node="nowhere"), StartWorker("small")),
            stop=(*(StopWorker(w.id) for w in view.busy), StopWorker("ghost")),
        )


def test_decisions_are_checked_like_the_controller_does():
    models, jobs = jobs_of("classic", 3)
    cfg = SimConfig(max_workers=1, linger=100.0, stall=500.0)
    result = Simulation(cfg, DataCenter.reference(), models, jobs, 1, policy=Unruly()).run()
    refused = result.stats.refused
    assert refused["start: unknown flavor"] > 0
    assert refused["start: node lacks capacity (or unknown)"] > 0
    assert refused["start: max_workers reached"] > 0
    assert refused["stop: worker busy, stopped or unknown"] > 0
    assert result.stats.cut == "stall"  # nobody assigns: the jobs wait until the run is cut
    assert figures(result.run).unfinished == 3


@pytest.mark.parametrize("policy", POLICIES)
def test_the_event_log_reads_back_to_the_same_figures(policy, tmp_path):
    models, jobs = jobs_of("bursty", 80)
    sim = Simulation(SimConfig(algorithm=policy), DataCenter.reference(), models, jobs, 1, log=True)
    result = sim.run()
    assert result.log is not None
    path = result.log.write(tmp_path / "tc-events-01.txt", {**result.run.meta, "algorithm": policy})
    parsed = from_log(path)
    assert parsed.meta["nodes"][0] == {
        "name": "compute1",
        "cpus": 6,
        "memory_gb": 16.0,
        "opportunistic": False,
    }
    assert parsed.meta["algorithm"] == policy and parsed.meta["flavor"] == "small"
    mine, theirs = figures(result.run), figures(parsed)
    for name in ("jobs", "completed", "failed", "unfinished", "workers"):
        assert getattr(mine, name) == getattr(theirs, name)
    for name in (
        "duration", "reserved_core_seconds", "idle_core_seconds", "busy_core_seconds",
        "reserved_gb_seconds",
    ):  # fmt: skip
        assert getattr(mine, name) == pytest.approx(getattr(theirs, name), rel=1e-6, abs=1e-3)
    for name in ("delay", "queueing", "boot", "cpu_util", "ram_util", "reserved_cpu_util"):
        a, b = getattr(mine, name), getattr(theirs, name)
        assert a.avg == pytest.approx(b.avg, rel=1e-6, abs=1e-4), name
        assert a.p95 == pytest.approx(b.p95, rel=1e-6, abs=1e-4), name
    assert math.isfinite(mine.delay.avg)
