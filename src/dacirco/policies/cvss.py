"""cvss: deadline-driven mapping and provisioning of the CVSS / CVS2 architecture.

Sources: X. Li, M. Amini Salehi, M. Bayoumi, R. Buyya, "CVSS: A Cost-Efficient and
QoS-Aware Video Streaming Using Cloud Services", 16th IEEE/ACM International Symposium on
Cluster, Cloud and Grid Computing (CCGrid), 2016; and X. Li, M. Amini Salehi, M. Bayoumi,
N.-F. Tzeng, R. Buyya, "Cost-Efficient and Robust On-Demand Video Transcoding Using
Heterogeneous Cloud Services", IEEE Transactions on Parallel and Distributed Systems,
2018 (arXiv:1711.01008). docs/peers/literature.md says what they specify and what is assumed.

- **Deadlines.** Every job has the deadline of ``policies.deadline`` (the papers' tasks carry
  their presentation time; DaCirco's requests carry none).
- **Batch queue, earliest deadline first** (the papers' "shortest deadline first", which they
  found best with dynamic provisioning). A priority moves a job's deadline as it moves its
  rank (``JobView.ranked_at``).
- **Mapping by affinity, minimum completion time.** Each job, in that order, goes to an idle
  worker of the flavor with the best affinity for it: among the flavors on which it would
  still meet its deadline, the one that costs the fewest core-seconds; if none would, the
  fastest. Lacking one, the idle worker on which it completes first.
- **Provisioner.** The deadline-miss rate the queue is heading for is predicted by list
  scheduling the waiting jobs on the workers (busy ones when their job is predicted done,
  booting ones when booted). Above ``upper`` (the papers' beta), workers are started, each
  of the affinity flavor of the first job still predicted late, until the prediction is back
  under ``upper``: the further above, the more workers. Below ``lower`` (alpha), idle workers
  that have been idle ``cycle`` seconds (the papers' charging cycle: "scale up early and
  scale down slowly") are stopped, oldest first, one per call.
- **Splitting** (where the mechanism can split, ``Limits.can_split``): the papers transcode
  each video as GOP tasks in parallel; a job of work >= ``split_work`` is split into as many
  chunks as there are cores free (2 to ``max_chunks``).

Its numbers (``upper``, ``lower``, ``cycle``, ``split_work``, ``max_chunks``) are knobs
(``--policy-knob``).

Memoryless: everything is read from the view. Deadlines pass and idle workers age with time
alone, so ``wake_at`` is None (asked at every tick) while a job waits or a worker is idle.

A decision reads the batch queue only as far as it needs (``policies.batch``): the jobs that
idle workers take now, and, while a bound shows the miss rate stays above ``upper`` whatever
is started, list scheduling up to the first late job of each round; the whole queue is
scheduled only when the bound cannot tell. The decisions are those of scheduling it all
(``tests/unit/test_peer_reference.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from dacirco.core.placement import MAX_CHUNKS
from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    PolicyParams,
    Split,
    StartWorker,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.batch import Batch, misses_above
from dacirco.policies.deadline import deadline, job_work
from dacirco.policies.edf import by_urgency, unranked, urgency
from dacirco.policies.line import Line
from dacirco.policies.provision import (
    Room,
    Server,
    boot_seconds,
    completions,
    free_times,
    servers,
    speeds,
)

__all__ = ["Cvss", "urgency"]  # ``urgency`` is defined in ``edf``, still importable from here


@dataclass(frozen=True)
class Cvss:
    upper: float = 0.2  # beta: the deadline-miss rate above which workers are added
    lower: float = 0.05  # alpha: the rate below which idle workers may go
    cycle: float = 30.0  # seconds an idle worker is kept at least (stands for the charging cycle)
    split_work: float = 200.0  # where the mechanism can split: jobs of this much work ...
    max_chunks: int = 8  # ... go in up to this many chunks, one per free core
    name: str = "cvss"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        # Shares of the queue predicted late; a ``lower`` at or above ``upper`` acts as
        # ``upper`` (an idle worker goes whenever none is started).
        "upper": (0.0, 1.0),
        "lower": (0.0, 1.0),
        "cycle": (0.0, 86400.0),
        "split_work": (1.0, 1e6),
        "max_chunks": (1, MAX_CHUNKS),  # the most a split may have
    }

    # ---- affinity --------------------------------------------------------------------------
    def affinity(
        self,
        view: ClusterView,
        job: JobView,
        start: float,
        spw: Mapping[str, float] | None = None,
    ) -> list[str]:
        """Flavors, best first, for ``job`` started at ``start``: those that meet its deadline
        by cost (cores x predicted seconds), then the others by speed. ``spw``: each flavor's
        seconds per unit of work (``provision.speeds``), if known."""
        due = deadline(job)
        work = job_work(job)
        if spw is None:
            spw = speeds(view)

        def key(f: str) -> tuple[int, float, int]:
            t = work * spw[f]  # predicted_seconds
            meets = start + t <= due
            return (0, FLAVORS[f].cpus * t, FLAVORS[f].cpus) if meets else (1, t, FLAVORS[f].cpus)

        return sorted(FLAVORS, key=key)

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        plain = unranked(view)
        chosen = self.chosen_splits(view, plain)
        split = tuple(Split(j.id, k) for j, k in chosen)
        queue = Batch(view, [j for j, _ in chosen], plain)
        # Most recently idle first, so the oldest age out and can be released.
        idle = sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id))
        assign = self.map(view, queue, idle)
        taken = {a.worker_id for a in assign}
        still_idle = [w for w in idle if w.id not in taken]
        start = self.provision(view, queue)
        stop: tuple[StopWorker, ...] = ()
        if not start and not self.above(view, queue, self.lower):
            stop = self.release(view, still_idle)
        wake = None if (len(queue) or still_idle) else math.inf
        return Decisions(start=start, stop=stop, assign=assign, wake_at=wake, split=split)

    def map(self, view: ClusterView, queue: Batch, idle: list[WorkerView]) -> tuple[Assign, ...]:
        """The first jobs of ``queue``, each to an idle worker of its best flavor with one
        left; they leave ``queue``. Every job finds one while any is left, so only the first
        jobs, as many as the idle workers, are looked at (and while the idle workers left are
        of one flavor, that is the job's best)."""
        free: dict[str, list[WorkerView]] = {}
        for w in idle:
            free.setdefault(w.flavor.name, []).append(w)
        have = [f for f in FLAVORS if free.get(f)]
        spw = speeds(view)
        assign: list[Assign] = []
        while have:
            job = queue.get(len(assign))
            if job is None:
                break
            if len(have) == 1:
                pick = have[0]
            else:
                pick = next(f for f in self.affinity(view, job, view.now, spw) if free.get(f))
            workers = free[pick]
            assign.append(Assign(job.id, workers.pop(0).id))
            if not workers:
                have.remove(pick)
        queue.drop(len(assign))
        return tuple(assign)

    def predict(
        self,
        view: ClusterView,
        queue: list[JobView],
        extra: list[Server],
        pool: list[Server] | None = None,
    ) -> tuple[float, JobView | None]:
        """The share of ``queue`` predicted to miss its deadline on the busy and booting
        workers (``pool``, if known) plus ``extra``, and the first job predicted late (None
        if none is)."""
        if not queue:
            return 0.0, None
        if pool is None:
            pool = servers(view, (*view.busy, *view.booting))
        done = completions(view, queue, pool + extra)
        late = [j for j, (_, end) in zip(queue, done, strict=True) if end > deadline(j)]
        return len(late) / len(queue), (late[0] if late else None)

    def above(self, view: ClusterView, queue: Batch, rate: float) -> bool:
        """Whether the predicted miss rate of ``queue`` (``predict``) is above ``rate``."""
        n = len(queue)
        if n == 0:
            return rate < 0.0
        pool = free_times(view, (*view.busy, *view.booting))
        if misses_above(view, queue, pool, 0, 0.0, rate):
            return True
        return self.predict(view, queue.jobs(), [], [Server(*s) for s in pool])[0] > rate

    def provision(self, view: ClusterView, queue: Batch) -> tuple[StartWorker, ...]:
        """Workers until the predicted miss rate is at most ``upper`` (or nothing fits); at
        least one while no worker is there to take the queue at all."""
        n = len(queue)
        room, boot = Room(view), boot_seconds(view)
        if not n or room.count <= 0:  # no worker could be started
            return ()
        pool = free_times(view, (*view.busy, *view.booting))
        if misses_above(view, queue, pool, min(room.count, n), boot, self.upper):
            return self.add_all(view, queue, Line(view.now, speeds(view), pool), room)
        jobs = queue.jobs()
        known = [Server(*s) for s in pool]
        extra: list[Server] = []
        start: list[StartWorker] = []
        while len(start) < len(jobs):
            rate, late = self.predict(view, jobs, extra, known)
            stuck = not (view.busy or view.booting or extra)
            if late is None or (rate <= self.upper and not stuck):
                break
            got = self.take(view, late, room)
            if got is None:
                break
            start.append(got)
            extra.append(Server(boot, got.flavor))
        return tuple(start)

    def add_all(
        self, view: ClusterView, queue: Batch, line: Line, room: Room
    ) -> tuple[StartWorker, ...]:
        """``provision`` when the miss rate stays above ``upper`` whatever is started: a
        worker per round, for the first late job of the round, until none fits. While that
        job is the queue's first, a worker that comes free no sooner than one of its flavor
        already there changes nothing of it: the next round has the same job."""
        boot = boot_seconds(view)
        start: list[StartWorker] = []
        late: JobView | None = None
        first, flavors, full = False, [], set()
        while len(start) < len(queue):
            if late is None or not first:
                late, first = self.first_late(queue, line)
                if late is None:  # not reached: the bound leaves a late job
                    break
                flavors = self.affinity(view, late, view.now + boot, line.spw)
            got = None
            for flavor in flavors:  # as ``take``; a flavor refused once is refused again
                if flavor not in full:
                    got = room.take(flavor)
                    if got is not None:
                        break
                    full.add(flavor)
            if got is None:
                break
            start.append(got)
            earliest = line.earliest(got.flavor)
            line.add(boot, got.flavor)
            if earliest is None or earliest > boot:
                late = None
        return tuple(start)

    @staticmethod
    def first_late(queue: Batch, line: Line) -> tuple[JobView | None, bool]:
        """The first job of ``queue`` that list scheduling on ``line`` makes late, and
        whether it is the first of the queue (``line`` is not changed: it is copied once a
        job is placed)."""
        job = queue.get(0)
        if job is None:
            return None, False
        done = line.first(job_work(job))[0]
        if line.now + done > deadline(job):  # as ``place`` would have it
            return job, True
        line, i = line.copy(), 0
        while (job := queue.get(i)) is not None:
            if line.place(job_work(job))[1] > deadline(job):
                return job, i == 0
            i += 1
        return None, False

    def take(
        self, view: ClusterView, job: JobView, room: Room, spw: Mapping[str, float] | None = None
    ) -> StartWorker | None:
        """A worker of the best flavor for ``job`` (started once booted) that still fits."""
        for flavor in self.affinity(view, job, view.now + boot_seconds(view), spw):
            got = room.take(flavor)
            if got is not None:
                return got
        return None

    def release(self, view: ClusterView, idle: list[WorkerView]) -> tuple[StopWorker, ...]:
        """The longest idle worker, once idle a whole ``cycle``."""
        now = view.now
        for w in reversed(idle):  # oldest idle first
            idle_for = now - (now if w.idle_since is None else w.idle_since)
            if idle_for >= self.cycle:
                return (StopWorker(w.id, f"idle {idle_for:.0f} s, miss rate under alpha"),)
        return ()

    def splits(self, view: ClusterView) -> tuple[Split, ...]:
        """Long jobs as GOP-like chunks, as many as there are cores free for them (>= 2)."""
        return tuple(Split(j.id, k) for j, k in self.chosen_splits(view))

    def chosen_splits(
        self, view: ClusterView, plain: bool | None = None
    ) -> list[tuple[JobView, int]]:
        """``splits`` with the jobs split (``plain``: ``edf.unranked(view)``, if known).
        Only parts and long jobs change the count of free cores, and once under 2 none is
        split any more: the queue is read that far."""
        if not view.limits.can_split or self.max_chunks < 2:
            return []
        free = int(sum(n.free_cpus for n in view.nodes)) + len(view.idle)
        free = min(free, view.room + len(view.idle))
        groups = view.waiting_groups
        if groups is not None:
            waiting = view.waiting
            groups = tuple(
                g
                for g in groups
                if waiting[g[0]].part is not None or job_work(waiting[g[0]]) >= self.split_work
            )
        out = []
        for job in by_urgency(view, groups, plain):
            if free < 2:
                break
            if job.part is not None:
                free -= 1  # a part waiting already: its worker comes first
                continue
            k = min(free, self.max_chunks, MAX_CHUNKS, job.frames or 0)
            if job_work(job) >= self.split_work and k >= 2:
                out.append((job, k))
                free -= k
        return out


@register("cvss")
def _make(params: PolicyParams) -> Cvss:
    return Cvss()
