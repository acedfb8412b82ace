"""mpc: model predictive control of the number of workers over a predicted workload, with
delay-sensitive jobs served before deferrable ones.

Sources: G. Gao, Y. Wen, C. Westphal, "Dynamic Resource Provisioning with QoS Guarantee for
Video Transcoding in Online Video Sharing Services", ACM Multimedia 2016 (DOI
10.1145/2964284.2964296); and its journal version with multiple priorities, "Dynamic
Priority-Based Resource Provisioning for Video Transcoding With Heterogeneous QoS", IEEE
TCSVT 29(5), 2019 (DOI 10.1109/TCSVT.2018.2840351). docs/peers/literature.md says what they
specify and what is assumed here.

- **Two classes.** A job of priority >= 0 (the default) is delay-sensitive, one of priority
  < 0 deferrable. The papers' preemptive-resume priority cannot be had (DaCirco does not
  interrupt a running task): it holds for the queue only. Every waiting delay-sensitive job
  goes before every waiting deferrable one, each class in queue order, to the longest idle
  worker.
- **Prediction.** Time is cut in slots of ``step`` seconds (at least one boot, so that a
  worker started in a slot is ready in the next). The arrival rate of each slot of the
  horizon is the short-window rate of ``view.stats`` carried along the trend between the
  short (one minute) and the long (ten minutes) window, extrapolated at most ``trend_span``
  seconds; **robust**: the rate planned is ``robust`` standard errors above that estimate
  (a count of Poisson arrivals over the short window), against the prediction's noise.
- **Model of a slot.** Delay-sensitive arrivals see an M/G/c queue of their own (under the
  papers' priority discipline the deferrable load is transparent to them): c the workers
  ready, the service time a request's recent mean work on ``flavor`` (Allen-Cunneen for its
  spread). Every predicted arrival counts as delay-sensitive (``view.stats`` does not split
  the rate by priority). The jobs waiting now are a backlog of work, drained with what
  capacity the arrivals leave, delay-sensitive first; with fewer workers ready than the
  load, the arrivals pile onto it.
- **Control.** Over ``horizon`` slots, the number of workers of each slot minimizing
  reserved core-seconds + ``delay_weight`` x the predicted waiting seconds of
  delay-sensitive jobs (``deferrable_weight`` x that weight for deferrable ones; a backlog
  left at the horizon's end counted as waiting one more horizon), by dynamic programming on
  the worker count (of the ways to reach a count, the one kept is the cheapest with its
  backlog counted as left); a worker added in a slot is reserved in it and ready in the
  next. The first slot's count is applied: workers started (placed by the core), or idle
  ones stopped (longest idle first) once no job waits, down to a count the plan made again
  from it keeps (else it would start one again at once). A job left waiting with nothing
  busy or booting always gets a worker.

Its numbers (``step``, ``horizon``, the weights, ``robust``, ``trend_span``) are knobs
(``--policy-knob``).

Memoryless: everything is read from the view. Rates decay with time alone, so ``wake_at`` is
None (asked at every tick) while anything waits, runs or was seen arriving lately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from dacirco.policies.common import fits
from dacirco.policies.deadline import job_work, seconds_per_work
from dacirco.policies.provision import boot_seconds, work_moments
from dacirco.policies.stats import LONG_WINDOW, SHORT_WINDOW

SHORT_MID = SHORT_WINDOW / 2  # the short window's middle, in seconds before now
TREND_BASE = (LONG_WINDOW - SHORT_WINDOW) / 2  # seconds between the two windows' middles
MAX_SIZES = 16  # worker counts the plan chooses among (evenly spaced beyond)


def mean_waits(load: float, top: int, service: float, scv: float) -> list[float]:
    """The mean wait in an M/G/c queue of offered ``load`` for c = 0 .. ``top`` (inf where
    c <= load): Erlang C from the Erlang B recursion, stable for any c, Allen-Cunneen."""
    out = [math.inf] * (top + 1)
    b = 1.0
    for c in range(1, top + 1):
        b = load * b / (c + load * b)
        if c > load:
            erlang_c = b / (1 - load / c * (1 - b))
            out[c] = erlang_c * service / (c - load) * (1 + scv) / 2
    return out


def queue_work(view: ClusterView) -> float:
    """The predicted work of every waiting job (by the view's groups of equal work)."""
    waiting, groups = view.waiting, view.waiting_groups
    if groups is None:
        return sum(job_work(j) for j in waiting)
    return sum(len(g) * job_work(waiting[g[0]]) for g in groups)


@dataclass(frozen=True)
class Slot:
    """What the plan knows of one slot: its length, arrival rate, load and mean waits."""

    dt: float
    rate: float
    load: float
    waits: list[float]


@dataclass(frozen=True)
class Mpc:
    step: float = 20.0  # seconds per slot (at least one boot)
    horizon: int = 12  # slots planned
    delay_weight: float = 2.0  # core-seconds a second of a delay-sensitive job's wait is worth
    deferrable_weight: float = 0.1  # a deferrable job's wait, relative to a sensitive one's
    robust: float = 1.0  # z: the rate planned z standard errors above its estimate
    trend_span: float = 120.0  # seconds the trend is extrapolated at most (0: none)
    flavor: str = "small"
    name: str = "mpc"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "step": (1.0, 600.0),  # a slot lasts a boot at least whatever this says
        # A plan is a DP over MAX_SIZES counts per slot: its time grows with the slots
        # (and the horizon x step planned, up to 8 h here).
        "horizon": (1, 48),
        "delay_weight": (0.0, 1000.0),
        "deferrable_weight": (0.0, 1.0),  # a deferrable job's wait weighs no more
        "robust": (0.0, 10.0),  # below 0 a slot's planned rate could be negative
        "trend_span": (0.0, 3600.0),
    }

    # ---- prediction ------------------------------------------------------------------------
    def rates(self, view: ClusterView, dt: float) -> list[float]:
        """The arrival rate planned for each slot: trend-carried, raised for robustness."""
        s = view.stats
        slope = (s.rate_short - s.rate_long) / TREND_BASE
        out = []
        for k in range(self.horizon):
            ahead = min(SHORT_MID + (k + 0.5) * dt, self.trend_span)
            rate = max(0.0, s.rate_short + slope * ahead)
            out.append(rate + self.robust * math.sqrt(rate / SHORT_WINDOW))
        return out

    # ---- decisions -------------------------------------------------------------------------
    def decide(self, view: ClusterView) -> Decisions:
        deferrable = [j for j in view.waiting if j.priority < 0]
        queue: tuple[JobView, ...] | list[JobView] = view.waiting
        if deferrable:
            queue = [j for j in view.waiting if j.priority >= 0] + deferrable
        idle = view.idle_by_age
        n = min(len(queue), len(idle))
        assign = tuple(Assign(j.id, w.id) for j, w in zip(queue[:n], idle[:n], strict=True))
        left = len(queue) - n
        taken_d = max(0, n - (len(queue) - len(deferrable)))  # deferrable jobs assigned
        work_d = sum(job_work(j) for j in deferrable[taken_d:])
        work_s = queue_work(view) - sum(job_work(j) for j in deferrable)
        work_s -= sum(job_work(j) for j in queue[: n - taken_d])
        left_d = len(deferrable) - taken_d
        alive = len(view.workers)
        startable = max(0, min(view.room, fits(view, FLAVORS[self.flavor], view.room)))
        floor = len(view.busy) + len(view.booting) + n
        if left and not (view.busy or view.booting):
            floor += 1  # a job waits and nothing will free up: one worker at least
        most = max(floor, alive + startable)
        sensitive, deferrable = (work_s, left - left_d), (work_d, left_d)
        target = self.plan(view, floor, most, sensitive, deferrable)
        start: tuple[StartWorker, ...] = ()
        stop: tuple[StopWorker, ...] = ()
        if target > alive:
            start = tuple(StartWorker(self.flavor) for _ in range(min(target - alive, startable)))
        elif target < alive and not left:
            # Asked again once they are stopped (at once, as after every stop), the plan
            # starts from fewer workers ready; it may then start one again at once, a boot
            # for nothing: the workers go only when the plan from that count keeps it.
            if self.plan(view, floor, most, sensitive, deferrable, alive=target) > target:
                target = alive
            surplus = idle[n : n + alive - target]
            stop = tuple(StopWorker(w.id, f"planned {target} workers") for w in surplus)
        stats = view.stats
        quiet = not (view.waiting_count or view.workers or stats.rate_short or stats.rate_long)
        return Decisions(start=start, stop=stop, assign=assign, wake_at=math.inf if quiet else None)

    def plan(
        self,
        view: ClusterView,
        floor: int,
        most: int,
        sensitive: tuple[float, int],
        deferrable: tuple[float, int],
        alive: int | None = None,
    ) -> int:
        """The number of workers for the first slot of the plan of least cost, from ``floor``
        to ``most``; ``sensitive`` and ``deferrable``: the work and the count of the jobs left
        waiting; ``alive``: the workers there are (the view's unless given)."""
        dt = max(self.step, boot_seconds(view))
        spw = seconds_per_work(view, self.flavor)
        mean_work, scv = work_moments(view)
        service = mean_work * spw
        rates = self.rates(view, dt)
        loads = [r * service for r in rates]
        alive = len(view.workers) if alive is None else alive
        backlog = (sensitive[0] + deferrable[0]) * spw
        if min(loads) >= most:
            return most  # overloaded in every slot: every worker there is room for
        peak = max(loads)
        enough = math.ceil(peak + 3 * math.sqrt(peak) + 1 + backlog / dt)
        top = min(most, max(floor, alive, enough))
        tables: dict[float, list[float]] = {}  # slots past the trend's span share a load
        slots = [
            Slot(dt, r, a, tables.get(a) or tables.setdefault(a, mean_waits(a, top, service, scv)))
            for r, a in zip(rates, loads, strict=True)
        ]
        ms = (
            sensitive[0] * spw / sensitive[1]
            if sensitive[1] and sensitive[0]
            else max(service, 1.0)
        )
        md = (
            deferrable[0] * spw / deferrable[1]
            if deferrable[1] and deferrable[0]
            else max(service, 1.0)
        )
        sizes = _sizes(0, top, (floor, alive))
        cores = FLAVORS[self.flavor].cpus
        w, wd = self.delay_weight, self.deferrable_weight

        def left(xs: float, xd: float, slots_after: int) -> float:
            """A backlog left: as if it waited to the horizon's end and one horizon more."""
            return w * (xs / ms + wd * xd / md) * dt * (self.horizon + slots_after)

        # DP over the worker count, slot by slot; each state: (cost so far, the sensitive and
        # deferrable backlog in worker-seconds, the first slot's count). Of the ways to reach
        # a count, the one kept is the cheapest with its backlog counted as left.
        states: dict[int, tuple[float, float, float, int]] = {}
        xs0, xd0 = sensitive[0] * spw, deferrable[0] * spw
        for size in (s for s in sizes if s >= floor):
            cost, xs, xd = self.slot(slots[0], size, min(size, alive), xs0, xd0, ms, md, cores)
            states[size] = (cost, xs, xd, size)
        for k, slot in enumerate(slots[1:], start=1):
            after = self.horizon - 1 - k
            nxt: dict[int, tuple[float, float, float, int]] = {}
            for size in sizes:
                best, score = None, math.inf
                for before, (paid, xs, xd, first) in states.items():
                    cost, xs2, xd2 = self.slot(slot, size, min(size, before), xs, xd, ms, md, cores)
                    total = paid + cost
                    if (value := total + left(xs2, xd2, after)) < score:
                        best, score = (total, xs2, xd2, first), value
                if best is not None:
                    nxt[size] = best
            states = nxt
        end = min(states.values(), key=lambda s: (s[0] + left(s[1], s[2], 0), s[3]))
        return end[3]

    def slot(
        self,
        slot: Slot,
        size: int,
        ready: int,
        xs: float,
        xd: float,
        ms: float,
        md: float,
        cores: int,
    ) -> tuple[float, float, float]:
        """One slot with ``size`` workers reserved, ``ready`` of them able to work, from the
        backlog ``xs`` (delay-sensitive) and ``xd`` (deferrable), in worker-seconds: its cost
        and the backlog left."""
        dt = slot.dt
        spare = (ready - slot.load) * dt  # worker-seconds the arrivals leave to the backlog
        if spare > 0:
            queued = slot.rate * dt * slot.waits[ready]  # the arrivals' own queueing
            xs2 = max(0.0, xs - spare)
            xd2 = max(0.0, xd - max(0.0, spare - xs))
        else:  # the arrivals pile onto the backlog
            queued = 0.0
            xs2, xd2 = xs - spare, xd
        if xs2 == 0.0 and xs > 0.0:  # drained within the slot: a triangle
            wait_s = xs / ms * (xs / (ready - slot.load)) / 2
        else:
            wait_s = dt * (xs + xs2) / (2 * ms)
        wait_d = dt * (xd + xd2) / (2 * md)
        delay = queued + wait_s + self.deferrable_weight * wait_d
        return size * cores * dt + self.delay_weight * delay, xs2, xd2


def _sizes(low: int, top: int, keep: tuple[int, ...]) -> list[int]:
    """The worker counts the plan chooses among: every one from ``low`` to ``top``, or
    ``MAX_SIZES`` of them evenly spaced (with ``keep``) when there are more."""
    if top - low + 1 <= MAX_SIZES:
        return list(range(low, top + 1))
    spaced = {low + round(i * (top - low) / (MAX_SIZES - 1)) for i in range(MAX_SIZES)}
    return sorted(spaced | {k for k in keep if low <= k <= top})


@register("mpc")
def _make(params: PolicyParams) -> Mpc:
    return Mpc(flavor=params.flavor)
