"""Split jobs in the simulator: chunks on several workers, then a merge."""

from __future__ import annotations

import pytest

from dacirco.analytics.figures import figures
from dacirco.analytics.run import from_log
from dacirco.policies.base import Split, make_policy
from dacirco.policies.right_size import RightSize
from dacirco.scenario.model import Request
from dacirco.sim.bound import lower_bound
from dacirco.sim.calibrate import Calibration
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import (
    CHUNK_OVERHEAD_S,
    MERGE_FIXED_S,
    MERGE_MB_S,
    Models,
    SplitModel,
)
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import make_jobs

DC = DataCenter.uniform(2, 6, 16.0)


def one_long_job(models: Models):  # type: ignore[no-untyped-def]
    # bbb_9 (60 s, 1080p25) at "fast": the longest job of the catalog.
    return make_jobs([Request(0.0, "bbb_9.mp4", 3000, "fast")], models, seed=1)


def test_a_long_job_is_split_over_free_cores_and_done_sooner() -> None:
    models = Models.build("pod")
    jobs = one_long_job(models)
    whole = Simulation(SimConfig(split=False), DC, models, jobs, policy=RightSize()).run()
    split = Simulation(SimConfig(split=True), DC, models, jobs, policy=RightSize()).run()
    w, s = figures(whole.run), figures(split.run)
    assert w.completed == s.completed == 1
    assert w.workers == 1 and s.workers >= 8  # 8 chunks, the merge on one of their workers
    assert s.delay.avg < 0.4 * w.delay.avg
    busy = sorted(t1 - t0 for wk in split.run.workers for t0, t1 in wk.busy)
    assert len(busy) == 9 and busy[0] < 2.0  # 8 chunks and one short merge
    assert all(b > CHUNK_OVERHEAD_S for b in busy)
    # The whole job ran on a medium worker; its chunks on 1-core ones, which do more work
    # per core-second: fewer busy core-seconds, for all the overheads.
    assert s.busy_core_seconds < w.busy_core_seconds


def test_the_event_log_of_a_split_run_reads_back_to_the_same_figures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    models = Models.build("vm")
    jobs = make_jobs(
        [Request(0.0, "bbb_9.mp4", 3000, "fast"), Request(5.0, "bbb_1.mp4", 1000, "ultrafast")]
        + [Request(3.0, f"bbb_{i}.mp4", 2000, "fast") for i in (7, 9, 3)],
        models,
        seed=2,
    )
    sim = Simulation(
        SimConfig(split=True), DataCenter.reference(), models, jobs, 1, RightSize(), log=True
    )
    result = sim.run()
    assert result.log is not None
    path = result.log.write(tmp_path / "tc-events-01.txt", result.run.meta)
    events = [line for line in path.read_text().splitlines() if '"EV15"' in line]
    assert len(events) >= 1  # at least one request was split
    mine, theirs = figures(result.run), figures(from_log(path))
    assert mine.completed == theirs.completed == len(jobs)
    assert mine.delay.avg == pytest.approx(theirs.delay.avg, abs=1e-3)
    assert mine.queueing.avg == pytest.approx(theirs.queueing.avg, abs=1e-3)
    assert mine.busy_core_seconds == pytest.approx(theirs.busy_core_seconds, rel=1e-6)
    assert mine.reserved_core_seconds == pytest.approx(theirs.reserved_core_seconds, rel=1e-6)


def test_splits_are_refused_where_the_mechanism_cannot_split() -> None:
    class AlwaysSplit:
        name = "always-split"

        def __init__(self) -> None:
            self.inner = make_policy("minimize-workers")

        def decide(self, view):  # type: ignore[no-untyped-def]
            d = self.inner.decide(view)
            splits = tuple(Split(j.id, 2) for j in view.waiting if j.part is None)
            assigned = {a.job_id for a in d.assign}
            return type(d)(
                d.start,
                d.stop,
                d.assign,
                d.wake_at,
                tuple(s for s in splits if s.job_id not in assigned),
            )

    models = Models.build("pod")
    jobs = one_long_job(models)
    result = Simulation(SimConfig(split=False), DC, models, jobs, policy=AlwaysSplit()).run()
    assert result.stats.refused.get("split: not enabled", 0) >= 1
    assert figures(result.run).completed == 1  # the job still ran, whole


def test_right_size_splits_only_where_it_may() -> None:
    models = Models.build("pod")
    jobs = one_long_job(models)
    result = Simulation(SimConfig(split=False), DC, models, jobs, policy=RightSize()).run()
    assert result.stats.refused == {}


def test_the_lower_bound_allows_splitting() -> None:
    models = Models.build("vm")
    jobs = one_long_job(models)
    whole, split = lower_bound(jobs, models, DC), lower_bound(jobs, models, DC, split=True)
    assert split.delay_p95 < 0.25 * whole.delay_p95
    assert split.reserved_core_seconds == whole.reserved_core_seconds


def test_a_calibrations_split_costs_are_what_the_chunks_and_merge_take() -> None:
    """The chunk overhead and the merge come from the calibration when it measured them, else
    the defaults; nothing else of the run moves."""
    cal = Calibration(chunk_overhead_s=1.5, merge_s=4.0)
    assert Models.build("pod").split == SplitModel()
    assert Models.build("pod", cal).split == SplitModel(1.5, 4.0, MERGE_MB_S)
    assert Calibration.from_json(cal.to_json()).chunk_overhead_s == 1.5
    busy = {}
    for label, models in (("default", Models.build("pod")), ("measured", Models.build("pod", cal))):
        jobs = one_long_job(models)
        run = Simulation(SimConfig(split=True), DC, models, jobs, policy=RightSize()).run().run
        busy[label] = sorted(t1 - t0 for wk in run.workers for t0, t1 in wk.busy)
    merge, *chunks = busy["default"]
    assert len(chunks) == 8
    assert busy["measured"] == pytest.approx(
        sorted([merge + 4.0 - MERGE_FIXED_S, *(c + 1.5 - CHUNK_OVERHEAD_S for c in chunks)])
    )
