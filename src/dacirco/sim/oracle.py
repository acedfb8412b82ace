"""The oracle: a clairvoyant policy, for the simulator only.

It is built with the run's whole workload, so it knows every arrival ahead of time and the
exact seconds each job takes on a worker (dispatch, download, transcode with the job's own
noise, upload): what no real policy can know. It is not a bound (the lower bound, in
``sim/bound.py``, ignores boots and capacity) but an achievable reference: a run of the same
mechanism, under the same capacity and boot draws, by a policy that makes its choices with
perfect knowledge of the traffic.

What it does with that knowledge, at each call:

- **One flavor.** Every worker is ``tiny`` (one core: where a core-second does the most work)
  when the mechanism splits jobs, else the configured flavor.
- **Chunks sized from the traffic.** A job longer than the median job (on one worker) is split
  in ``ceil(its seconds / the median's)`` chunks, at most 8: every piece of work then lasts
  about as long as a typical job, and a long movie costs little more delay than a short one.
- **Just-in-time boots.** The demand of the next boot-horizon is matched, in arrival order,
  to the workers that will be free for it: idle ones now, busy ones when their task ends
  (known exactly), booting ones when they will have booted (the 90th percentile of the boot
  model, 53 s for a node's first VM). A demand that no worker serves by its arrival (plus a
  tenth of its own length) gets a worker started as soon as its arrival is one boot away,
  on a node that already holds the image if one has room.
- **Nothing idle without a purpose.** An idle worker that no demand of the horizon needs is
  stopped: booting a new one later costs fewer core-seconds than keeping it.

Its choices are greedy, not optimal (the problem is NP-hard with boots, flavors and splits);
with reuse on, requests repeating an earlier one cost no work and are left out, as the lower
bound does. It reads only the views and what it was built with, so it is deterministic.
"""

from __future__ import annotations

import math
import random
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from dacirco.domain import FLAVORS, WorkerState
from dacirco.outputs.parts import most_parts
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    Split,
    StartWorker,
    StopWorker,
    WorkerView,
)
from dacirco.sim.models import Models
from dacirco.sim.split import chunk_job, merge_job, work_seconds
from dacirco.sim.workload import SimJob, distinct, service_s

ORACLE = "oracle"  # its name in `dacirco simulate --policy` and `dacirco compare --policies`
MAX_CHUNKS = 8
BOOT_QUANTILE = 0.9  # a worker is counted ready once this share of boots would be over
WAIT_SHARE = 0.1  # a job may wait this share of its own length for a worker already there


@dataclass(frozen=True)
class Demand:
    at: float  # when the work can start: now for a waiting job, its arrival for a future one
    seconds: float  # on one worker of the oracle's flavor
    workers: int  # 1, or its chunks


class Oracle:
    name = ORACLE

    def __init__(
        self, jobs: Sequence[SimJob], models: Models, *, split: bool, reuse: bool, flavor: str
    ) -> None:
        self.models, self.split = models, split
        self.flavor = FLAVORS["tiny" if split else flavor]
        needed = distinct(jobs) if reuse else list(jobs)
        self.by_id = {j.id: j for j in jobs}
        self.future = sorted(needed, key=lambda j: (j.arrival, j.id))
        self.arrivals = [j.arrival for j in self.future]
        self.median_s = statistics.median(self._whole_s(j) for j in needed) if needed else 0.0
        rng = random.Random(0)
        draws = sorted(models.boot.sample(rng, False) for _ in range(2000))
        self.boot = draws[int(BOOT_QUANTILE * len(draws))]
        self.first_boot = max(self.boot, models.boot.sample(rng, True))
        self.horizon = self.first_boot + self.boot
        self.warm: set[str] = set()  # nodes that held a worker (the image is there)
        self.ready_at: dict[str, float] = {}  # booting worker -> when it is counted ready
        self.parts: dict[str, tuple[str, str | None]] = {}  # part id -> (parent id, part)
        self.chunks: dict[str, int] = {}  # split job -> its chunks

    # ---- what the oracle knows ---------------------------------------------------------------
    def _cores(self) -> int:
        return self.flavor.cpus

    def _whole_s(self, job: SimJob) -> float:
        return service_s(job, self.models, self._cores())

    def chunks_for(self, job: SimJob) -> int:
        if not self.split or self.median_s <= 0:
            return 1
        want = math.ceil(self._whole_s(job) / self.median_s)
        if (lad := job.ladder) is not None:  # in parts of its renditions, as many as worth it
            return max(
                1,
                min(
                    want,
                    most_parts(
                        lad.outputs,
                        bool(lad.thumbnails),
                        lad.input_height,
                        job.movie.duration,
                    ),
                ),
            )
        return max(1, min(MAX_CHUNKS, want))

    def _part_s(self, job_id: str, now: float) -> float:
        """Seconds of the task ``job_id`` (a whole job or a part) on one worker."""
        parent, part = self.parts.get(job_id, (job_id, None))
        sim = self.by_id.get(parent)
        if sim is None:
            return self.median_s
        return self._piece_s(sim, part, self.chunks.get(parent, 1), now)

    def _piece_s(self, job: SimJob, part: str | None, chunks: int, now: float) -> float:
        """Seconds of ``job`` whole (``part`` None), of one of its ``chunks`` or its merge."""
        if part is None:
            return self._whole_s(job)
        if part == "chunk":
            piece = chunk_job(job, 1, chunks, self.models)
        else:
            piece = merge_job(job, chunks, self.models, now)
        transcode = work_seconds(piece, part, self.models, self._cores())
        return piece.dispatch_s + piece.download_s + transcode + piece.upload_s

    def _demand(self, job: SimJob, at: float, chunks: int) -> Demand:
        part = "chunk" if chunks > 1 else None
        return Demand(at, self._piece_s(job, part, chunks, at), chunks)

    # ---- the decision ------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        now = view.now
        for w in view.workers:
            if w.node is not None and w.node not in self.warm:
                self.warm.add(w.node)
                if w.state is WorkerState.BOOTING:
                    self.ready_at.setdefault(w.id, w.created_at + self.first_boot)
            if w.state is WorkerState.BOOTING:
                self.ready_at.setdefault(w.id, w.created_at + self.boot)
        for job in view.waiting:
            if job.parent_id is not None:
                self.parts[job.id] = (job.parent_id, job.part)

        splits = self._splits(view)
        split_ids = {s.job_id for s in splits}
        waiting = [j for j in view.waiting if j.id not in split_ids]

        # Supply: when each worker is free for new work (idle ones: now).
        supply = sorted(  # the idle first among the free now: they can be assigned at once
            (self._free_at(w, now), w.state is not WorkerState.IDLE, w.id) for w in view.workers
        )

        # Demand: the waiting jobs now (oldest first), then the arrivals of the horizon.
        demands: list[tuple[Demand, JobView | None]] = [
            (Demand(now, self._part_s(j.id, now), 1), j) for j in waiting
        ]
        demands += [(self._demand(self.by_id[s.job_id], now, s.chunks), None) for s in splits]
        lo, hi = bisect_right(self.arrivals, now), bisect_right(self.arrivals, now + self.horizon)
        demands += [
            (self._demand(j, j.arrival, self.chunks_for(j)), None) for j in self.future[lo:hi]
        ]

        lead = self._lead(view)
        assign: list[Assign] = []
        used: set[str] = set()
        short = 0  # workers to start now
        for demand, job in demands:
            for _ in range(demand.workers):
                # A worker there serves it if it is free before a new one would be, and an
                # idle one is kept for it only if that costs less than a boot.
                latest = max(demand.at + WAIT_SHARE * demand.seconds, now + lead)
                k = next(
                    (
                        k
                        for k, (free_at, busy, _) in enumerate(supply)
                        if free_at <= latest and (busy or demand.at <= now + self.boot)
                    ),
                    None,
                )
                if k is not None:
                    _, busy, wid = supply.pop(k)
                    is_idle = not busy
                    used.add(wid)
                    if job is not None and is_idle:
                        assign.append(Assign(job.id, wid))
                        job = None  # one worker per waiting job or part
                elif demand.at - lead <= now:
                    short += 1
        stop = tuple(
            StopWorker(w.id, "the oracle: no job for it within a boot")
            for w in view.idle
            if w.id not in used
        )
        start = self._starts(view, short)
        return Decisions(start=start, stop=stop, assign=tuple(assign), split=splits, wake_at=None)

    def _free_at(self, w: WorkerView, now: float) -> float:
        if w.state is WorkerState.IDLE:
            return now
        if w.state is WorkerState.BOOTING:
            return max(now, self.ready_at.get(w.id, w.created_at + self.boot))
        if w.job_id is None or w.busy_since is None:
            return now
        return max(now, w.busy_since + self._part_s(w.job_id, now))

    def _lead(self, view: ClusterView) -> float:
        """How long before its work a worker must be started: a boot, or a first boot when
        no node that holds the image has room."""
        for node in view.nodes:
            if node.name in self.warm and node.free_cpus >= self._cores():
                return self.boot
        return self.first_boot

    def _splits(self, view: ClusterView) -> tuple[Split, ...]:
        if not (self.split and view.limits.can_split):
            return ()
        out = []
        for job in view.waiting:
            if job.part is not None or job.frames is None or job.id not in self.by_id:
                continue
            k = min(self.chunks_for(self.by_id[job.id]), job.frames)
            if k >= 2:
                self.chunks[job.id] = k
                out.append(Split(job.id, k))
        return tuple(out)

    def _starts(self, view: ClusterView, wanted: int) -> tuple[StartWorker, ...]:
        flavor = self.flavor
        room = view.room
        free = {n.name: [n.free_cpus, n.free_memory_gb] for n in view.nodes}
        out = []
        for _ in range(min(wanted, room)):
            fits = [
                name
                for name, (cpus, mem) in free.items()
                if cpus >= flavor.cpus and mem >= flavor.memory_gb
            ]
            if view.nodes and not fits:
                break
            # A node that holds the image first (a shorter boot), then the emptiest.
            node = max(fits, key=lambda n: (n in self.warm, free[n][0], n)) if fits else None
            if node is not None:
                free[node][0] -= flavor.cpus
                free[node][1] -= flavor.memory_gb
            out.append(StartWorker(flavor.name, node))
        return tuple(out)
