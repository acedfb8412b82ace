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

Memoryless: everything is read from the view. Deadlines pass and idle workers age with time
alone, so ``wake_at`` is None (asked at every tick) while a job waits or a worker is idle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
from dacirco.policies.deadline import deadline, job_work, predicted_seconds
from dacirco.policies.provision import Room, Server, boot_seconds, completions, servers


def urgency(job: JobView) -> float:
    """The batch queue's key: the deadline, earlier by what the job's priority is worth."""
    return deadline(job) - (job.received_at - job.ranked_at)


@dataclass(frozen=True)
class Cvss:
    upper: float = 0.2  # beta: the deadline-miss rate above which workers are added
    lower: float = 0.05  # alpha: the rate below which idle workers may go
    cycle: float = 30.0  # seconds an idle worker is kept at least (stands for the charging cycle)
    split_work: float = 200.0  # where the mechanism can split: jobs of this much work ...
    max_chunks: int = 8  # ... go in up to this many chunks, one per free core
    name: str = "cvss"

    # ---- affinity --------------------------------------------------------------------------
    def affinity(self, view: ClusterView, job: JobView, start: float) -> list[str]:
        """Flavors, best first, for ``job`` started at ``start``: those that meet its deadline
        by cost (cores x predicted seconds), then the others by speed."""
        due = deadline(job)

        def key(f: str) -> tuple[int, float, int]:
            t = predicted_seconds(view, job, f)
            meets = start + t <= due
            return (0, FLAVORS[f].cpus * t, FLAVORS[f].cpus) if meets else (1, t, FLAVORS[f].cpus)

        return sorted(FLAVORS, key=key)

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        split = self.splits(view)
        if split:
            gone = {s.job_id for s in split}
            view = replace(view, waiting=tuple(j for j in view.waiting if j.id not in gone))
        queue = sorted(view.waiting, key=lambda j: (urgency(j), j.ranked_at, j.id))
        # Most recently idle first, so the oldest age out and can be released.
        idle = sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id))
        assign, left = self.map(view, queue, idle)
        taken = {a.worker_id for a in assign}
        still_idle = [w for w in idle if w.id not in taken]
        start = self.provision(view, left)
        stop: tuple[StopWorker, ...] = ()
        if not start and self.predict(view, left, [])[0] <= self.lower:
            stop = self.release(view, still_idle)
        wake = None if (left or still_idle) else math.inf
        return Decisions(start=start, stop=stop, assign=assign, wake_at=wake, split=split)

    def map(
        self, view: ClusterView, queue: list[JobView], idle: list[WorkerView]
    ) -> tuple[tuple[Assign, ...], list[JobView]]:
        free: dict[str, list[WorkerView]] = {}
        for w in idle:
            free.setdefault(w.flavor.name, []).append(w)
        assign, left = [], []
        for job in queue:
            pick = next((f for f in self.affinity(view, job, view.now) if free.get(f)), None)
            if pick is None:
                left.append(job)
            else:
                assign.append(Assign(job.id, free[pick].pop(0).id))
        return tuple(assign), left

    def predict(
        self, view: ClusterView, queue: list[JobView], extra: list[Server]
    ) -> tuple[float, JobView | None]:
        """The share of ``queue`` predicted to miss its deadline on the busy and booting
        workers plus ``extra``, and the first job predicted late (None if none is)."""
        if not queue:
            return 0.0, None
        pool = servers(view, (*view.busy, *view.booting)) + extra
        done = completions(view, queue, pool)
        late = [j for j, (_, end) in zip(queue, done, strict=True) if end > deadline(j)]
        return len(late) / len(queue), (late[0] if late else None)

    def provision(self, view: ClusterView, queue: list[JobView]) -> tuple[StartWorker, ...]:
        """Workers until the predicted miss rate is at most ``upper`` (or nothing fits); at
        least one while no worker is there to take the queue at all."""
        if not queue:
            return ()
        room, boot = Room(view), boot_seconds(view)
        extra: list[Server] = []
        start: list[StartWorker] = []
        while len(start) < len(queue):
            rate, late = self.predict(view, queue, extra)
            stuck = not (view.busy or view.booting or extra)
            if late is None or (rate <= self.upper and not stuck):
                break
            got = None
            for flavor in self.affinity(view, late, view.now + boot):
                got = room.take(flavor)
                if got is not None:
                    break
            if got is None:
                break
            start.append(got)
            extra.append(Server(boot, got.flavor))
        return tuple(start)

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
        if not view.limits.can_split or self.max_chunks < 2:
            return ()
        free = int(sum(n.free_cpus for n in view.nodes)) + len(view.idle)
        free = min(free, view.room + len(view.idle))
        out = []
        for job in sorted(view.waiting, key=lambda j: (urgency(j), j.ranked_at, j.id)):
            if job.part is not None:
                free -= 1  # a part waiting already: its worker comes first
                continue
            k = min(free, self.max_chunks, MAX_CHUNKS, job.frames or 0)
            if job_work(job) >= self.split_work and k >= 2:
                out.append(Split(job.id, k))
                free -= k
        return tuple(out)


@register("cvss")
def _make(params: PolicyParams) -> Cvss:
    return Cvss()
