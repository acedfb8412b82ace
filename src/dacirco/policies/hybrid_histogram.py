"""hybrid-histogram: the keep-alive and pre-warm windows of Azure Functions' hybrid policy,
learnt from a histogram of the service's idle times.

Source: Mohammad Shahrad, Rodrigo Fonseca, Íñigo Goiri, Gohar Chaudhry, Paul Batum, Jason
Cooke, Eduardo Laureano, Colby Tresness, Mark Russinovich, Ricardo Bianchini, "Serverless
in the Wild: Characterizing and Optimizing the Serverless Workload at a Large Cloud
Provider", USENIX ATC 2020 (section 4, the hybrid histogram policy).

What the paper specifies, as done here:

- per application, a histogram of its idle times (from the end of an execution to the next
  invocation), ``bins`` bins of ``bin_seconds`` (240 x 1 minute: a 4-hour range);
- the pre-warm window is the histogram's head (its 5th percentile, the lower edge of that
  bin) less a ``margin`` of 10 %, the keep-alive lasts to its tail (the 99th percentile,
  the upper edge of that bin) plus 10 %: the instance is unloaded after an execution and
  loaded again when the pre-warm window ends; with a head of 0 it is not unloaded, and kept
  for the keep-alive window after the execution;
- when the histogram is not representative (fewer than ``min_samples`` idle times, or a
  coefficient of variation of its bin counts below ``cv_threshold``, 2) a fixed keep-alive.

Left open or changed, and assumed:

- the "application" is the whole service: any worker transcodes any movie, so the next
  request, whatever its movie, is the one a warm worker serves (a histogram per movie would
  predict arrivals no worker is reserved for);
- an idle time is the gap between two consecutive requests of the service, the windows
  counted from the last request. The paper's idle time runs from the end of an execution to
  the next invocation, but its trace counts invocations per minute and most functions run
  for far less than its 1-minute bins, so there the two coincide; here, with many workers,
  the service is seldom idle as a whole (a handful of times in a run at load 0.6: the
  histogram would never be representative), and the next request is what an idle worker
  waits for;
- an "instance" is a worker. With a head of 0, or while requests are being served, each
  idle worker is kept for the keep-alive window after its own execution. With a head above
  0 and nothing to do, idle workers are stopped until the pre-warm window is due, then one
  worker is kept, or started ``view.stats.boot_seconds`` before the window ends so that it
  is ready then, and it stays until the keep-alive window ends;
- the fixed keep-alive of the fallback is ``fallback_keep_alive`` (600 s, the industry's
  10-minute policy the paper compares against; the paper's own fallback keeps the instance
  for the histogram's whole range, longer than our runs);
- the paper's ARIMA branch, for idle times mostly beyond the histogram's range, is left
  out: the fallback is used then;
- requests go to idle workers, longest idle first, as grace-period's.

Its numbers above are knobs (``--policy-knob``).

Memory: the histogram and the last request's arrival, from the views seen (a request is
new when it arrived after the last one seen). It says when time alone changes its mind
(``wake_at``), so skipping ticks changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    ClusterView,
    Decisions,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.common import fits, match_fifo, starts_for


@dataclass
class HybridHistogram:
    bin_seconds: float = 60.0
    bins: int = 240
    head_percentile: float = 5.0
    tail_percentile: float = 99.0
    margin: float = 0.10
    cv_threshold: float = 2.0
    min_samples: int = 10
    fallback_keep_alive: float = 600.0
    default_boot: float = 20.0  # seconds, until a boot has been seen
    flavor: str = "small"
    name: str = "hybrid-histogram"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "bin_seconds": (1.0, 3600.0),
        "bins": (1, 10_000),  # the histogram is summed at each new request
        # Disjoint: the pre-warm window (head) opens before the keep-alive's end (tail).
        "head_percentile": (0.0, 49.0),
        "tail_percentile": (51.0, 100.0),
        "margin": (0.0, 1.0),  # a share of the windows: 1 makes the pre-warm window 0
        "cv_threshold": (0.0, 100.0),
        "min_samples": (1, 100_000),  # 0 would read an empty histogram (no mean)
        "fallback_keep_alive": (0.0, 86400.0),
        "default_boot": (0.1, 3600.0),
    }
    # ---- memory, from the views seen ------------------------------------------------------
    counts: list[int] = field(default_factory=list, init=False, repr=False)
    out_of_range: int = field(default=0, init=False)
    _seen: float = field(default=-math.inf, init=False, repr=False)  # the latest arrival
    _windows: tuple[float, float] | None = field(default=None, init=False, repr=False)
    _stale: bool = field(default=True, init=False, repr=False)

    # ---- the histogram ----------------------------------------------------------------------
    def observe(self, idle_time: float) -> None:
        if not self.counts:
            self.counts = [0] * self.bins
        b = int(max(0.0, idle_time) // self.bin_seconds)
        if b < self.bins:
            self.counts[b] += 1
        else:
            self.out_of_range += 1
        self._stale = True

    def windows(self) -> tuple[float, float] | None:
        """(pre-warm, keep-alive end) in seconds after the service became idle, or None when
        the histogram is not representative (then the fixed keep-alive)."""
        if not self._stale:
            return self._windows
        self._stale, self._windows = False, None
        counts = self.counts
        n = sum(counts)
        if n + self.out_of_range < self.min_samples or self.out_of_range > n:
            return None
        mean = n / self.bins
        sd = math.sqrt(max(0.0, sum(c * c for c in counts) / self.bins - mean * mean))
        if sd / mean < self.cv_threshold:
            return None
        head = self._percentile_bin(self.head_percentile / 100 * n) * self.bin_seconds
        tail = (self._percentile_bin(self.tail_percentile / 100 * n) + 1) * self.bin_seconds
        self._windows = ((1 - self.margin) * head, (1 + self.margin) * tail)
        return self._windows

    def _percentile_bin(self, rank: float) -> int:
        total = 0
        for i, c in enumerate(self.counts):
            total += c
            if c and total >= rank:
                return i
        return self.bins - 1

    def _learn(self, view: ClusterView) -> None:
        """Each new request closes an idle time: the gap since the request before it."""
        new = sorted(
            j.received_at for j in view.waiting if j.part is None and j.received_at > self._seen
        )
        for t in new:
            if self._seen > -math.inf:
                self.observe(t - self._seen)
            self._seen = t

    # ---- decisions --------------------------------------------------------------------------
    def boot(self, view: ClusterView) -> float:
        s = view.stats.boot_seconds
        return s if s is not None else self.default_boot

    def decide(self, view: ClusterView) -> Decisions:
        self._learn(view)
        now = view.now
        assign, unserved, still_idle = match_fifo(view)
        start = starts_for(view, len(unserved), self.flavor)
        win = self.windows()
        if win is None or win[0] <= 0 or view.waiting_count or view.busy:
            keep = self.fallback_keep_alive if win is None else win[1]
            stop, wake = _keep_each(still_idle, now, keep)
            return Decisions(start=start, stop=stop, assign=assign, wake_at=wake)
        # The service is idle and its next request is not due before the pre-warm window:
        # no worker until the window opens, then one (kept or pre-warmed) until it ends.
        prewarm, end = win
        load_at, end_at = self._seen + prewarm - self.boot(view), self._seen + end
        newest = sorted(still_idle, key=lambda w: (-(w.idle_since or now), w.id))
        kept = newest[:1] if load_at <= now < end_at else []
        stop = tuple(StopWorker(w.id, "unloaded: no request due") for w in newest[len(kept) :])
        due = load_at <= now < end_at and not kept and not view.booting
        if due and min(view.room, fits(view, FLAVORS[self.flavor])) > 0:
            start = (StartWorker(self.flavor),)  # pre-warm: ready when the window opens
        wake = load_at if now < load_at else end_at if now < end_at else math.inf
        return Decisions(start=start, stop=stop, assign=assign, wake_at=wake)


def _keep_each(
    idle: tuple[WorkerView, ...], now: float, keep: float
) -> tuple[tuple[StopWorker, ...], float]:
    """Each idle worker kept ``keep`` seconds after its execution: the stops, and the wake."""
    stop, wake = [], math.inf
    for w in idle:
        t = now if w.idle_since is None else w.idle_since
        if now - t >= keep:
            stop.append(StopWorker(w.id, f"idle for {keep:.0f} s"))
        else:
            wake = min(wake, t + keep)
    return tuple(stop), wake


@register("hybrid-histogram")
def _make(params: PolicyParams) -> HybridHistogram:
    return HybridHistogram(flavor=params.flavor)
