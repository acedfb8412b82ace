"""reserve: one idle worker always kept in reserve for the next request; the other idle
workers stopped as soon as nothing waits.

Source: the "scheduler with reserve" of a team of students of the classic DaCirco course,
"DaCirco: Transcoding-on-Demand Cloud Service" (course project, public repository
SkanderChayoukhi/Dacirco, ``src/dacirco/controller/scheduler_with_reserve.py``, 2024 by the
dates in its tests; no paper, no other author named). What it specifies: a request that
finds no idle worker starts one for itself and one more as the reserve; a request that takes
the last idle worker starts a new reserve; a worker that becomes available takes the oldest
waiting request, else stays as the reserve if no other worker is idle, else is stopped; every
periodic call tops the reserve up to one and stops the idle workers beyond one.

Assumed here (docs/peers/course.md):

- The reserve is one worker of the service's flavor (``PolicyParams.flavor``), counted among
  the workers booting: a booting worker not needed by a waiting job is the coming reserve.
- The source keeps its reserve for ever. Here it is kept while requests come: once none has
  arrived for ``quiet`` seconds (``LONG_WINDOW``, the window of ``RecentStats.rate_long``)
  it is stopped too, so an unused service holds nothing. ``wake_at`` is that moment.
- Waiting jobs go to idle workers oldest first, longest idle first (``match_fifo``), and of
  several idle workers the longest idle is the one kept (the source stops the worker that just
  became available when another is idle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dacirco.policies.base import ClusterView, Decisions, PolicyParams, StopWorker, register
from dacirco.policies.common import match_fifo, starts_for
from dacirco.policies.stats import LONG_WINDOW


@dataclass(frozen=True)
class Reserve:
    flavor: str = "small"
    reserve: int = 1  # idle workers kept for the next requests
    quiet: float = LONG_WINDOW  # seconds without a request after which no reserve is kept
    name: str = "reserve"

    def target(self, view: ClusterView) -> int:
        """How many idle workers to keep now: ``reserve`` while requests come, else none."""
        last = view.stats.last_arrival
        if last is None or view.now - last >= self.quiet:
            return 0
        return self.reserve

    def decide(self, view: ClusterView) -> Decisions:
        assign, unserved, still_idle = match_fifo(view)
        target = self.target(view)
        # One worker per waiting job plus the reserve, less those idle or booting already
        # (still_idle is empty whenever a job is unserved).
        start = starts_for(view, len(unserved) + target - len(still_idle), self.flavor)
        stop: list[StopWorker] = []
        if not unserved and len(still_idle) > target:
            by_age = sorted(still_idle, key=lambda w: (w.idle_since or view.now, w.id))
            reason = "idle, a reserve is kept" if target else "no request lately"
            stop = [StopWorker(w.id, reason) for w in by_age[target:]]
        last = view.stats.last_arrival
        kept = len(still_idle) - len(stop)
        # Time alone changes the decisions only when the traffic is deemed stopped.
        wake_at = last + self.quiet if kept and target and last is not None else math.inf
        return Decisions(start=start, stop=tuple(stop), assign=assign, wake_at=wake_at)


@register("reserve")
def _make(params: PolicyParams) -> Reserve:
    return Reserve(flavor=params.flavor)
