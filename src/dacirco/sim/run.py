"""One simulated run: jobs arrive, the policy decides, workers boot, transcode and stop.

The loop is the real controller's (``controller/core.py``): the policy is called once for
every set of simultaneous events (job arrived, worker registered, task done) and again at
once after it stopped a worker (``stop_worker`` kicks the loop), and, when nothing happens,
every ``call_interval`` after the last call. A task's steps (dispatch, download, transcode,
upload) follow from the models when it is assigned; its end is the one event that matters.

Two shortcuts (off with ``exact=True``) keep long runs fast; they assume the policy is quiet
when nothing calls for it, which the unit tests check on both naive policies:

- once a call returned no decision, ticks are skipped until an idle worker reaches
  ``max_idle_time`` (the tick run is the first on the same grid, ``last event + k x
  call_interval``, at or after that expiry, so the grace period keeps its one-``call_interval``
  grain), or until the next event: a policy's decisions are assumed to change with time only
  through idle workers growing old;
- the call after a stop is skipped when no job waits.

The run ends when every job is done and every worker stopped; or ``linger`` seconds after the
last job was done (the remaining workers are stopped, as the real controller does on exit);
or after ``stall`` seconds without any job progressing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dacirco.analytics.run import JobSpan, NodeCapacity, RunData, WorkerSpan
from dacirco.domain import FLAVORS
from dacirco.policies.base import Decisions, Limits, Policy, PolicyParams, make_policy
from dacirco.sim.cluster import (
    BOOTING,
    BUSY,
    IDLE,
    STOPPED,
    ClusterState,
    DataCenter,
    JobState,
    SimWorker,
)
from dacirco.sim.engine import Engine
from dacirco.sim.eventlog import SimEventLog
from dacirco.sim.models import Models
from dacirco.sim.split import chunk_job, merge_job, work_seconds
from dacirco.sim.workload import SimJob

BOOTED, DONE = 1, 2
INF = math.inf
MAX_RECALLS = 100


@dataclass(frozen=True)
class SimConfig:
    algorithm: str = "grace-period"
    flavor: str = "small"
    max_workers: int | None = None  # None: as many as the data center holds (smallest flavor)
    max_idle_time: float = 60.0
    call_interval: float = 1.0
    runtime: str = "vm"
    exact: bool = False
    split: bool = True  # policies may split jobs in chunks (Limits.can_split), as the controller
    linger: float = 3600.0
    stall: float = 86400.0


@dataclass
class SimStats:
    policy_calls: int = 0
    ticks: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    cut: str = ""  # why the run was cut short, if it was


@dataclass
class SimResult:
    run: RunData
    stats: SimStats
    log: SimEventLog | None


class Simulation:
    def __init__(
        self,
        config: SimConfig,
        datacenter: DataCenter,
        models: Models,
        jobs: Sequence[SimJob],
        seed: int = 0,
        policy: Policy | None = None,
        log: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        flavor = FLAVORS[config.flavor]
        max_workers = config.max_workers
        if max_workers is None:
            # As many as the nodes hold of the smallest flavor: the count never binds before
            # the capacity, whatever flavors a policy chooses.
            max_workers = datacenter.holds(min(FLAVORS.values(), key=lambda f: f.cpus))
        self.config, self.models, self.jobs = config, models, list(jobs)
        self.datacenter = datacenter
        self.policy = policy or make_policy(
            config.algorithm, PolicyParams(max_idle_time=config.max_idle_time, flavor=flavor.name)
        )
        limits = Limits(max_workers, flavor.name, can_split=config.split)
        self.state = ClusterState(datacenter, limits)
        self.engine = Engine()
        self.rng = random.Random(f"dacirco-sim-boots-{seed}")
        self.log = SimEventLog() if log else None
        self.stats = SimStats(refused=self.state.refused)
        self.meta = {
            **asdict(config),
            "max_workers": max_workers,
            "seed": seed,
            "simulated": True,
            "nodes": [asdict(n) for n in datacenter.nodes],
            **(meta or {}),
        }
        self._anchor, self._k, self.next_tick = 0.0, 0, INF
        self._done = 0
        self._progress_at = 0.0
        self._tasks = 0

    # ---- the loop --------------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        engine, jobs, state = self.engine, self.jobs, self.state
        n, i = len(jobs), 0
        first = jobs[0].arrival if jobs else 0.0
        engine.now = first
        linger, stall = self.config.linger, self.config.stall
        while True:
            t_heap = engine.peek_time()
            t = min(
                jobs[i].arrival if i < n else INF, INF if t_heap is None else t_heap, self.next_tick
            )
            if t == INF:
                break
            if self._done == n and t > self._progress_at + linger:
                self._cut(self._progress_at + linger, "linger")
                break
            if t > self._progress_at + stall and state.waiting:
                self._cut(self._progress_at + stall, "stall")
                break
            engine.now = t
            happened = False
            while i < n and jobs[i].arrival == t:
                self._arrive(jobs[i], t)
                i += 1
                happened = True
                if progress is not None and i % 1000 == 0:
                    progress(i)
            if t_heap == t:
                for kind, data in engine.pop_batch():
                    happened = (
                        self._booted(data, t) if kind == BOOTED else self._task_done(data, t)
                    ) or happened
            if happened:
                self._anchor, self._k = t, 0
            elif t == self.next_tick:
                self.stats.ticks += 1
            else:
                continue  # a boot event for a worker already stopped
            self._reconcile(t)
            if self._done == n and not state.alive and i == n:
                break
        if progress is not None:
            progress(n)
        return SimResult(self._run_data(), self.stats, self.log)

    def _reconcile(self, now: float) -> None:
        state, policy, exact = self.state, self.policy, self.config.exact
        for _ in range(MAX_RECALLS):
            decisions = policy.decide(state.view(now))
            self.stats.policy_calls += 1
            stopped = False  # or split: either makes the policy worth asking again at once
            for split in decisions.split:
                js = state.check_split(split)
                if js is not None:
                    self._split(js, split.chunks, now)
                    stopped = True
            for stop in decisions.stop:
                w = state.check_stop(stop)
                if w is not None:
                    self._stop(w, now)
                    stopped = True
            for assign in decisions.assign:
                pair = state.check_assign(assign)
                if pair is not None:
                    self._assign(pair[0], pair[1], now)
            for start in decisions.start:
                placed = state.check_start(start)
                if placed is not None:
                    self._start(placed[0], placed[1], now)
            if not stopped or (not exact and not state.waiting):
                break
        self._schedule_tick(decisions)

    def _schedule_tick(self, decisions: Decisions) -> None:
        """The next tick: ``last event + k x call_interval``, as the controller's loop. Unless
        ``exact``, when the policy had nothing to do and said when time alone would change
        its mind (``wake_at``), the ticks before that are skipped: they would be no-ops."""
        ci, a, k = self.config.call_interval, self._anchor, self._k + 1
        wake = decisions.wake_at
        if decisions.empty and wake is not None and not self.config.exact:
            if wake == INF:
                self.next_tick = INF
                return
            k = max(k, math.ceil((wake - a) / ci))
        self._k, self.next_tick = k, a + k * ci

    # ---- events ----------------------------------------------------------------------------
    def _arrive(self, job: SimJob, now: float) -> None:
        js = JobState(job)
        self.state.add_waiting(js)
        self.state.stats.arrival(now, job.movie.duration, js.work)
        self._progress_at = now
        if self.log is not None:
            self.log.emit(
                now,
                "EV1",
                request_id=job.id,
                input_video=job.movie.name,
                bitrate=job.bitrate,
                speed=job.speed,
            )

    def _booted(self, w: SimWorker, now: float) -> bool:
        if w.state is not BOOTING:
            return False
        w.registered = now
        self.state.stats.booted(now - w.created)
        self.state.set_worker(w, IDLE, now)
        if self.log is not None:
            f = w.flavor
            self.log.emit(
                now,
                "EV11",
                name=w.name,
                worker_id=w.id,
                node=self.datacenter.nodes[w.node].name,
                cpus=str(f.cpus),
                memory=f"{f.memory_gb:g}",
            )
        return True

    def _task_done(self, w: SimWorker, now: float) -> bool:
        js = w.job
        assert js is not None and js.assigned is not None
        js.state = "Completed"
        w.busy.append((js.assigned, now))
        if js.part != "merge":
            self.state.stats.task_done(w.flavor.name, js.work, now - js.assigned)
        w.job = None
        self.state.set_worker(w, IDLE, now)
        self._progress_at = now
        if self.log is not None:
            self._log_steps(js, now)
        parent = js.parent
        if parent is None:
            self._done += 1
        elif js.part == "chunk":
            parent.left -= 1
            if parent.left == 0:
                merge = merge_job(parent.job, parent.left_of, self.models, now)
                self.state.add_waiting(JobState(merge, "merge", parent))
        else:  # the merge: the split job is done
            parent.state, parent.steps, parent.worker = "Completed", js.steps, w
            self._done += 1
        return True

    def _split(self, js: JobState, chunks: int, now: float) -> None:
        js.state, js.left, js.left_of = "Split", chunks, chunks
        for i in range(1, chunks + 1):
            part = chunk_job(js.job, i, chunks, self.models)
            self.state.add_waiting(JobState(part, "chunk", js))
        if self.log is not None:
            self.log.emit(now, "EV15", request_id=js.job.id, chunks=chunks)

    # ---- decisions, once checked -----------------------------------------------------------
    def _stop(self, w: SimWorker, now: float, reason: str | None = None) -> None:
        self.state.stop_worker(w, now)
        if self.log is not None:
            if reason is not None:
                self.log.emit(now, "EV12", name=w.name, worker_id=w.id, reason=reason)
            self.log.emit(now, "EV8", name=w.name, worker_id=w.id)

    def _assign(self, js: JobState, w: SimWorker, now: float) -> None:
        job = js.job
        self._tasks += 1
        js.state, js.assigned, js.worker = "Started", now, w
        js.task_id = f"t{self._tasks:06d}"
        started = now + job.dispatch_s
        downloaded = started + job.download_s
        transcoded = downloaded + work_seconds(job, js.part, self.models, w.flavor.cpus)
        uploaded = transcoded + job.upload_s
        if js.parent is not None and js.parent.assigned is None:
            js.parent.assigned = now  # a split job starts with its first part
        js.steps = (started, downloaded, transcoded, uploaded)
        w.job = js
        self.state.set_worker(w, BUSY, None)
        self.engine.at(uploaded, DONE, w)
        self._progress_at = now
        if self.log is not None:
            rid = js.parent.job.id if js.parent is not None else job.id
            self.log.emit(now, "EV3", request_id=rid, worker_id=w.id, task_id=js.task_id)

    def _start(self, flavor, node: int, now: float) -> None:  # type: ignore[no-untyped-def]
        state = self.state
        first = node not in state.placed_on
        state.placed_on.add(node)
        w = state.new_worker(flavor, node, now)
        w.boot_s = self.models.boot.sample(self.rng, first)
        self.engine.at(now + w.boot_s, BOOTED, w)
        if self.log is not None:
            self.log.emit(
                now,
                "EV2",
                name=w.name,
                worker_id=w.id,
                flavor=flavor.name,
                node=state.nodes[node].name,
            )

    def _log_steps(self, js: JobState, until: float) -> None:
        assert self.log is not None and js.steps is not None and js.worker is not None
        rid = js.parent.job.id if js.parent is not None else js.job.id
        ids = {"request_id": rid, "worker_id": js.worker.id, "task_id": js.task_id}
        last = "EV16" if js.part == "chunk" else "EV7"  # a chunk's upload is not the output
        for code, t in zip(("EV4", "EV5", "EV6", last), js.steps, strict=True):
            if t <= until:
                self.log.emit(t, code, **ids)

    def _cut(self, now: float, why: str) -> None:
        """End of the simulation: stop every worker (a busy one's job goes back to waiting)."""
        self.stats.cut = why
        self.engine.now = now
        for w in list(self.state.workers.values()):
            if w.state is BUSY and w.job is not None:
                js = w.job
                assert js.assigned is not None
                w.busy.append((js.assigned, now))
                js.state = "Waiting"
                if self.log is not None:
                    self._log_steps(js, now)
                    rid = js.parent.job.id if js.parent is not None else js.job.id
                    self.log.emit(now, "EV14", request_id=rid, reason="simulation ended")
                w.job = None
            if w.state is not STOPPED:
                self._stop(w, now)

    # ---- the result ------------------------------------------------------------------------
    def _run_data(self) -> RunData:
        state = self.state
        workers = [
            WorkerSpan(
                worker_id=w.id,
                name=w.name,
                cpus=w.flavor.cpus,
                memory_gb=w.flavor.memory_gb,
                created=w.created,
                registered=w.registered,
                destroyed=w.destroyed,
                node=state.nodes[w.node].name,
                flavor=w.flavor.name,
                busy=w.busy,
            )
            for w in state.workers.values()
        ]
        jobs = []
        for job in self.jobs:
            js = state.jobs.get(job.id)
            span = JobSpan(job.id, job.arrival, job.movie.name, job.bitrate, job.speed)
            if js is not None and js.state == "Split":  # cut short while its parts ran
                span.state, span.assigned = "Started", js.assigned
            elif js is not None and js.steps is not None:
                end = js.steps[3] if js.state == "Completed" else self.engine.now
                started, downloaded, transcoded, uploaded = (
                    s if s <= end else None for s in js.steps
                )
                span.state, span.assigned, span.attempts = js.state, js.assigned, 1
                span.started, span.downloaded, span.transcoded = started, downloaded, transcoded
                span.uploaded = uploaded if js.state == "Completed" else None
                span.worker_id = js.worker.id if js.worker is not None else None
            jobs.append(span)
        times = [j.arrival for j in self.jobs[:1]]
        start = times[0] if times else 0.0
        end = max([self.engine.now, start] + [w.destroyed or 0.0 for w in state.workers.values()])
        nodes = [NodeCapacity(n.name, n.cpus, n.memory_gb) for n in state.nodes]
        label = f"sim-{self.config.algorithm}"
        return RunData(label, start, end, nodes, workers, jobs, None, self.meta)
