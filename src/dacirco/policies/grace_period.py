"""grace-period: like minimize-workers, but an idle worker is kept for reuse and stopped only
after ``max_idle_time`` seconds of idleness. Fast for close requests, at the cost of idle cores."""

from __future__ import annotations

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
        stop = tuple(
            StopWorker(w.id, f"idle for {self.max_idle_time:g} s")
            for w in still_idle
            if w.idle_since is not None and view.now - w.idle_since >= self.max_idle_time
        )
        return Decisions(
            start=starts_for(view, len(unserved), self.flavor), stop=stop, assign=assign
        )


@register("grace-period")
def _make(params: PolicyParams) -> GracePeriod:
    return GracePeriod(max_idle_time=params.max_idle_time, flavor=params.flavor)
