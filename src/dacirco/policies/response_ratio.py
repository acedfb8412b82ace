"""adaptive's order of a backlog: the highest response ratio next.

When more tasks wait (whole jobs, chunks, merges) than the workers that can take one within
a boot (idle, booting, room for new ones, busy ones due by then: ``backlogged``), some of
them will wait whatever the order. Served in arrival order, every one of them waits about
as long, the short ones as the long ones. Served by the highest response ratio,
``(wait + s) / s`` with ``s`` the seconds of work the job has left, a short job passes the
long ones (a few seconds more for a long job are a small share of its delay, and all of a
short one's), and a long job passes them in turn as it waits: its ratio grows with its
wait, so no job starves (Brinch Hansen's rule, which needs no constant). The wait is
counted from the job's rank (``JobView.ranked_at``: a priority is worth its seconds of
waiting), and is never below 0: a job of negative priority that has not yet waited off its
rank has the lowest ratio, 1. A split job's ``s`` is what its chunks still waiting are
worth together, so that its chunks go together and a job nearly done comes soon; merges
come first (each ends a job).

Arrival order is kept where there is no backlog: a job then waits for a worker anyway, and
an order that favours short jobs would only move the long ones' delays, which make the p95.

``by_response_ratio`` yields the order one job at a time, without sorting the queue: the
jobs of one kind (``ClusterView.waiting_groups``, the same predicted work) are already in
that order, as are the chunks of one job, so the order is a merge of those groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heapify, heappop, heapreplace

from dacirco.policies.base import ClusterView, JobView
from dacirco.policies.chunk_plan import due_within
from dacirco.policies.work import view_work


def backlogged(view: ClusterView, rate: float, boot: float) -> bool:
    """More tasks wait (``view.waiting_count``: whole jobs and parts) than the workers that
    can take one within a boot: the idle ones, the booting ones, those there is room to start
    (``view.room``) and the busy ones due by then."""
    n = view.waiting_count
    if n <= view.idle_count + view.room:  # (cheap first)
        return False
    return n > view.idle_count + len(view.booting) + view.room + due_within(view, rate, boot)


def by_response_ratio(view: ClusterView, rate: float, typical: float) -> Iterator[JobView]:
    """``view.waiting``: merges first (queue order), then by decreasing
    ``(max(0, now - ranked_at) + s) / s`` (ties: queue order), ``s`` being the seconds of
    work a whole job has, or the chunks of a split job still waiting have together, on one
    core (``rate`` seconds per unit of work); ``typical`` seconds for a job of unknown length
    (1 s if that is not positive either)."""
    waiting, now = view.waiting, view.now
    groups = view.waiting_groups
    if groups is None:  # not in queue order: each job is its own group
        groups = tuple((i,) for i in range(len(waiting)))
    merges: list[int] = []
    runs: list[tuple[list[int] | tuple[int, ...], float]] = []  # positions, seconds each
    parts: dict[str, list[int]] = {}  # a split job's waiting chunks
    left: dict[str, float] = {}  # and their seconds together
    for g in groups:
        head = waiting[g[0]]
        if head.part == "merge":
            merges.extend(g)
        elif head.part is None:
            runs.append((g, view_work(head) * rate))
        else:
            for i in g:
                job = waiting[i]
                key = job.parent_id or job.id
                parts.setdefault(key, []).append(i)
                left[key] = left.get(key, 0.0) + view_work(job) * rate
    for key, positions in parts.items():
        positions.sort()  # the chunks of one job, from several kinds, in queue order
        runs.append((positions, left[key]))
    for i in sorted(merges):
        yield waiting[i]

    def entry(run: int, k: int) -> tuple[float, int, int, int]:
        positions, seconds = runs[run]
        s = seconds if seconds > 0 else typical if typical > 0 else 1.0
        job = waiting[positions[k]]
        return (-(max(0.0, now - job.ranked_at) + s) / s, positions[k], run, k)

    heap = [entry(r, 0) for r in range(len(runs))]
    heapify(heap)
    while heap:
        _, position, run, k = heap[0]
        yield waiting[position]
        if k + 1 < len(runs[run][0]):
            heapreplace(heap, entry(run, k + 1))
        else:
            heappop(heap)
