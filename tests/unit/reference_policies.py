"""The policies' plain definitions, for the tests: every waiting job sorted, every worker
scanned. The shipped policies take the same decisions in less time on large views
(``policies.order``, ``policies.right_size_serve``, ``ClusterView.idle_by_age``);
``test_policy_reference.py`` checks that they agree."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace

from dacirco.core.placement import MAX_CHUNKS
from dacirco.domain import FLAVORS, Flavor
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    NodeView,
    Split,
    StartWorker,
    StopWorker,
    WorkerView,
)
from dacirco.policies.common import starts_for
from dacirco.policies.grace_period import GracePeriod
from dacirco.policies.minimize_workers import MinimizeWorkers
from dacirco.policies.right_size import RightSize, work


def plain_match_fifo(
    view: ClusterView,
) -> tuple[tuple[Assign, ...], tuple[JobView, ...], tuple[WorkerView, ...]]:
    """Give waiting jobs, oldest first, to idle workers, longest idle first.

    Returns the assignments, the jobs still unserved and the workers still idle.
    """
    if not view.waiting:
        return (), (), view.idle
    n = min(len(view.waiting), len(view.idle))
    # The n longest idle, in that order (a partial sort: usually one job waits among many).
    first = heapq.nsmallest(n, view.idle, key=lambda w: (w.idle_since or 0.0, w.id))
    pairs = tuple(Assign(j.id, w.id) for j, w in zip(view.waiting, first, strict=False))
    taken = {w.id for w in first}
    return pairs, view.waiting[n:], tuple(w for w in view.idle if w.id not in taken)


@dataclass(frozen=True)
class PlainGracePeriod(GracePeriod):
    def decide(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = plain_match_fifo(view)
        # One pass over the idle workers (the simulator calls this on every event).
        now, grace = view.now, self.max_idle_time
        stop = []
        oldest_kept = math.inf  # when the longest idle of the kept workers became idle
        for w in still_idle:
            t = now if w.idle_since is None else w.idle_since
            if now - t >= grace:
                stop.append(StopWorker(w.id, f"idle for {grace:g} s"))
            elif t < oldest_kept:
                oldest_kept = t
        return Decisions(
            start=starts_for(view, len(unserved), self.flavor),
            stop=tuple(stop),
            assign=assign,
            wake_at=oldest_kept + grace,
        )


@dataclass(frozen=True)
class PlainMinimizeWorkers(MinimizeWorkers):
    def decide(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = plain_match_fifo(view)
        stop = tuple(StopWorker(w.id, "idle with nothing queued") for w in still_idle)
        return Decisions(
            start=starts_for(view, len(unserved), self.flavor),
            stop=stop,
            assign=assign,
            wake_at=math.inf,
        )


@dataclass(frozen=True)
class PlainRightSize(RightSize):
    def splits(self, view: ClusterView) -> tuple[Split, ...]:
        """Long jobs in as many chunks as there are cores free for them now (at least 2):
        their delay is then their work spread over those cores."""
        if not view.limits.can_split or self.max_chunks < 2:
            return ()
        free = int(sum(n.free_cpus for n in view.nodes)) + len(view.idle)
        free = min(free, view.room + len(view.idle))
        out = []
        for job in self.queue(view):
            if job.part is not None:
                free -= 1  # a part waiting already: its worker comes first
            elif work(job) >= self.split_work and min(free, self.max_chunks, job.frames or 0) >= 2:
                k = min(free, self.max_chunks, MAX_CHUNKS, job.frames or 0)
                out.append(Split(job.id, k))
                free -= k
        return tuple(out)

    def decide(self, view: ClusterView) -> Decisions:
        now = view.now
        split = self.splits(view)
        if split:
            gone = {s.job_id for s in split}
            view = replace(view, waiting=tuple(j for j in view.waiting if j.id not in gone))
        # Most recently idle first: those keep serving, the oldest age out.
        idle = sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id))
        assign, waiting = self._match(view, idle)
        taken = {a.worker_id for a in assign}
        still_idle = [w for w in idle if w.id not in taken]
        start = self._starts(view, waiting)
        keep = self.keep(view)
        surplus, stop = len(still_idle) - keep, []
        for w in reversed(still_idle):  # oldest first
            idle_for = now - (now if w.idle_since is None else w.idle_since)
            if idle_for >= self.max_idle_time or (surplus > 0 and idle_for >= self.linger):
                stop.append(StopWorker(w.id, f"idle {idle_for:.0f} s, keeping {keep}"))
                surplus -= 1
        # Idle workers age, waiting jobs run out of patience and busy workers come due with
        # time alone: ask at every tick then; otherwise only events change anything.
        wake_at = None if still_idle or waiting else math.inf
        return Decisions(start=start, stop=tuple(stop), assign=assign, wake_at=wake_at, split=split)

    def _match(
        self, view: ClusterView, idle: list[WorkerView]
    ) -> tuple[tuple[Assign, ...], list[tuple[JobView, str, int]]]:
        """Jobs, in queue order, to idle workers (most recent first) of their flavor, else of
        the smallest larger one, else of the largest they accept. Returns the assignments and
        the jobs left, with the flavor each wants and the fewest cores it accepts."""
        free: dict[str, list[WorkerView]] = {}
        for w in idle:
            free.setdefault(w.flavor.name, []).append(w)
        assign, left = [], []
        for job in self.queue(view):
            flavor = self.flavor_for(view, job)
            least = self.least_cpus(view, job, flavor)
            options = sorted((f for f in free if free[f]), key=lambda f: FLAVORS[f].cpus)
            pick = next((f for f in options if FLAVORS[f].cpus >= FLAVORS[flavor].cpus), None)
            if pick is None and options and FLAVORS[options[-1]].cpus >= least:
                pick = options[-1]
            if pick is not None:
                assign.append(Assign(job.id, free[pick].pop(0).id))
            else:
                left.append((job, flavor, least))
        return tuple(assign), left

    def _starts(
        self, view: ClusterView, waiting: list[tuple[JobView, str, int]]
    ) -> tuple[StartWorker, ...]:
        """A worker for each waiting job that no booting worker, and no busy one due soon,
        will take; within ``max_workers`` and the nodes' capacity."""
        booting = sorted((w.flavor for w in view.booting), key=lambda f: f.cpus)
        soon = self._soon_free(view)
        wanted: list[tuple[str, int]] = []
        for _, flavor, least in waiting:
            cover = next((b for b in booting if b.cpus >= FLAVORS[flavor].cpus), None)
            if cover is None and booting and booting[-1].cpus >= least:
                cover = booting[-1]
            if cover is not None:
                booting.remove(cover)
                continue
            due = next((w for w in soon if w.flavor.cpus >= least), None)
            if due is not None:
                soon.remove(due)
            else:
                wanted.append((flavor, least))
        room = view.room
        free = {n.name: [n.free_cpus, n.free_memory_gb] for n in view.nodes}
        start = []
        for flavor, least in wanted:
            if room <= 0:
                break
            placed = _place(free, flavor, least, view.nodes)
            if placed is not None:
                start.append(placed)
                room -= 1
        return tuple(start)

    def _soon_free(self, view: ClusterView) -> list[WorkerView]:
        """Busy workers predicted to be done within ``wait_factor`` boot times, soonest first
        (none of a flavor before one of its tasks completed: nothing to predict from)."""
        s = view.stats
        horizon = self.wait_factor * self.boot(view)
        due = []
        for w in view.busy:
            rate = s.seconds_per_work.get(w.flavor.name)
            if rate is None or w.busy_since is None or not w.job_work:
                continue
            left = w.job_work * rate - (view.now - w.busy_since)
            if -horizon < left <= horizon:  # long overdue: the prediction is off
                due.append((max(0.0, left), w.id, w))
        return [w for _, _, w in sorted(due)]


def _place(
    free: dict[str, list[float]], flavor: str, least: int, nodes: tuple[NodeView, ...]
) -> StartWorker | None:
    """``flavor`` on the fullest node that holds it, else the next smaller flavor down to
    ``least`` cores; ``free`` is updated."""
    if not nodes:
        return StartWorker(flavor)
    for f in sorted(FLAVORS.values(), key=lambda f: -f.cpus):
        if not least <= f.cpus <= FLAVORS[flavor].cpus:
            continue
        node = _fullest(free, f, nodes)
        if node is not None:
            free[node][0] -= f.cpus
            free[node][1] -= f.memory_gb
            return StartWorker(f.name, node)
    return None


def _fits_somewhere(view: ClusterView, flavor: Flavor) -> bool:
    if not view.nodes:
        return view.room > 0
    return view.room > 0 and any(
        n.free_cpus >= flavor.cpus and n.free_memory_gb >= flavor.memory_gb for n in view.nodes
    )


def _fullest(
    free: dict[str, list[float]], flavor: Flavor, nodes: tuple[NodeView, ...]
) -> str | None:
    best = None
    for n in nodes:
        cpus, mem = free[n.name]
        if (
            cpus >= flavor.cpus
            and mem >= flavor.memory_gb
            and (best is None or cpus < free[best][0])
        ):
            best = n.name
    return best
