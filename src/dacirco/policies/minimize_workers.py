"""minimize-workers: start a worker per request that finds none idle; stop a worker as soon as
it is idle with nothing queued. Lean, but every request after a quiet moment pays a boot."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dacirco.policies.base import ClusterView, Decisions, PolicyParams, StopWorker, register
from dacirco.policies.common import match_fifo, starts_for


@dataclass(frozen=True)
class MinimizeWorkers:
    flavor: str = "small"
    name: str = "minimize-workers"

    def decide(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = match_fifo(view)
        # Workers are only ever left idle when no job waits, so none is stopped while a
        # request waits (the classic starvation fault).
        stop = tuple(StopWorker(w.id, "idle with nothing queued") for w in still_idle)
        return Decisions(
            start=starts_for(view, len(unserved), self.flavor),
            stop=stop,
            assign=assign,
            wake_at=math.inf,  # nothing here changes with time alone
        )


@register("minimize-workers")
def _make(params: PolicyParams) -> MinimizeWorkers:
    return MinimizeWorkers(flavor=params.flavor)
