"""grace-period: like minimize-workers, but an idle worker is kept for reuse and stopped only
after ``max_idle_time`` seconds of idleness. Fast for close requests, at the cost of idle cores."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dacirco.policies.base import ClusterView, Decisions, PolicyParams, StopWorker, register
from dacirco.policies.common import match_fifo, starts_for


@dataclass(frozen=True)
class GracePeriod:
    max_idle_time: float = 60.0
    flavor: str = "small"
    name: str = "grace-period"

    def decide(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = match_fifo(view)
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


@register("grace-period")
def _make(params: PolicyParams) -> GracePeriod:
    return GracePeriod(max_idle_time=params.max_idle_time, flavor=params.flavor)
