"""Building blocks shared by policies: FIFO matching and clamped worker starts."""

from __future__ import annotations

from dacirco.core.placement import how_many
from dacirco.domain import FLAVORS, Flavor, WorkerState
from dacirco.policies.base import Assign, ClusterView, JobView, StartWorker, WorkerView


def match_fifo(
    view: ClusterView,
) -> tuple[tuple[Assign, ...], tuple[JobView, ...], tuple[WorkerView, ...]]:
    """Give waiting jobs, oldest first, to idle workers, longest idle first.

    Returns the assignments, the jobs still unserved and the workers still idle.
    """
    if not view.waiting_count:
        return (), (), view.idle
    pairs = first_fifo(view)
    taken = {a.worker_id for a in pairs}
    return pairs, view.waiting[len(pairs) :], tuple(w for w in view.idle if w.id not in taken)


def first_fifo(view: ClusterView) -> tuple[Assign, ...]:
    """The assignments of :func:`match_fifo` alone: the first waiting jobs to the longest idle
    workers (``view.idle_by_age``), as many as both."""
    n = min(view.waiting_count, view.idle_count)
    if n == 0:
        return ()
    first = view.oldest_idle(n)
    return tuple(Assign(j.id, w.id) for j, w in zip(view.first_waiting(n), first, strict=True))


def fits(view: ClusterView, flavor: Flavor, enough: int | None = None) -> int:
    """How many more workers of ``flavor`` the nodes can hold (unbounded when no node is
    known); with ``enough``, the count stops once it reaches it."""
    if not view.nodes:
        return view.room
    if enough is None:
        return sum(how_many(node, flavor) for node in view.nodes)
    total = 0
    for node in view.nodes:
        total += how_many(node, flavor)
        if total >= enough:
            break
    return total


def starts_for(view: ClusterView, unserved: int, flavor_name: str) -> tuple[StartWorker, ...]:
    """Start one worker per unserved job not already covered by a booting worker.

    Clamped to ``max_workers`` and to node capacity in this one place.
    """
    if unserved <= 0:
        return ()
    wanted = unserved - view.count(WorkerState.BOOTING)
    if wanted <= 0 or view.room <= 0:
        return ()
    bound = min(wanted, view.room)
    count = max(0, min(bound, fits(view, FLAVORS[flavor_name], bound)))
    return tuple(StartWorker(flavor_name) for _ in range(count))
