"""priority-dynamic: the queue is served by a score of each request's input size, bitrate and
preset, smallest first, with aging so that no request starves. Workers are started and
stopped as in grace-period.

Source: the "priority-based dynamic" scheduler of a team of students of the classic DaCirco
course, "DaCirco: Transcoding-on-Demand Cloud Service" (course project, public repository
SkanderChayoukhi/Dacirco, ``src/dacirco/controller/priority_based_dynamic.py``, 2024 by the
dates in its tests; no paper, no other author named). What it specifies: a request's score is
``0.5 x size (MB) + 0.3 x bitrate / 1000 + 0.2 x speed factor (2 for "ultrafast", else 1) +
one point per 10 s of waiting``, and the highest score is served first; a worker is started
per request while under ``max_workers`` ("large" for a bitrate over 5000, else "small"), and
one more when the queue outgrows the workers and most are busy; idle workers are stopped
after the grace period (``max_idle_time``).

Assumed here (docs/peers/course.md):

- **Direction.** The source serves the highest score first: the largest inputs and bitrates
  first, yet the cheaper preset first; it does not say why, and its own unit test expects the
  lower bitrate served first (it passes only through aging). Here the score is a *cost*,
  ``0.5 x MB + 0.3 x Mbit/s + 0.2 x (2 for "fast", 1 for "ultrafast")``, served lowest first
  less ``waiting / aging``: the cheapest requests first (shortest expected job first, which
  lowers the average delay), as the cheaper preset is in the source. ``largest_first=True``
  gives the source's order as written.
- **Aging** counts from the job's rank (``JobView.ranked_at``: its arrival, moved by its
  priority), continuous rather than in whole points: a job is overtaken only by jobs that
  arrived less than ``aging x`` (its cost - theirs) seconds after it, so none starves.
  ``aging`` is a knob (``--policy-knob``).
- **Workers**: as grace-period (the issue's definition): one started per waiting job that no
  booting worker will take, of the service's flavor; idle ones kept ``max_idle_time``. The
  source's "large" workers for high bitrates are not reproduced: the bitrate barely changes
  the work of a transcode (docs/simulator.md), and a larger flavor is right-size's subject.
- An unknown input size counts as 0 MB (as in the source).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import ClassVar

from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    PolicyParams,
    StopWorker,
    register,
)
from dacirco.policies.common import starts_for

SIZE_WEIGHT, BITRATE_WEIGHT, SPEED_WEIGHT = 0.5, 0.3, 0.2  # the source's weights
AGING = 10.0  # seconds of waiting worth one point of score (the source's)
CHEAPEST = SPEED_WEIGHT * 1.0  # the lowest cost: no size, no bitrate, "ultrafast"


@dataclass(frozen=True)
class PriorityDynamic:
    max_idle_time: float = 60.0
    flavor: str = "small"
    aging: float = AGING
    largest_first: bool = False  # the source's order as written
    name: str = "priority-dynamic"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range;
    # ``max_idle_time`` is ``--max-idle-time``.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "aging": (0.1, 86400.0),  # seconds of waiting a point is worth: 0 would divide by 0
    }

    def cost(self, job: JobView) -> float:
        """The score before aging: larger for larger inputs and bitrates and for "fast"
        (or, with ``largest_first``, the source's: larger for "ultrafast")."""
        mb = (job.input_size or 0) / 1e6
        mbps = job.bitrate / 1000  # kbit/s -> Mbit/s
        cheap = job.speed == "ultrafast"
        speed = (2.0 if cheap else 1.0) if self.largest_first else (1.0 if cheap else 2.0)
        return SIZE_WEIGHT * mb + BITRATE_WEIGHT * mbps + SPEED_WEIGHT * speed

    def key(self, job: JobView, now: float) -> float:
        """Lowest first."""
        aged = (now - job.ranked_at) / self.aging
        return -(self.cost(job) + aged) if self.largest_first else self.cost(job) - aged

    def queue(self, view: ClusterView) -> list[JobView]:
        now = view.now
        return sorted(view.waiting, key=lambda j: self.key(j, now))  # stable: ties by rank

    def first(self, view: ClusterView, n: int) -> list[JobView]:
        """``self.queue(view)[:n]``, mostly without reading the whole queue: in rank order
        (``view.waiting_groups`` known), a job is worth less aging than the one before it,
        and no cost is below ``CHEAPEST`` (sizes and bitrates are never negative); so once
        the cheapest cost, aged as the next job, cannot beat the ``n``-th best found, no job
        further in the queue can."""
        now, aging = view.now, self.aging
        if self.largest_first or aging <= 0 or view.waiting_groups is None:
            return heapq.nsmallest(n, view.waiting, key=lambda j: self.key(j, now))
        worst: list[tuple[float, int, JobView]] = []  # the n best: (-key, -place), worst first
        bar = math.inf  # the n-th best key so far
        for place, job in enumerate(view.waiting):
            rank = job.received_at if job.rank is None else job.rank  # JobView.ranked_at
            aged = (now - rank) / aging  # as ``key``
            if CHEAPEST - aged >= bar:
                break
            # ``cost``, written out: this loop may read thousands of jobs.
            mb = (job.input_size or 0) / 1e6
            mbps = job.bitrate / 1000
            speed = 1.0 if job.speed == "ultrafast" else 2.0
            key = SIZE_WEIGHT * mb + BITRATE_WEIGHT * mbps + SPEED_WEIGHT * speed - aged
            if len(worst) < n:
                heapq.heappush(worst, (-key, -place, job))
            elif key < bar:  # an equal key comes later in the queue: it stays out
                heapq.heapreplace(worst, (-key, -place, job))
            else:
                continue
            if len(worst) == n:
                bar = -worst[0][0]
        return [job for _, _, job in sorted(worst, reverse=True)]

    def decide(self, view: ClusterView) -> Decisions:
        now, grace = view.now, self.max_idle_time
        n = min(view.waiting_count, len(view.idle))
        queue = self.first(view, n) if n else []
        # Longest idle first, as grace-period.
        first = heapq.nsmallest(n, view.idle, key=lambda w: (w.idle_since or 0.0, w.id))
        assign = tuple(Assign(j.id, w.id) for j, w in zip(queue, first, strict=False))
        taken = {w.id for w in first}
        stop = []
        oldest_kept = math.inf
        for w in view.idle:
            if w.id in taken:
                continue
            t = now if w.idle_since is None else w.idle_since
            if now - t >= grace:
                stop.append(StopWorker(w.id, f"idle for {grace:g} s"))
            elif t < oldest_kept:
                oldest_kept = t
        return Decisions(
            start=starts_for(view, view.waiting_count - n, self.flavor),
            stop=tuple(stop),
            assign=assign,
            wake_at=oldest_kept + grace,
        )


@register("priority-dynamic")
def _make(params: PolicyParams) -> PriorityDynamic:
    return PriorityDynamic(max_idle_time=params.max_idle_time, flavor=params.flavor)
