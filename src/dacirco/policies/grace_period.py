"""grace-period: like minimize-workers, but an idle worker is kept for reuse and stopped only
after ``max_idle_time`` seconds of idleness. Fast for close requests, at the cost of idle cores."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.common import first_fifo, match_fifo, starts_for
from dacirco.policies.preemptible import has_pilots, match, needs, place


@dataclass(frozen=True)
class GracePeriod:
    max_idle_time: float = 60.0
    flavor: str = "small"
    name: str = "grace-period"

    def decide(self, view: ClusterView) -> Decisions:
        if has_pilots(view):
            return self._decide_pilots(view)
        if not view.idle_since_known:
            return self._decide_scan(view)
        # Every idle worker's age is known: the ones stopped are the longest idle of those
        # left after the assignments, so the view's age order gives them without a pass over
        # every idle worker (the simulator calls this on every event).
        assign = first_fifo(view)
        first, now, grace = len(assign), view.now, self.max_idle_time
        # The idle workers left are ages[first:]: the longest idle ones, as many as past
        # their grace period and the next (read a few at a time: most calls stop none).
        count = first + 2
        while True:
            ages = view.oldest_idle(count)
            end, idle = first, len(ages)
            while end < idle and now - (ages[end].idle_since or 0.0) >= grace:
                end += 1
            if end < idle or idle < count:
                break
            count *= 2
        stopped = end - first
        stop: tuple[StopWorker, ...] = ()
        if stopped == 1:
            stop = (StopWorker(ages[first].id, f"idle for {grace:g} s"),)
        elif stopped:  # in the view's order of the idle workers, as a pass over them gives
            gone = {w.id for w in ages[first:end]}
            why = f"idle for {grace:g} s"
            stop = tuple(StopWorker(w.id, why) for w in view.idle if w.id in gone)
        oldest_kept = (ages[end].idle_since or 0.0) if end < idle else math.inf
        return Decisions(
            start=starts_for(view, view.waiting_count - len(assign), self.flavor),
            stop=stop,
            assign=assign,
            wake_at=oldest_kept + grace,
        )

    def _decide_pilots(self, view: ClusterView) -> Decisions:
        """With opportunistic capacity (``policies/preemptible.py``): chunks and short jobs
        to pilots first, long whole jobs to our own workers only."""
        assign, unserved, still_idle = match(view.waiting, view.idle_by_age)
        owned_only, anywhere = needs(view, unserved)
        return self._stops(view, assign, still_idle, place(view, owned_only, anywhere, self.flavor))

    def _decide_scan(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = match_fifo(view)
        return self._stops(view, assign, still_idle, starts_for(view, len(unserved), self.flavor))

    def _stops(
        self,
        view: ClusterView,
        assign: tuple[Assign, ...],
        still_idle: tuple[WorkerView, ...],
        start: tuple[StartWorker, ...],
    ) -> Decisions:
        """The decisions, with the idle workers past their grace stopped."""
        now, grace = view.now, self.max_idle_time
        stop = []
        oldest_kept = math.inf  # when the longest idle of the kept workers became idle
        for w in still_idle:
            t = now if w.idle_since is None else w.idle_since
            if now - t >= grace:
                stop.append(StopWorker(w.id, f"idle for {grace:g} s"))
            elif t < oldest_kept:
                oldest_kept = t
        return Decisions(start=start, stop=tuple(stop), assign=assign, wake_at=oldest_kept + grace)


@register("grace-period")
def _make(params: PolicyParams) -> GracePeriod:
    return GracePeriod(max_idle_time=params.max_idle_time, flavor=params.flavor)
