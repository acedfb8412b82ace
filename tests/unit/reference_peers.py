"""The peer policies' plain definitions, for the tests: ``cvss``, ``covt`` and
``priority-dynamic`` as first written (every waiting job sorted, the whole queue
list-scheduled on every server for each worker considered). The shipped policies take the
same decisions in less time on large views; ``test_peer_reference.py`` checks that they
agree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dacirco.core.placement import MAX_CHUNKS
from dacirco.domain import FLAVORS
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
from dacirco.policies.covt import Covt
from dacirco.policies.cvss import Cvss, urgency
from dacirco.policies.deadline import deadline, job_work, predicted_seconds, seconds_per_work
from dacirco.policies.priority_dynamic import PriorityDynamic
from dacirco.policies.provision import Room, Server, boot_seconds, servers


def plain_completions(
    view: ClusterView, queue: Sequence[JobView], pool: Sequence[Server]
) -> list[tuple[float, float]]:
    """List scheduling of ``queue`` (in that order) on ``pool``: each job goes to the server
    where it would complete first (minimum completion time). Returns, per job, its start and
    its completion (absolute times; inf when there is no server). ``pool`` is not changed."""
    free = [Server(s.at, s.flavor) for s in pool]
    out = []
    now = view.now
    spw = {f: seconds_per_work(view, f) for f in FLAVORS}
    for job in queue:
        work = job_work(job)
        best, done = None, float("inf")
        for s in free:
            end = s.at + work * spw[s.flavor]
            if end < done:
                best, done = s, end
        if best is None:
            out.append((float("inf"), float("inf")))
            continue
        out.append((now + best.at, now + done))
        best.at = done
    return out


@dataclass(frozen=True)
class PlainCvss(Cvss):
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
        done = plain_completions(view, queue, pool)
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


@dataclass(frozen=True)
class PlainCovt(Covt):
    def decide(self, view: ClusterView) -> Decisions:
        flavor, reserved = self.reservation(view)
        idle = sorted(view.idle, key=lambda w: (w.idle_since or 0.0, w.id))  # longest idle first
        n = min(len(idle), len(view.waiting))
        assign = tuple(Assign(j.id, w.id) for j, w in zip(view.waiting[:n], idle[:n], strict=True))
        waiting, still_idle = view.waiting[n:], idle[n:]
        room = Room(view)
        start = list(self.backlog(view, waiting, flavor, room))
        alive = len(view.workers) + len(start)
        while alive < reserved:
            got = room.take(flavor)
            if got is None:
                break
            start.append(got)
            alive += 1
        stop = []
        if not waiting:
            for w in still_idle[: max(0, alive - reserved)]:
                stop.append(StopWorker(w.id, f"beyond the reservation of {reserved} {flavor}"))
        busy = waiting or still_idle or view.booting
        return Decisions(
            start=tuple(start),
            stop=tuple(stop),
            assign=assign,
            wake_at=None if busy else math.inf,
        )

    def backlog(
        self, view: ClusterView, waiting: tuple[JobView, ...], flavor: str, room: Room
    ) -> tuple[StartWorker, ...]:
        """A worker for each waiting job the current workers would start too late."""
        if not waiting:
            return ()
        now, boot = view.now, boot_seconds(view)
        pool = servers(view, (*view.busy, *view.booting))
        spw = {f: seconds_per_work(view, f) for f in FLAVORS}
        start = []
        for job in waiting:  # queue order: each takes the server free first
            first = min(pool, key=lambda s: s.at, default=None)
            late = first is None or now + first.at - job.received_at > self.target_wait
            if late and (first is None or boot < first.at):
                got = room.take(flavor)
                if got is not None:
                    start.append(got)
                    first = Server(boot, flavor)
                    pool.append(first)
            if first is None:
                break
            first.at += job_work(job) * spw[first.flavor]
        return tuple(start)


@dataclass(frozen=True)
class PlainPriorityDynamic(PriorityDynamic):
    def first(self, view: ClusterView, n: int) -> list[JobView]:
        return self.queue(view)[:n]  # every waiting job sorted
