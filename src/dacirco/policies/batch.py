"""``cvss``'s batch queue, read only as far as a decision needs it, and a bound on how many
of its jobs list scheduling would make miss their deadline, found without scheduling them.

The bound: the jobs due by some time that meet their deadline are all done by then, on the
servers' time until then; let the jobs share servers at will and the smallest go first, and
no more than those that fit can be on time (``misses_above``: at the last deadline, and on a
long queue at a few earlier ones too). When it says that even with every worker that could
still be started the miss rate stays above the provisioner's threshold, the provisioner adds
a worker per round for sure, and only the first late job of each round is needed: list
scheduling stops there.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Collection, Sequence

from dacirco.policies.base import ClusterView, JobView
from dacirco.policies.deadline import deadline, job_work
from dacirco.policies.edf import by_urgency, unranked
from dacirco.policies.provision import speeds

ROUNDING = 1e-9  # a relative margin, far above what rounding moves the schedule's times
LONG = 100  # jobs in the queue from which the bound is drawn at earlier deadlines too ...
EARLIER = 4  # ... at this many


class Batch:
    """The waiting jobs but those of ``skip``, by urgency (``edf.by_urgency``), from the
    ``start``-th on; read as far as asked. ``plain``: ``edf.unranked(view)``, if known."""

    def __init__(
        self, view: ClusterView, skip: Collection[JobView] = (), plain: bool | None = None
    ) -> None:
        self.view = view
        self.skip = {j.id for j in skip}
        self.removed = list(skip)  # the jobs of the view left out (skip, then those before start)
        self.plain = unranked(view) if plain is None else plain
        self.seen: list[JobView] = []
        self._jobs = (j for j in by_urgency(view, plain=self.plain) if j.id not in self.skip)
        self.start = 0
        self.size = view.waiting_count - len(self.skip)

    def __len__(self) -> int:
        return self.size - self.start

    def get(self, i: int) -> JobView | None:
        """The ``i``-th job from ``start`` (None past the end)."""
        k = self.start + i
        seen = self.seen
        while len(seen) <= k:
            job = next(self._jobs, None)
            if job is None:
                return None
            seen.append(job)
        return seen[k]

    def drop(self, n: int) -> None:
        """The first ``n`` jobs leave (they were given a worker)."""
        for i in range(n):
            job = self.get(i)
            if job is not None:
                self.removed.append(job)
        self.start += n

    def jobs(self) -> list[JobView]:
        self.seen.extend(self._jobs)
        return self.seen[self.start :]

    def due_by(self, until: float | None = None) -> Counter[float]:
        """How many jobs of each work are due by ``until`` (None: all of them)."""
        view, counts = self.view, Counter[float]()
        groups = view.waiting_groups
        if groups is None or not self.plain:
            for job in self.jobs():
                if until is None or deadline(job) <= until:
                    counts[job_work(job)] += 1
            return counts
        # A group's jobs share a work and come in arrival order: its deadlines grow.
        waiting = view.waiting
        for g in groups:
            if until is None:
                k = len(g)
            else:
                k = bisect_right(g, until, key=lambda i: deadline(waiting[i]))
            if k:
                counts[job_work(waiting[g[0]])] += k
        for job in self.removed:
            if until is None or deadline(job) <= until:
                counts[job_work(job)] -= 1
        return counts

    def deadlines(self, most: int = EARLIER) -> list[float]:
        """The last deadline, then up to ``most`` earlier ones (where a bound may be drawn)."""
        view = self.view
        groups = view.waiting_groups
        if groups is None or not self.plain:
            every = [deadline(j) for j in self.jobs()]
            if not every:
                return []
            if most <= 0:
                return [max(every)]
            every.sort()
            step = max(1, len(every) // most)
            return [every[-1], *every[step - 1 : -1 : step][:most]]
        tails = sorted({deadline(view.waiting[g[-1]]) for g in groups})
        return [tails[-1], *tails[:-1][: max(0, most)]] if tails else []


def misses_above(
    view: ClusterView,
    batch: Batch,
    pool: Sequence[tuple[float, str]],
    extra: int,
    boot: float,
    rate: float,
) -> bool:
    """Whether list scheduling ``batch`` on ``pool`` (when each server comes free, seconds from
    now, and its flavor) and up to ``extra`` more servers of any flavor, free ``boot`` seconds
    from now, is sure to make more than ``rate`` of it late (False: it may or may not)."""
    n = len(batch)
    spw = speeds(view)
    if n == 0 or min(spw.values()) <= 0:
        return False
    fastest, now = min(spw.values()), view.now
    # Earlier deadlines too on long queues only: on a short one, scheduling it costs less.
    for k, last in enumerate(batch.deadlines(EARLIER if n >= LONG else 0)):
        works = batch.due_by(None if k == 0 else last)
        until = last + ROUNDING * (1.0 + abs(last) + abs(now) + max(0.0, last - now))
        horizon = until - now
        capacity = sum((horizon - at) / spw[f] for at, f in pool if at < horizon)
        capacity += extra * max(0.0, horizon - boot) / fastest
        capacity = capacity * (1.0 + ROUNDING) + ROUNDING
        due, on_time = 0, 0
        for work, count in sorted(works.items()):  # the smallest first: as many as can be
            due += count
            if work <= 0:
                on_time += count
                continue
            fit = max(0, min(count, math.floor(capacity / work * (1.0 + ROUNDING))))
            on_time += fit
            capacity -= fit * work
        if (due - on_time) / n > rate:
            return True
    return False
