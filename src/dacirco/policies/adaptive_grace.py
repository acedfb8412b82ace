"""adaptive-grace: grace-period whose grace moves in 5 s steps between half and twice its
setting, longer while the workers are busy or requests come faster, shorter when it is quiet;
and one worker started ahead when requests come faster than the workers can serve them.

Source: the "adaptive grace period" scheduler of a team of students of the classic DaCirco
course, "DaCirco: Transcoding-on-Demand Cloud Service" (course project, public repository
SkanderChayoukhi/Dacirco, ``src/dacirco/controller/adaptive_grace_period.py``, 2024 by the
dates in its tests; no paper, no other author named). What it specifies: the grace starts at
``max_idle_time``; at each periodic call (at most one a second) it grows by 5 s, up to twice
``max_idle_time``, when the utilization (active requests / running workers) is over 0.7 or
the request rate is over 1 a second, and shrinks by 5 s, down to half, when the utilization
is under 0.7 and the rate under 0.1 a second; an idle worker is stopped after the grace; one
more worker is started when the rate is over 1 a second and more requests wait than workers
run.

Assumed here (docs/peers/course.md):

- **Rate.** The source's "rate" is the number of waiting requests over the seconds since its
  last call, compared with constants (1 and 0.1 a second). Here the arrival rate's trend is
  read from ``RecentStats``: rising while the last minute's rate (``rate_short``) is above
  the last ten minutes' (``rate_long``), falling while below, quiet when nothing arrived for
  a minute. The grace grows when the busy share (busy workers / workers, booting included) is
  at least ``busy_high`` (the source's 0.7) or arrivals are rising; it shrinks when the busy
  share is below ``busy_high`` and arrivals are falling or quiet; otherwise it holds.
- **High arrival rate** (the proactive start): requests arriving in the last minute
  (``rate_short``) times the measured seconds a request takes on the service's flavor
  (``seconds_per_work`` x the mean work of the recent requests) exceed the workers there are:
  they cannot keep up. Then, with no worker idle, one worker is started beyond those the
  waiting jobs get (none while that one is booting), and the last idle worker is kept past
  its grace (stopped, it would be started again at once). Nothing is started ahead before a
  task of the flavor completed (no service time measured yet).
- **Memory.** The grace is the one state kept from view to view: it starts at
  ``max_idle_time`` with the first view, then takes at most one step per ``step_every``
  seconds of view time (1 s, the source's), on the view that comes. It is derived from the
  views alone and deterministic, but it moves with time, so ``wake_at`` is always None: the
  policy is asked at every tick (``call_interval``). A new policy object starts afresh.
- Workers are started as in grace-period (one per waiting job no booting worker will take,
  of ``PolicyParams.flavor``) and jobs go to the longest idle worker first.

``step``, ``step_every`` and ``busy_high`` are knobs (``--policy-knob``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dacirco.policies.base import ClusterView, Decisions, PolicyParams, StopWorker, register
from dacirco.policies.common import match_fifo, starts_for

STEP = 5.0  # seconds the grace moves by (the source's)
BUSY_HIGH = 0.7  # busy share over which the grace grows (the source's)


@dataclass
class _Memory:
    grace: float | None = None
    stepped_at: float = 0.0


@dataclass(frozen=True)
class AdaptiveGrace:
    max_idle_time: float = 60.0
    flavor: str = "small"
    step: float = STEP
    step_every: float = 1.0  # seconds of view time between two steps at most
    busy_high: float = BUSY_HIGH
    name: str = "adaptive-grace"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range;
    # ``max_idle_time`` is ``--max-idle-time``.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "step": (0.0, 3600.0),  # 0: the grace stays ``max_idle_time``
        "step_every": (0.0, 3600.0),  # 0: a step at every call
        "busy_high": (0.0, 1.0),  # a share of the workers
    }
    memory: _Memory = field(default_factory=_Memory, init=False, compare=False, repr=False)

    @property
    def bounds(self) -> tuple[float, float]:
        return self.max_idle_time / 2, self.max_idle_time * 2

    @property
    def grace(self) -> float:
        """The grace now (``max_idle_time`` before the first view)."""
        g = self.memory.grace
        return self.max_idle_time if g is None else g

    def busy_share(self, view: ClusterView) -> float:
        return len(view.busy) / len(view.workers) if view.workers else 0.0

    def trend(self, view: ClusterView) -> int:
        """+1: the grace grows; -1: it shrinks; 0: it holds."""
        s = view.stats
        busy = self.busy_share(view) >= self.busy_high
        if busy or s.rate_short > s.rate_long:
            return 1
        if s.rate_short < s.rate_long or s.rate_short == 0:
            return -1
        return 0

    def service_seconds(self, view: ClusterView) -> float | None:
        """Measured seconds a request takes on the service's flavor, if known."""
        s = view.stats
        rate = s.seconds_per_work.get(self.flavor)
        if rate is None or not s.recent_work:
            return None
        return rate * sum(s.recent_work) / len(s.recent_work)

    def high_rate(self, view: ClusterView, workers: int | None = None) -> bool:
        """Requests come faster than the workers there are (``workers``, else the view's)
        can serve them."""
        seconds = self.service_seconds(view)
        workers = len(view.workers) if workers is None else workers
        return seconds is not None and view.stats.rate_short * seconds > workers

    def decide(self, view: ClusterView) -> Decisions:
        now, m = view.now, self.memory
        if m.grace is None or now < m.stepped_at:  # the first view (or a clock set back)
            m.grace, m.stepped_at = self.max_idle_time, now
        elif now - m.stepped_at >= self.step_every:
            lo, hi = self.bounds
            m.grace = min(hi, max(lo, m.grace + self.trend(view) * self.step))
            m.stepped_at = now
        grace = m.grace
        assign, unserved, still_idle = match_fifo(view)
        stop = []
        workers, idle = len(view.workers), len(still_idle)
        for w in still_idle:
            idle_for = 0.0 if w.idle_since is None else now - w.idle_since
            if idle_for < grace:
                continue
            if idle == 1 and self.high_rate(view, workers - 1):
                break  # the last idle one is the worker ahead: stopped, it would start again
            stop.append(StopWorker(w.id, f"idle for {idle_for:.0f} s, grace {grace:g} s"))
            workers, idle = workers - 1, idle - 1
        ahead = 1 if not still_idle and self.high_rate(view) else 0
        return Decisions(
            start=starts_for(view, len(unserved) + ahead, self.flavor),
            stop=tuple(stop),
            assign=assign,
            wake_at=None,  # the grace moves with time: asked at every tick
        )


@register("adaptive-grace")
def _make(params: PolicyParams) -> AdaptiveGrace:
    return AdaptiveGrace(max_idle_time=params.max_idle_time, flavor=params.flavor)
