"""One simulated run: the controller's own core (``dacirco.core``) on simulated time.

This module is the simulator's shell around the core, as ``controller/shell.py`` is the real
one: it feeds the core the same stimuli and carries out its effects in simulated time.

- A job arrives: ``Submitted``. ``Launch``: the worker registers (``Registered``) after a
  boot drawn from the boot model. ``Wake`` of a worker with a task: its steps (dispatch,
  download, transcode, upload) follow from the models; at the upload the core gets the
  worker's four reports in one step (``ReportedSteps``, each at its own time: the
  intermediate ones change nothing a policy sees). ``Halt``: the worker's pending events
  are dropped.
- The policy is asked (``Decide``) once for every set of simultaneous events, and, when
  nothing happens, every ``call_interval`` after the last event, as the controller's loop.

One shortcut (off with ``exact=True``) keeps long runs fast; it assumes the policy is quiet
when nothing calls for it, which the unit tests check on every policy: once a call returned
no decision and said when time alone would change its mind (``Decisions.wake_at``), the
ticks before that are skipped (the tick run is the first on the same grid, ``last event + k
x call_interval``, at or after it). After a stop or a split the policy is asked again at
once, as the controller does (``core.machine``).

The run ends when every job is done and every worker stopped; or ``linger`` seconds after the
last job was done (the remaining workers are stopped, as the real controller does on exit);
or after ``stall`` seconds without any job progressing.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dacirco.analytics.run import NodeCapacity, RunData, WorkerSpan
from dacirco.core.effects import Halt, Launch, Step, Wake
from dacirco.core.machine import Core
from dacirco.core.state import CoreConfig
from dacirco.core.stimuli import (
    Decide,
    Registered,
    Released,
    ReportedSteps,
    Shutdown,
    Stimulus,
    Submitted,
)
from dacirco.domain import FLAVORS, Codec, Job, JobState, Speed, TaskState, WorkerState
from dacirco.policies.base import Decisions, Policy, PolicyParams, make_policy
from dacirco.sim.cluster import DataCenter
from dacirco.sim.engine import Engine
from dacirco.sim.eventlog import SimEventLog
from dacirco.sim.models import Models
from dacirco.sim.records import Records, job_span
from dacirco.sim.split import chunk_job, merge_job, work_seconds
from dacirco.sim.workload import SimJob

BOOTED, DONE = 1, 2
INF = math.inf
STEPS = ("started", "downloaded", "transcoded", "uploaded")
_SPEEDS = {s.value: s for s in Speed}  # a member by its value, without Enum's call
_CODECS = {c.value: c for c in Codec}


@dataclass(frozen=True)
class SimConfig:
    algorithm: str = "grace-period"  # classic, as in ``compare`` (the service: DEFAULT_POLICY)
    flavor: str = "small"
    max_workers: int | None = None  # None: as many as the data center holds (smallest flavor)
    max_idle_time: float = 60.0
    call_interval: float = 1.0
    runtime: str = "vm"
    exact: bool = False
    split: bool = True  # policies may split jobs in chunks (Limits.can_split), as the controller
    priority_aging: float = CoreConfig.priority_aging  # seconds of waiting worth one level
    reuse: bool = CoreConfig.reuse  # identical requests share one output, as the service's
    linger: float = 3600.0
    stall: float = 86400.0
    policy_knobs: tuple[tuple[str, float], ...] = ()  # policies/knobs.py: each takes its own


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


def core_job(job: SimJob) -> Job:
    """A simulated request as the controller would have stored it (a ladder job with the
    fields ``controller.submissions.new_job`` gives it, ``sim.ladder``)."""
    m = job.movie
    made = Job(
        id=job.id,
        id_video=m.name,
        bitrate=job.bitrate,
        speed=_SPEEDS.get(job.speed) or Speed(job.speed),
        received_at=job.arrival,
        codec=_CODECS.get(job.codec) or Codec(job.codec),
        priority=job.priority,
        input_size=m.size_bytes,
        input_duration=m.duration,
        input_pixel_rate=m.pixel_rate,
        input_fps=m.fps,
        input_frames=max(1, round(m.duration * m.fps)),
    )
    if (ladder := job.ladder) is None:
        return made
    return replace(  # a streaming job: the preset's fields as ``LadderMix.ladder`` fitted them
        made,
        bitrate=ladder.bitrate,
        preset=ladder.preset,
        outputs=ladder.outputs,
        quality=ladder.quality,
        thumbnails=ladder.thumbnails,
        input_height=ladder.input_height,
        work_share=ladder.work_share,
    )


class Simulation:
    # Completed jobs leave the core's state as the run goes (``sim/records.py``); True keeps
    # them all, for a subclass that reads them once the run is over.
    keep_finished = False

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
        core_config: CoreConfig | None = None,
    ) -> None:
        """``core_config``: the core's limits and timeouts, when not those the simulator
        derives from ``config`` (a controller's, to replay one of its traces)."""
        flavor = FLAVORS[config.flavor]
        max_workers = config.max_workers
        if max_workers is None:
            # As many as the nodes hold of the smallest flavor: the count never binds before
            # the capacity, whatever flavors a policy chooses.
            max_workers = datacenter.holds(min(FLAVORS.values(), key=lambda f: f.cpus))
        self.config, self.models, self.jobs = config, models, list(jobs)
        self.datacenter = datacenter
        params = PolicyParams(config.max_idle_time, flavor.name, config.policy_knobs)
        policy = policy or make_policy(config.algorithm, params)
        core_config = core_config or CoreConfig(
            max_workers=max_workers,
            flavor=flavor.name,
            can_split=config.split,
            boot_timeout=INF,  # simulated workers never fall silent
            heartbeat_timeout=INF,
            priority_aging=config.priority_aging,
            reuse=config.reuse,
        )
        self.core = Core(core_config, policy, log=log)
        self.core.state.set_nodes(datacenter.nodes)
        self.state = self.core.state
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
        self._by_id = {j.id: j for j in self.jobs}
        self.records = Records()
        self._placed_on: set[str] = set()  # nodes that got a worker already
        self._pending: dict[str, tuple[str, tuple[float, ...]]] = {}  # worker -> its task
        self._anchor, self._k, self.next_tick = 0.0, 0, INF
        self._done = 0
        self._progress_at = 0.0

    # ---- the loop --------------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None = None) -> SimResult:
        # A run makes a few objects per job and keeps them all (its result): the cyclic
        # collector would scan that growing heap again and again for garbage it does not
        # hold (no step makes a reference cycle); it runs again once the run is over.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(progress)
        finally:
            if enabled:
                gc.enable()

    def _run(self, progress: Callable[[int], None] | None) -> SimResult:
        engine, jobs, state = self.engine, self.jobs, self.state
        n, i = len(jobs), 0
        engine.now = jobs[0].arrival if jobs else 0.0
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
                self.feed(Submitted(core_job(jobs[i])), t)
                if state.jobs[jobs[i].id].state is JobState.COMPLETED:
                    self._done += 1  # served with an identical job's output
                    if not self.keep_finished:
                        self.records.retire(state, jobs[i])
                self._progress_at = t
                i += 1
                happened = True
                if progress is not None and i % 1000 == 0:
                    progress(i)
            if t_heap == t:
                for kind, data in engine.pop_batch():
                    happened = self._event(kind, data, t) or happened
            if happened:
                self._anchor, self._k = t, 0
            elif t == self.next_tick:
                self.stats.ticks += 1
            else:
                continue  # an event of a worker already stopped
            step = self.feed(Decide(), t)
            self._schedule_tick(step.decisions or Decisions())
            if self._done == n and not state.alive and i == n:
                break
        self.stats.policy_calls = self.core.policy_calls
        if progress is not None:
            progress(n)
        return SimResult(self._run_data(), self.stats, self.log)

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
            # A hair of float above a whole tick is that tick (early: one call more, no harm)
            k = max(k, math.ceil((wake - a) / ci - 1e-9))
        self._k, self.next_tick = k, a + k * ci

    # ---- the core's effects ----------------------------------------------------------------
    def feed(self, stimulus: Stimulus, now: float) -> Step:
        """One step of the core at ``now``, its effects carried out in simulated time."""
        step = self.core.handle(stimulus, now)
        self._apply(step, now)
        return step

    def _apply(self, step: Step, now: float) -> None:
        if self.log is not None:
            for e in step.emits:
                self.log.emit(e.at, e.code, **e.fields)
        for action in step.actions:
            if isinstance(action, Wake):
                if not self._dropped(action.worker_id, now):
                    self._dispatch(action.worker_id, now)
            elif isinstance(action, Launch):
                first = action.node not in self._placed_on
                self._placed_on.add(action.node)
                boot = self.models.boot.sample(self.rng, first)
                self.engine.at(now + boot, BOOTED, action.worker_id)
            elif isinstance(action, Halt):
                self._pending.pop(action.worker_id, None)

    def _dropped(self, worker_id: str, now: float) -> bool:
        """A worker woken because its task's job was canceled drops the task at once (the
        controller's worker does it within milliseconds) and is idle again."""
        worker = self.state.workers[worker_id]
        task = self.state.tasks.get(worker.task_id) if worker.task_id else None
        if task is None or task.state is not TaskState.CANCELED:
            return False
        self._pending.pop(worker_id, None)
        self.feed(Released(worker_id, task.id), now)
        return True

    def _dispatch(self, worker_id: str, now: float) -> None:
        """A worker got its task: its steps' times, from the models."""
        worker = self.state.workers[worker_id]
        task = self.state.tasks.get(worker.task_id) if worker.task_id else None
        if task is None or task.state is not TaskState.ASSIGNED:
            return
        job = self.state.jobs[task.job_id]
        sim = self._by_id.get(job.id)
        if sim is None:
            return  # a job fed from outside (Simulation.feed): its steps come from the caller
        if task.part == "chunk":
            sim = chunk_job(sim, task.index, job.chunks, self.models)
        elif task.part == "merge":
            sim = merge_job(sim, job.chunks, self.models, now)
        started = now + sim.dispatch_s
        downloaded = started + sim.download_s
        transcoded = downloaded + work_seconds(sim, task.part, self.models, worker.flavor.cpus)
        uploaded = transcoded + sim.upload_s
        self._pending[worker_id] = (task.id, (started, downloaded, transcoded, uploaded))
        self.engine.at(uploaded, DONE, worker_id)
        self._progress_at = now

    def _event(self, kind: int, data: Any, now: float) -> bool:
        """One event of the heap; True when it changed something (``sim/idle.py`` adds its
        owners' comings and goings)."""
        return self._booted(data, now) if kind == BOOTED else self._task_done(data, now)

    def _booted(self, worker_id: str, now: float) -> bool:
        w = self.state.workers[worker_id]
        if w.state is not WorkerState.BOOTING:
            return False
        f = w.flavor
        self.feed(Registered(w.id, w.node or "", f.cpus, f.memory_gb), now)
        return True

    def _task_done(self, worker_id: str, now: float) -> bool:
        pending = self._pending.pop(worker_id, None)
        if pending is None:
            return False
        task = self.state.tasks[pending[0]]
        attached = self.state.followers.get(task.job_id, ())
        self._report(worker_id, pending, now)
        self._progress_at = now
        job = self.state.jobs[task.job_id]
        if task.part != "chunk" and job.state is JobState.COMPLETED:
            self._done += 1 + len(attached)  # the jobs attached to it completed with it
            if not self.keep_finished:
                for job_id in (job.id, *attached):
                    sim = self._by_id.get(job_id)
                    if sim is not None:
                        self.records.retire(self.state, sim)
        return True

    def _report(self, worker_id: str, pending: tuple[str, tuple[float, ...]], until: float) -> None:
        """The worker's reports of the steps done by ``until``, each at its own time."""
        task_id, times = pending
        if times[-1] <= until:  # all four (a task done): no test of each
            steps = tuple(zip(STEPS, times, strict=True))
        else:
            steps = tuple((step, at) for step, at in zip(STEPS, times, strict=True) if at <= until)
        if steps:  # one step of the core: those before the upload change no one's state
            self.feed(ReportedSteps(worker_id, task_id, steps), steps[-1][1])

    def _cut(self, now: float, why: str) -> None:
        """End of the simulation: stop every worker (a busy one's job waits again)."""
        self.stats.cut = why
        self.engine.now = now
        for worker_id, pending in list(self._pending.items()):
            self._report(worker_id, pending, now)
        self._pending.clear()
        self.feed(Shutdown("simulation ended"), now)

    # ---- the result ------------------------------------------------------------------------
    def _run_data(self) -> RunData:
        state, end_now = self.state, self.engine.now
        busy = self.records.busy_by_worker(state, end_now)
        workers = [
            WorkerSpan(
                worker_id=w.id,
                name=w.name,
                cpus=w.flavor.cpus,
                memory_gb=w.flavor.memory_gb,
                created=w.created_at,
                registered=w.registered_at,
                destroyed=w.stopped_at,
                node=w.node,
                flavor=w.flavor.name,
                busy=busy.get(w.id, []),
            )
            for w in state.workers.values()
        ]
        spans, jobs = self.records.spans, []
        for sim in self.jobs:
            span = spans.get(sim.id)
            jobs.append(span if span is not None else job_span(sim, state.jobs.get(sim.id)))
        start = self.jobs[0].arrival if self.jobs else 0.0
        end = max([end_now, start] + [w.stopped_at or 0.0 for w in state.workers.values()])
        nodes = [NodeCapacity(n.name, n.cpus, n.memory_gb) for n in self.datacenter.nodes]
        label = f"sim-{self.config.algorithm}"
        return RunData(label, start, end, nodes, workers, jobs, None, self.meta)
