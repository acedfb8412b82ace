"""adaptive: one-core workers, each job split in chunks shorter than a typical one, and a warm pool
sized from the traffic by queueing theory, so that it stays lean when requests are few and
fast when they come close together (docs/policies.md has the measurements).

Every knob below is a ratio or a statistical threshold; the seconds come from what the policy
observes (``view.stats``): the arrival rate, the boot time, the recent requests' work and how
many seconds a unit of work takes on a one-core worker.

- **One flavor.** Every worker is ``tiny`` (one core: where a core-second does the most work,
  since ffmpeg does not use more cores linearly). Where the mechanism splits jobs
  (``Limits.can_split``), speed comes from chunks on several workers rather than from
  larger workers.
- **Chunks shorter than a typical job.** A job is split in ``ceil(its seconds / piece)``
  chunks (at most ``max_chunks``, 5), ``piece`` being ``piece_share`` (3/4) x the median
  recent job's seconds: a long movie then costs little more delay than a short one, on any
  catalog, and the typical job itself goes in two.
  Fewer, when fewer end it sooner: the tasks of the queue take, in its order, the workers
  free first (idle, booting, busy by when they are due, new ones after a boot), and a job
  gets the number of chunks, up to that, that ends it soonest.
- **A pool from the traffic (M/M/c).** With requests arriving at rate λ, a mean job of
  ``t`` seconds and a boot of ``b`` seconds, the work keeps ``R = λ·t`` workers busy; the
  pool holds the workers an M/M/c queue offered that load needs for a request's mean wait
  to be ``wait_share · t``: it finds every worker busy with Erlang C's probability, and
  then waits the sooner of a boot and the queue's mean wait for one of the c busy workers,
  ``t / (c - R)`` (exact on the small pools of short jobs and light traffic, where Halfin
  and Whitt's ``R + β·√R`` understaffs; a fraction of a worker between two whole pools).
  With boots shorter than the jobs the boot bounds that wait; with longer ones the queue's
  wait does, and a large busy pool, which frees a worker every few seconds, needs a thinner
  margin than a small one (taking the sooner of the two mean waits is an approximation).
  A job in k chunks asks for k workers at once: the spare margin grows by √(E[k²]/E[k]).
  It holds no more idle workers than the tasks expected within a boot would take (ski
  rental), less the busy workers due by then: each takes one of those tasks itself.
- **Bursts and silences.** λ is the ten-minute rate, unless the last minute's arrivals are
  more than ``burst_z`` standard deviations of a Poisson count away from it (a burst, or a
  lull): then the last minute's. A silence longer than ``gap_test`` mean inter-arrival times
  (its chance under the current rate is below 5 %) means the traffic stopped: λ is then at
  most one over the silence.
- **A rhythm.** When the arrivals have a period (``view.stats.season``, found only where it
  forecasts them better than the recent rate does: ``policies/season.py``), the pool is the
  one of the rate it forecasts over the next boot, and an idle worker beyond it goes at
  once: a burst's pool does not outlive the burst, and is kept when the next is a boot away.
  Its cap is whole workers (rounded down): the forecast is the traffic's own rhythm, not a
  rate read from lagging windows that a fraction of a worker hedges, and between bursts a
  request every few boots is cheaper booted for than waited for by idle workers.
  For the traffic it forecasts over the next boot, the workers that traffic's work will keep
  busy are started (whole ones, without the spare: those would wait idle for the requests),
  so that the first requests of a burst find them up; the queue starts the rest.
- **No needless boot.** Tasks that no idle worker takes wait for booting workers, then for
  busy ones due within ``wait_factor`` boots, before new ones are started. When a season
  forecasts no rise over the next boot (and no pilot is there), a queue is only drained:
  its tasks wait for the worker free first (idle, booting, busy, each again after the
  tasks it takes) wherever that one is free within a boot, and new workers are started
  only for the others (a wait no longer than the boot it saves; between short bursts, a
  sixth of the workers were started for tasks that others then took). Without a season,
  a queue may be the start of a rise: each task counts, and the workers started serve
  what follows.
- **Idle workers beyond the pool** are kept ``linger_boots`` boot times (one: the break-even
  of ski rental, where keeping a worker idle costs what booting another would), at once
  with a season, the longest idle first, pilots last (capacity that is not ours costs
  nothing idle); requests go to the most recently idle worker so the oldest age out.
  Workers still booting beyond the pool go before any idle one, the latest started first:
  one up now serves as well as one up later, and costs no more boot. None is kept beyond
  those the next boot's requests may take (the busy ones, and one per task expected
  within a boot at the higher of the two recent rates, so that a dip of Poisson traffic
  does not empty the pool): the chunks of a long job end together and their workers go
  at once. When the traffic stopped (a silence that
  none of the long window's gaps would have matched but with a chance below 5 %: seconds
  after a burst ends), the rate is one over the silence. Each idle worker goes after
  ``max_idle_time`` at the latest.
- **Its own assignments counted.** The pool is sized on the workers as the call's own
  assignments leave them (busy, and due within a boot when the task is a merge or that
  short): asked again at once after a stop, it says the same, and does not start the worker
  it has just stopped (a merge is due at once: ``WorkerView.part``).
- **Order.** Merges first (each ends a job), then the queue's order (arrival, priorities),
  unless more jobs wait than the workers that can take one within a boot: such a backlog
  is served by the highest response ratio, ``(wait + work left) / work left``, so that
  short jobs pass the long ones that would wait long anyway, and these pass in turn as
  they age (``policies/response_ratio.py``).
- **Capacity that is not ours** (opportunistic nodes, ``policies/preemptible.py``): chunks,
  merges and short jobs go to pilots first; long whole jobs (those it cannot split) only to
  our own workers, and new workers for them only on our own nodes.

It reads only the view: it is as pure as the classic policies, and the simulator and the
controller run the same object.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, islice, tee
from typing import ClassVar

from dacirco.core.placement import MAX_CHUNKS
from dacirco.policies import preemptible
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    JobView,
    PolicyParams,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.chunk_plan import Plan, due_within, place, split_soonest, waiting_merges
from dacirco.policies.pool_sizing import FLAVOR, PoolSizing
from dacirco.policies.response_ratio import backlogged, by_response_ratio
from dacirco.policies.work import view_work


@dataclass(frozen=True)
class Adaptive(PoolSizing):
    wait_factor: float = 1.0  # a task waits for a busy worker due within this many boots
    linger_boots: float = 1.0  # boot times an idle worker beyond the pool is kept
    max_idle_time: float = 3600.0  # seconds an idle worker is kept at most
    name: str = "adaptive"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "wait_share": (0.01, 10.0),
        "piece_share": (0.1, 10.0),
        "max_chunks": (1, MAX_CHUNKS),  # the most a split may have
        "burst_z": (0.5, 10.0),
        "gap_test": (1.0, 100.0),
        "default_boot": (0.1, 3600.0),
        "default_rate": (0.001, 100.0),
        "wait_factor": (0.0, 10.0),
        "linger_boots": (0.0, 100.0),
        "max_idle_time": (0.0, 7 * 86400.0),
    }

    # ---- decisions ---------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        rate, boot = self.rate(view), self.boot(view)
        idle = sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id))
        s = view.stats
        pilots = preemptible.has_pilots(view)
        # Traffic with a rhythm: the pool for the rate it forecasts over the next boot.
        ahead = None if s.season is None else s.season.rate(view.now, view.now + boot)
        # No rise forecast: the queue is drained by the workers there are, each task waiting
        # for the one free first if it is free within a boot; new workers only for the tasks
        # none of them can start by then (the plan counts them all).
        lam = self.arrival_rate(view)
        drain = ahead is not None and not pilots and ahead <= lam
        # The queue in the order it is served, read by the plan and by the assignments (made
        # once: ``tee`` keeps what one has read and the other not yet).
        planned, served = tee(self.order(view, rate, boot))
        plan = self.plan(view, rate, boot, len(view.workers) + view.room, drain, planned)
        splits = plan.splits
        gone = {s.job_id for s in splits}
        # Merges first (each ends a job), then the queue's order (a backlog's: the highest
        # response ratio first); only as many as there are idle workers are looked at.
        merges = waiting_merges(view)
        rest = (j for j in served if j.part != "merge" and j.id not in gone)
        if pilots:  # a long whole job may pass over an idle pilot: the whole queue is read
            read = list(chain(merges, rest))
            assign, left, still_idle_ = preemptible.match(read, idle)
            still_idle = list(still_idle_)
            owned_only = sum(1 for j in left if not preemptible.suits_pilot(j))
            ids = {a.job_id for a in assign}
            taken = [j for j in read if j.id in ids]
        else:
            owned_only = 0
            queue = chain(merges, islice(rest, max(0, len(idle) - len(merges))))
            taken = list(islice(queue, len(idle)))
            assign = tuple(Assign(j.id, w.id) for j, w in zip(taken, idle, strict=False))
            still_idle = idle[len(assign) :]
        # The pool is sized on the workers as these assignments leave them (busy, and due
        # within a boot when their task is that short): asked again at once, after a stop,
        # the policy then says the same, and does not start the worker it just stopped.
        busy = len(view.busy) + len(assign)
        taken_due = sum(1 for j in taken if j.part == "merge" or 0 < view_work(j) * rate <= boot)
        # Tasks left (and the chunks to come) take booting workers, then busy ones due soon,
        # then new ones; the pool is kept at its size.
        demand = self.tasks(view, rate) - len(assign) - len(still_idle)
        if pilots:  # an idle pilot takes no long whole job
            demand += min(owned_only, sum(1 for w in still_idle if w.preemptible))
        demand -= len(view.booting)
        soon = due_within(view, rate, boot) + taken_due  # busy workers due within a boot
        if demand > 0:
            demand -= (
                soon if self.wait_factor == 1 else due_within(view, rate, boot * self.wait_factor)
            )
        if drain:
            demand = plan.started
        target = math.ceil(self.pool(view, rate, ahead, soon, busy))
        # New workers for the pool only at the rate both windows agree on (hysteresis: one
        # request after a silence does not bring back the pool of the last burst).
        up = math.ceil(self.pool(view, rate, min(s.rate_short, s.rate_long, lam), soon, busy))
        if ahead is not None:
            # None beyond the forecast pool (it would go once booted), and, for the traffic
            # it forecasts over the next boot, the workers that traffic's work will keep busy
            # (whole ones, a whole one rounded down by float arithmetic too: a spare worker
            # started early would wait idle; the queue starts the rest).
            whole = math.floor(self.busy(view, rate, ahead) + 1e-9)
            up = max(min(up, target), min(whole, target))
        wanted = min(max(demand, up - len(view.workers), 0), view.room)
        if pilots:
            owned_only = min(
                wanted, max(0, owned_only - sum(1 for w in view.booting if not w.preemptible))
            )
            start = preemptible.place(view, owned_only, wanted - owned_only, FLAVOR)
        else:
            start = place(view, wanted, FLAVOR)
        stop: list[StopWorker] = []
        if len(assign) == view.waiting_count and not splits:
            stop = self.stops(view, still_idle, len(start), target, ahead, rate, boot, busy)
        return Decisions(start=start, stop=tuple(stop), assign=assign, split=splits)

    def stops(
        self,
        view: ClusterView,
        idle: list[WorkerView],
        started: int,
        target: int,
        ahead: float | None,
        rate: float,
        boot: float,
        busy: int,
    ) -> list[StopWorker]:
        """With nothing waiting, the workers beyond the pool (``target``, the ``started`` ones
        counted) that go now: booting ones of our own first, the latest started first (one up
        now serves as well as one up later, and costs no more boot; none while others are
        started), then idle ones of our own, then pilots (capacity that is not ours costs
        nothing idle), the longest idle first. Beyond a forecast pool (``ahead``), at once;
        else beyond those the next boot's requests may take (``hold``), at once, and the
        others after ``linger_boots`` boots."""
        workers = len(view.workers) + started
        surplus = workers - target
        # Beyond a forecast pool, a worker goes at once: the rate it was kept for is over.
        linger = min(self.linger_boots * boot, self.max_idle_time) if ahead is None else 0.0
        beyond = surplus if ahead is not None else 0
        if ahead is None and surplus > 0:
            hold = self.hold(view, rate, boot, busy)
            if math.isfinite(hold):
                beyond = workers - max(target, math.ceil(hold))
        out: list[StopWorker] = []
        booting = () if started else [w for w in view.booting if not w.preemptible]
        for w in sorted(booting, key=lambda w: (-w.created_at, w.id)):
            if beyond <= 0 or surplus <= 0:
                break
            out.append(StopWorker(w.id, f"booting beyond the pool ({target})"))
            beyond -= 1
            surplus -= 1
        # Longest idle first, pilots last.
        for w in sorted(reversed(idle), key=lambda w: w.preemptible):
            idle_for = view.now - (view.now if w.idle_since is None else w.idle_since)
            wait = 0.0 if beyond > 0 else linger
            beyond -= 1
            if idle_for >= self.max_idle_time or (surplus > 0 and idle_for >= wait):
                out.append(StopWorker(w.id, f"idle {idle_for:.0f} s, pool {target}"))
                surplus -= 1
        return out

    def order(self, view: ClusterView, rate: float, boot: float) -> Iterable[JobView]:
        """The waiting jobs in the order they are served: the queue's, unless it is a
        backlog (``response_ratio.backlogged``): then the highest response ratio first
        (``response_ratio.by_response_ratio``; a job of unknown length counts as the median
        recent one of known length)."""
        if not backlogged(view, rate, boot):
            return view.waiting
        works = view.stats.recent_work  # sorted: the known ones (work > 0) at its end
        first = bisect_right(works, 0.0)
        typical = works[(first + len(works)) // 2] * rate if first < len(works) else 0.0
        return by_response_ratio(view, rate, typical)

    def plan(
        self,
        view: ClusterView,
        rate: float,
        boot: float,
        workers: int,
        count: bool = False,
        queue: Iterable[JobView] | None = None,
    ) -> Plan:
        """The waiting whole jobs at the head of the queue (``queue``: in the order they are
        served, ``view.waiting`` unless given), each in the chunks that end it soonest
        (``chunk_plan.split_soonest``), up to the chunks its length asks for, and the new
        workers those tasks (with ``count``, every waiting task) take."""
        piece = self.piece(view, rate) if view.limits.can_split else math.inf
        return split_soonest(
            view, rate, boot, workers,
            lambda j: 1 if j.part is not None else self.chunks(j, rate, piece), count, queue,
        )  # fmt: skip

    def tasks(self, view: ClusterView, rate: float) -> int:
        """The tasks the waiting jobs make: a part is one, a whole job its chunks (by kind
        of job: jobs of one kind have the same work)."""
        split = view.limits.can_split
        piece = self.piece(view, rate) if split else math.inf
        groups = view.waiting_groups
        if groups is None:
            groups = tuple((i,) for i in range(view.waiting_count))
        n = 0
        for g in groups:
            head = view.waiting[g[0]]
            k = 1 if head.part is not None or not split else self.chunks(head, rate, piece)
            n += len(g) * k
        return n


@register("adaptive")
def _make(params: PolicyParams) -> Adaptive:
    return Adaptive()
