"""adaptive's plan of the queue: how many chunks each waiting job is split in, so that it
ends soonest on the workers that are, or may be, free first, and how many new workers that
plan starts; the merges waiting, the busy workers due soon, and where new workers go."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from heapq import heapify, heappop, heappush
from itertools import chain
from typing import NamedTuple

from dacirco.policies.base import ClusterView, JobView, Split, StartWorker
from dacirco.policies.right_size_serve import Placer
from dacirco.policies.work import seconds_left, view_work


class Plan(NamedTuple):
    splits: tuple[Split, ...]  # the jobs split now, each in the chunks that end it soonest
    started: int  # the new workers the plan's tasks take: none there starts them in a boot


def split_soonest(
    view: ClusterView,
    rate: float,
    boot: float,
    workers: int,
    asks: Callable[[JobView], int],
    count: bool = False,
    queue: Iterable[JobView] | None = None,
) -> Plan:
    """The waiting whole jobs at the head of the queue, each in chunks, while the
    workers there are or may be started can take them. The tasks take, in the queue's
    order, the workers that are free first (idle ones, booting ones, busy ones by when
    they are due, each again after its tasks, and new ones after a boot while there is
    room for them); a job gets as many of the chunks its length asks for as end it
    soonest (the fewest on a tie): four chunks that would run two by two do not end it
    sooner than two. ``asks(job)``: the chunks its length asks for (1 for a part; every
    job is one task where jobs are not split). ``Plan.started`` counts the new workers the
    tasks took: those no worker there can start within a boot. Only the first ``workers``
    tasks are planned, unless ``count``: then the jobs after them are placed too, each in
    the chunks its length asks for, while a new worker may still be started. ``queue``:
    the waiting jobs in the order they are served (``view.waiting`` unless given)."""
    if not view.waiting_count:
        return Plan((), 0)
    if not view.limits.can_split:
        asks = _one
    now = view.now
    free = [0.0] * len(view.idle)  # seconds until each worker is free
    free += [max(0.0, boot - (now - w.created_at)) for w in view.booting]
    for w in view.busy:
        left = seconds_left(w, rate, now)
        free.append(boot if left is None else max(0.0, left))
    heapify(free)
    room = view.room  # the workers that may still be started, each after a boot

    def take() -> tuple[float, bool] | None:
        """The worker free first, or a new one if it is up sooner: (when free, new)."""
        nonlocal room
        if free and (free[0] <= boot or room <= 0):
            return heappop(free), False
        if room > 0:
            room -= 1
            return boot, True
        return None

    def place(seconds: float) -> None:
        """One task on the worker ``take`` finds."""
        got = take()
        if got is not None:
            heappush(free, got[0] + seconds)

    out: list[Split] = []
    jobs = iter(view.waiting if queue is None else queue)
    for j in jobs:
        if workers <= 0:
            jobs = chain((j,), jobs)  # not planned: counted below
            break
        seconds = view_work(j) * rate
        want = asks(j)
        if want == 1:  # a part, or a job too short to split: the worker free first
            place(seconds)
            workers -= 1
            continue
        taken = [got for got in (take() for _ in range(want)) if got is not None]
        ends = [at + seconds / (n + 1) for n, (at, _) in enumerate(taken)]
        k = ends.index(min(ends)) + 1 if ends else 1
        for at, new in taken:  # all back, then its chunks take them one by one: a worker
            if new:  # free within a boot runs a chunk after another rather than a new one
                room += 1
            else:
                heappush(free, at)
        for _ in range(k):
            place(seconds / k)
        if k >= 2:
            out.append(Split(j.id, k))
        workers -= k
    if count:  # the jobs after those are only counted (a worker may run several tasks)
        for j in jobs:
            if room <= 0:
                break
            want = asks(j)
            for _ in range(want):
                place(view_work(j) * rate / want)
    return Plan(tuple(out), view.room - room)


def _one(job: JobView) -> int:
    return 1


def waiting_merges(view: ClusterView) -> list[JobView]:
    """The waiting merges, in the queue's order (each ends a job: they go first)."""
    groups = view.waiting_groups
    if groups is None:
        return [j for j in view.waiting if j.part == "merge"]
    found = [i for g in groups if view.waiting[g[0]].part == "merge" for i in g]
    return [view.waiting[i] for i in sorted(found)]


def due_within(view: ClusterView, rate: float, horizon: float) -> int:
    """Busy workers whose task is predicted to end within ``horizon`` seconds (``rate``:
    seconds per unit of work)."""
    now, n = view.now, 0
    for w in view.busy:
        left = seconds_left(w, rate, now)
        n += left is not None and -horizon < left <= horizon
    return n


def place(view: ClusterView, n: int, flavor: str) -> tuple[StartWorker, ...]:
    """Up to ``n`` new workers of ``flavor``, each on the fullest node that holds it."""
    placer, out = Placer(view.nodes), []
    for _ in range(n):
        placed = placer.place(flavor, 1)
        if placed is None:
            break
        out.append(placed)
    return tuple(out)
