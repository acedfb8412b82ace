"""adaptive's chunks: how many each waiting job is split in, so that it ends soonest on the
workers that are, or may be, free first."""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush, heapreplace

from dacirco.policies.base import ClusterView, JobView, Split
from dacirco.policies.work import view_work


def split_soonest(
    view: ClusterView,
    rate: float,
    boot: float,
    workers: int,
    asks: Callable[[JobView], int],
) -> tuple[Split, ...]:
    """The waiting whole jobs at the head of the queue, each in chunks, while the
    workers there are or may be started can take them. The tasks take, in the queue's
    order, the workers that are free first (idle ones, booting ones, busy ones by when
    they are due, and new ones after a boot while there is room for them); a job gets
    as many of the chunks its length asks for as end it soonest (the fewest on a tie):
    four chunks that would run two by two do not end it sooner than two. ``asks(job)``: the
    chunks its length asks for (1 for a part). (The workers started are still those
    they would take: they serve the requests that follow.)"""
    if not view.limits.can_split or not view.waiting_count:
        return ()
    now = view.now
    free = [0.0] * len(view.idle)  # seconds until each worker is free
    free += [max(0.0, boot - (now - w.created_at)) for w in view.booting]
    free += [
        boot if w.busy_since is None or not w.job_work
        else max(0.0, w.job_work * rate - (now - w.busy_since))
        for w in view.busy
    ]  # fmt: skip
    heapify(free)
    room = view.room  # the workers that may still be started, each after a boot
    out: list[Split] = []
    for j in view.waiting:
        if workers <= 0:
            break
        seconds = view_work(j) * rate
        want = asks(j)
        if want == 1:  # a part, or a job too short to split: the worker free first
            if free and (free[0] <= boot or room <= 0):
                heapreplace(free, free[0] + seconds)
            elif room > 0:
                room -= 1
                heappush(free, boot + seconds)
            workers -= 1
            continue
        taken: list[tuple[float, bool]] = []  # (when free, new), soonest first
        for _ in range(want):
            if free and (free[0] <= boot or room <= 0):
                taken.append((heappop(free), False))
            elif room > 0:  # a new worker is free sooner than any there is
                room -= 1
                taken.append((boot, True))
        ends = [at + seconds / (n + 1) for n, (at, _) in enumerate(taken)]
        k = ends.index(min(ends)) + 1 if ends else 1
        for i, (at, new) in enumerate(taken):  # those it takes are busy, the others back
            if i < k:
                heappush(free, at + seconds / k)
            elif new:
                room += 1
            else:
                heappush(free, at)
        if k >= 2:
            out.append(Split(j.id, k))
        workers -= k
    return tuple(out)
