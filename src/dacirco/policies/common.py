"""Building blocks shared by policies: FIFO matching and clamped worker starts."""

from __future__ import annotations

import heapq

from dacirco.core.placement import how_many
from dacirco.domain import FLAVORS, Flavor
from dacirco.policies.base import Assign, ClusterView, JobView, StartWorker, WorkerView


def match_fifo(
    view: ClusterView,
) -> tuple[tuple[Assign, ...], tuple[JobView, ...], tuple[WorkerView, ...]]:
    """Give waiting jobs, oldest first, to idle workers, longest idle first.

    Returns the assignments, the jobs still unserved and the workers still idle.
    """
    if not view.waiting:
        return (), (), view.idle
    n = min(len(view.waiting), len(view.idle))
    # The n longest idle, in that order (a partial sort: usually one job waits among many).
    first = heapq.nsmallest(n, view.idle, key=lambda w: (w.idle_since or 0.0, w.id))
    pairs = tuple(Assign(j.id, w.id) for j, w in zip(view.waiting, first, strict=False))
    taken = {w.id for w in first}
    return pairs, view.waiting[n:], tuple(w for w in view.idle if w.id not in taken)


def fits(view: ClusterView, flavor: Flavor) -> int:
    """How many more workers of ``flavor`` the nodes can hold (unbounded when no node is known)."""
    if not view.nodes:
        return view.room
    return sum(how_many(node, flavor) for node in view.nodes)


def starts_for(view: ClusterView, unserved: int, flavor_name: str) -> tuple[StartWorker, ...]:
    """Start one worker per unserved job not already covered by a booting worker.

    Clamped to ``max_workers`` and to node capacity in this one place.
    """
    if unserved <= 0:
        return ()
    wanted = unserved - len(view.booting)
    if wanted <= 0 or view.room <= 0:
        return ()
    count = max(0, min(wanted, view.room, fits(view, FLAVORS[flavor_name])))
    return tuple(StartWorker(flavor_name) for _ in range(count))
