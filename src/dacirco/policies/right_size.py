"""right-size: a worker sized for each job, the longest jobs first, no boot that a busy worker
can save, and just as many idle workers as the traffic pays for.

The classic policies give every job the same flavor and choose between paying a boot per
request (minimize-workers) and keeping every idle worker for a fixed time (grace-period).
This one looks at the jobs and at the traffic (docs/policies.md has the measurements):

- **Right-sizing.** A job's work is predicted from its movie and preset (``policies.work``).
  Most jobs run on the smallest flavor, where a core-second does the most work (ffmpeg does
  not use more cores linearly); the longest ones, which make the p95 of the delay, on the
  largest (``tiers``, or with ``long_share`` the longest share of the recent requests).
- **Longest first** (``order``): the queue is served by predicted work, largest first, with
  aging (a second of waiting is worth ``aging`` units of work), so that no job starves and
  the long jobs that make the p95 do not wait behind short ones.
- **No needless boot.** A job waits for a busy worker predicted to be done within
  ``wait_factor`` boot times rather than boot a new one (predicted from the measured seconds
  per unit of work of each flavor, ``view.stats``).
- **Patience.** A job waits up to ``patience`` seconds for a worker of its flavor; while its
  flavor fits nowhere it accepts half its cores; after ``patience`` any worker.
- **Idle workers.** With requests arriving at rate λ and a boot taking b seconds, the i-th
  idle worker (most recent first) is needed in about (i+1)/λ s: ``keep = round(keep_factor ·
  λ·b)`` idle workers are kept, the others stopped, oldest first, once idle ``linger``
  seconds. Requests go to the most recently idle worker (last in, first out) so the oldest
  age out. (grace-period gives a request to the longest idle worker: every worker is reused
  just in time and none reaches its grace period, which is why it is costly.) Each idle
  worker goes after ``max_idle_time`` at the latest.
- **Packing.** A new worker goes to the fullest node that holds it, which leaves whole nodes
  free for the larger flavors.

Everything it reads is in the view: it is as pure as the classic policies.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from dacirco.core.placement import MAX_CHUNKS
from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    ClusterView,
    Decisions,
    JobView,
    PolicyParams,
    Split,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.order import by_work_and_age
from dacirco.policies.right_size_serve import Serve, fits_somewhere
from dacirco.policies.work import seconds_left, view_work

Groups = tuple[tuple[int, ...], ...]

# (work from which a job gets the flavor, flavor), highest first. Work is in seconds of
# 1080p30 video at "ultrafast" (policies.work): in the default catalog bbb_9 (60 s, 1080p25)
# at "fast" is 334 and bbb_7 at "fast" 221 (13 % of the classic requests); the others are
# below 110, and every "ultrafast" job below 50.
TIERS: tuple[tuple[float, str], ...] = ((200.0, "medium"), (0.0, "tiny"))


work = view_work  # a job's work as right-size weighs it


@dataclass(frozen=True)
class RightSize:
    tiers: tuple[tuple[float, str], ...] = TIERS
    long_share: float | None = None  # instead of the thresholds: this share of requests
    order: str = "longest"  # queue order: "longest" (most work first, with aging) or "fifo"
    aging: float = 5.0  # units of work a second of waiting is worth
    wait_factor: float = 1.0  # wait for a busy worker due within this many boot times
    patience: float = 30.0  # seconds a job waits for its flavor
    keep_factor: float = 0.0  # idle workers kept per request expected during one boot
    linger: float = 0.0  # seconds a surplus idle worker is kept before it is stopped
    max_idle_time: float = 60.0  # seconds an idle worker is kept at most
    split_work: float = 200.0  # where the mechanism can split: jobs of this much work ...
    max_chunks: int = 8  # ... go in up to this many chunks, one per free core
    default_boot: float = 20.0  # seconds, until a boot has been seen
    name: str = "right-size"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range;
    # ``max_idle_time`` is ``--max-idle-time``.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "keep_factor": (0.0, 10.0),
        "linger": (0.0, 3600.0),
        "aging": (0.0, 1000.0),
        "wait_factor": (0.0, 10.0),
        "patience": (0.0, 3600.0),
        "split_work": (1.0, 1e6),
        "max_chunks": (1, MAX_CHUNKS),  # the most a split may have
        "default_boot": (0.1, 3600.0),
    }

    # ---- what the jobs and the traffic ask for ---------------------------------------------
    def boot(self, view: ClusterView) -> float:
        s = view.stats.boot_seconds
        return s if s is not None else self.default_boot

    def keep(self, view: ClusterView) -> int:
        s = view.stats
        return round(self.keep_factor * max(s.rate_short, s.rate_long) * self.boot(view))

    def flavor_for(self, view: ClusterView, job: JobView) -> str:
        w = work(job)
        recent = view.stats.recent_work
        if self.long_share and recent:
            # The longest ``long_share`` of the recent requests get the largest flavor, the
            # others the smallest, whatever the lengths of the catalog's movies.
            cut = recent[min(len(recent) - 1, int(len(recent) * (1 - self.long_share)))]
            return self.tiers[0][1] if w >= cut and w > 0 else self.tiers[-1][1]
        return next(f for threshold, f in self.tiers if w >= threshold)

    def queue(self, view: ClusterView) -> tuple[JobView, ...]:
        if self.order == "fifo":
            return view.waiting
        now, aging = view.now, self.aging
        return tuple(sorted(view.waiting, key=lambda j: -(work(j) + aging * (now - j.ranked_at))))

    def least_cpus(self, view: ClusterView, job: JobView, flavor: str) -> int:
        """The fewest cores the job accepts now: its flavor's while one can be started;
        else half of them (a long job is not worth running on the smallest flavor); any
        once it waited ``patience`` seconds."""
        if view.now - job.received_at >= self.patience:
            return 1
        wanted = FLAVORS[flavor]
        return wanted.cpus if fits_somewhere(view, wanted) else max(1, wanted.cpus // 2)

    # ---- decisions ---------------------------------------------------------------------------
    def ordered(self, view: ClusterView, groups: Groups | None = None) -> Iterator[JobView]:
        """``queue(view)`` one job at a time (of ``groups`` only, if given), without sorting
        every waiting job (``policies.order``)."""
        if self.order == "fifo":
            if groups is None:
                return iter(view.waiting)
            return (view.waiting[i] for i in sorted(i for g in groups for i in g))
        return by_work_and_age(view, work, self.aging, groups)

    def splits(self, view: ClusterView) -> tuple[Split, ...]:
        """Long jobs in as many chunks as there are cores free for them now (at least 2):
        their delay is then their work spread over those cores."""
        if not view.limits.can_split or self.max_chunks < 2:
            return ()
        free = int(sum(n.free_cpus for n in view.nodes)) + len(view.idle)
        free = min(free, view.room + len(view.idle))
        if free < 2:
            return ()
        # Only parts (each takes a core) and long jobs (split) change anything here.
        groups = view.waiting_groups
        if groups is not None:
            heads = [(g, view.waiting[g[0]]) for g in groups]
            groups = tuple(g for g, j in heads if j.part is not None or work(j) >= self.split_work)
        out = []
        for job in self.ordered(view, groups):
            if job.part is not None:
                free -= 1  # a part waiting already: its worker comes first
            elif work(job) >= self.split_work and min(free, self.max_chunks, job.frames or 0) >= 2:
                k = min(free, self.max_chunks, MAX_CHUNKS, job.frames or 0)
                out.append(Split(job.id, k))
                free -= k
            if free < 2:
                break  # no job can be split any more
        return tuple(out)

    def decide(self, view: ClusterView) -> Decisions:
        now = view.now
        split = self.splits(view)
        gone = {s.job_id for s in split}
        # Most recently idle first: those keep serving, the oldest age out.
        idle = sorted(view.idle, key=lambda w: (-(w.idle_since or 0.0), w.id))
        served = Serve(self, view, idle).run(self.ordered(view), gone)
        assign = tuple(served.assign)
        taken = {a.worker_id for a in assign}
        still_idle = [w for w in idle if w.id not in taken]
        keep = self.keep(view)
        surplus, stop = len(still_idle) - keep, []
        for w in reversed(still_idle):  # oldest first
            idle_for = now - (now if w.idle_since is None else w.idle_since)
            if idle_for >= self.max_idle_time or (surplus > 0 and idle_for >= self.linger):
                stop.append(StopWorker(w.id, f"idle {idle_for:.0f} s, keeping {keep}"))
                surplus -= 1
        # Idle workers age, waiting jobs run out of patience and busy workers come due with
        # time alone: ask at every tick then; otherwise only events change anything.
        wake_at = None if still_idle or served.left else math.inf
        return Decisions(
            start=tuple(served.start), stop=tuple(stop), assign=assign, wake_at=wake_at, split=split
        )

    def soon_free(self, view: ClusterView) -> list[WorkerView]:
        """Busy workers predicted to be done within ``wait_factor`` boot times, soonest first
        (none of a flavor before one of its tasks completed: nothing to predict from)."""
        rates = view.stats.seconds_per_work
        horizon = self.wait_factor * self.boot(view)
        now, due = view.now, []
        for w in view.busy:
            rate = rates.get(w.flavor.name)
            left = None if rate is None else seconds_left(w, rate, now)
            if left is not None and -horizon < left <= horizon:  # long overdue: off
                due.append((max(0.0, left), w.id, w))
        return [w for _, _, w in sorted(due)]


@register("right-size")
def _make(params: PolicyParams) -> RightSize:
    return RightSize(max_idle_time=params.max_idle_time)
