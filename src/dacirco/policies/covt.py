"""covt: the fewest cores that meet a delay target, from a queueing model of the traffic.

Source: L. Wei, J. Cai, C. H. Foh, B. He, "QoS-aware Resource Allocation for Video
Transcoding in Clouds", IEEE Transactions on Circuits and Systems for Video Technology,
2016 (DOI 10.1109/TCSVT.2016.2589621; COVT). docs/peers/literature.md says what it
specifies and what is assumed here.

- **Profiles.** How long a job takes on each flavor is its predicted work
  (``policies.work``) times the flavor's measured seconds per unit of work
  (``view.stats.seconds_per_work``; extrapolated by cores until a flavor was measured,
  ``policies.deadline.seconds_per_work``). The work of the recent requests
  (``view.stats.recent_work``) gives the mean and the spread of the service time.
- **Queueing model.** Requests arrive at rate lambda (the long-window rate of
  ``view.stats``, ten minutes: the model is of a steady state). Each flavor's workers are
  taken as an M/G/c queue: the probability of waiting is Erlang C, the wait of those who
  wait exponential with the M/M/c mean scaled by (1 + cs^2) / 2 (Allen-Cunneen). The
  **delay target**: a job waits at most ``target_wait`` seconds (by default the deadline
  rule's waiting allowance: a job started within it meets its deadline on any flavor) with
  probability ``target_share``. Both are knobs (``--policy-knob``).
- **Minimum reservation.** For each flavor, the fewest workers c meeting the target; the
  flavor whose c x cores is smallest is reserved (ties: the smaller flavor), re-evaluated at
  every call as the rates change.
- **Run-time adjustment.** Jobs are served in queue order, each by the idle worker that
  has been idle longest. A job that the workers (busy ones when their job is predicted
  done, booting ones when booted) would start later than ``target_wait`` after its arrival
  gets a worker of its own beyond the reservation (the model assumes a steady state, a
  burst is not one). Idle workers beyond the reservation are stopped, longest idle first.

Memoryless: everything is read from the view. Rates decay with time alone, so ``wake_at``
is None (asked at every tick) while a job waits or a worker is idle or booting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from heapq import heapify, heappush, heapreplace
from typing import ClassVar

from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    PolicyParams,
    StartWorker,
    StopWorker,
    register,
)
from dacirco.policies.deadline import WAIT_ALLOWANCE, job_work, seconds_per_work
from dacirco.policies.provision import Room, boot_seconds, free_times, work_moments


def erlang_c(c: int, a: float) -> float:
    """The probability that a request waits in an M/M/c queue of offered load ``a``."""
    if c <= a:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < c
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c * c / (c - a)  # a^c / c! x c / (c - a)
    return last / (total + last)


def wait_tail(c: int, rate: float, mean: float, scv: float, t: float) -> float:
    """P(wait > t) in an M/G/c queue (Allen-Cunneen): Erlang C times an exponential tail
    whose mean is the M/M/c conditional wait scaled by (1 + scv) / 2."""
    a = rate * mean
    if c <= a:
        return 1.0
    conditional = mean / (c - a) * (1.0 + scv) / 2.0
    return erlang_c(c, a) * math.exp(-t / conditional)


@dataclass(frozen=True)
class Covt:
    target_wait: float = WAIT_ALLOWANCE  # seconds a job may wait ...
    target_share: float = 0.95  # ... with this probability
    name: str = "covt"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "target_wait": (0.0, 3600.0),
        # A probability: at 1, the fewest workers whose chance of a longer wait is 0 in
        # floating point (or ``max_workers``).
        "target_share": (0.01, 1.0),
    }

    # ---- the model -------------------------------------------------------------------------
    def workload(self, view: ClusterView) -> tuple[float, float, float]:
        """(lambda, mean work, squared coefficient of variation of the work)."""
        return (view.stats.rate_long, *work_moments(view))

    def workers_for(
        self, view: ClusterView, flavor: str, load: tuple[float, float, float] | None = None
    ) -> int:
        """The fewest workers of ``flavor`` that meet the target (capped by ``max_workers``);
        ``load``: ``workload(view)``, if known."""
        rate, work, scv = load or self.workload(view)
        if rate <= 0 or work <= 0:
            return 0
        mean = work * seconds_per_work(view, flavor)
        limit = max(1, view.limits.max_workers)
        c = max(1, math.floor(rate * mean) + 1)
        while c < limit and wait_tail(c, rate, mean, scv, self.target_wait) > 1 - self.target_share:
            c += 1
        return min(c, limit)

    def reservation(self, view: ClusterView) -> tuple[str, int]:
        """The flavor and the number of its workers reserved: the fewest cores."""
        load = self.workload(view)
        need = {f: self.workers_for(view, f, load) for f in FLAVORS}
        best = min(FLAVORS, key=lambda f: (need[f] * FLAVORS[f].cpus, FLAVORS[f].cpus))
        return best, need[best]

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        flavor, reserved = self.reservation(view)
        idle = view.idle_by_age  # longest idle first
        n = min(len(idle), view.waiting_count)
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
        """A worker for each waiting job the current workers would start too late.

        The workers in a heap by when they come free (then by their place: ``min`` over the
        list would take the first of equals), and the pass ends once no more worker can be
        started: the rest of the queue could only move free times that no start follows."""
        if not waiting or room.count <= 0:  # nothing could be started
            return ()
        now, boot = view.now, boot_seconds(view)
        pool = free_times(view, (*view.busy, *view.booting))
        flavors = [flavor for _, flavor in pool]
        free = [(at, i) for i, (at, _) in enumerate(pool)]
        heapify(free)
        spw = {f: seconds_per_work(view, f) for f in FLAVORS}
        start: list[StartWorker] = []
        for job in waiting:  # queue order: each takes the server free first
            at, i = free[0] if free else (math.inf, -1)
            late = not free or now + at - job.received_at > self.target_wait
            if late and (not free or boot < at):
                got = room.take(flavor)
                if got is None:
                    break  # none later either: room and node space only shrink
                start.append(got)
                flavors.append(flavor)
                heappush(free, (boot + job_work(job) * spw[flavor], len(flavors) - 1))
                continue
            heapreplace(free, (at + job_work(job) * spw[flavors[i]], i))
        return tuple(start)


@register("covt")
def _make(params: PolicyParams) -> Covt:
    return Covt()
