"""The waiting jobs in order of work and age, one at a time, without sorting them all.

A policy that serves the largest ``work(job) + aging x (now - job.ranked_at)`` first (ties
in queue order) needs only the head of that order most of the time: what idle workers,
booting ones and room can take. ``by_work_and_age`` yields exactly
``sorted(view.waiting, key=lambda j: -(work(j) + aging * (now - j.ranked_at)))``, lazily: the
jobs of one kind (``ClusterView.waiting_groups``: the same predicted work) are already in
that order, since they are in queue order, so the order is a merge of the groups, which
costs a few heap operations per job taken instead of a sort of every waiting job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heapify, heappop, heapreplace

from dacirco.policies.base import ClusterView, JobView


def by_work_and_age(
    view: ClusterView,
    work: Callable[[JobView], float],
    aging: float,
    groups: tuple[tuple[int, ...], ...] | None = None,
) -> Iterator[JobView]:
    """``view.waiting`` by decreasing ``work + aging x age`` (ties: queue order); only the
    jobs of ``groups`` (positions in ``view.waiting``, as ``view.waiting_groups``) if
    given."""
    waiting, now = view.waiting, view.now
    if groups is None:
        groups = view.waiting_groups
    if groups is None or aging < 0:  # a group's jobs are in this order only then
        chosen = range(len(waiting)) if groups is None else sorted(i for g in groups for i in g)
        jobs = [waiting[i] for i in chosen]
        yield from sorted(jobs, key=lambda j: -(work(j) + aging * (now - j.ranked_at)))
        return
    heap = []
    for g, positions in enumerate(groups):
        first = waiting[positions[0]]
        w = work(first)
        rank = first.received_at if first.rank is None else first.rank  # JobView.ranked_at
        heap.append((-(w + aging * (now - rank)), positions[0], g, 0, w))
    heapify(heap)
    while heap:
        _, position, g, head, w = heap[0]
        yield waiting[position]
        positions = groups[g]
        # The group's next jobs, while they come before every other group's head.
        runner = min(heap[1:3]) if len(heap) > 1 else None
        for k in range(head + 1, len(positions)):
            job = waiting[positions[k]]
            rank = job.received_at if job.rank is None else job.rank
            entry = (-(w + aging * (now - rank)), positions[k], g, k, w)
            if runner is not None and runner < entry:
                heapreplace(heap, entry)
                break
            yield job
        else:
            heappop(heap)
