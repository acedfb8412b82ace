"""right-size's pass over the queue: each job, in the policy's order, to an idle worker of
its flavor (else the smallest larger one, else the largest it accepts); if none, to a booting
worker that no earlier job took, else to a busy one due soon, else a new worker is placed
for it (``max_workers`` and the nodes' capacity permitting).

What a job gets depends only on its flavor and the fewest cores it accepts (its *need*) and
on what the jobs before it took; and the idle, booting, due workers and the room only
shrink. So once a need found nothing at one stage it never will, and once no need can get
anything anywhere the jobs still queued change nothing: the pass stops there, at the head
of a long queue, with the same decisions as a pass over every job.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dacirco.domain import FLAVORS, Flavor
from dacirco.policies.base import Assign, ClusterView, JobView, NodeView, StartWorker, WorkerView
from dacirco.policies.work import view_work

if TYPE_CHECKING:
    from dacirco.policies.right_size import RightSize

Need = tuple[str, int]  # (flavor, fewest cores accepted)


class Serve:
    def __init__(self, policy: RightSize, view: ClusterView, idle: list[WorkerView]) -> None:
        self.policy, self.view = policy, view
        self.free: dict[str, list[WorkerView]] = {}
        for w in idle:
            self.free.setdefault(w.flavor.name, []).append(w)
        self.booting = sorted((w.flavor for w in view.booting), key=lambda f: f.cpus)
        self._soon: list[WorkerView] | None = None  # made when a job first looks for one
        self.room = view.room
        self.placer = Placer(view.nodes)
        self.assign: list[Assign] = []
        self.start: list[StartWorker] = []
        self.left = 0  # jobs that got no idle worker
        # Needs that found nothing: at the idle workers, the booting ones, the busy ones due
        # (by fewest cores), the nodes.
        self.no_pick: set[Need] = set()
        self.no_cover: set[Need] = set()
        self.no_due: set[int] = set()
        self.no_place: set[Need] = set()
        self._flavors: dict[float, str] = {}  # work -> flavor
        self._least: dict[str, int] = {}  # flavor -> fewest cores before the patience ends
        self._needs: tuple[Need, ...] | None = None

    def run(self, jobs: Iterable[JobView], skip: set[str]) -> Serve:
        """Serve ``jobs`` in order, but those of ``skip``."""
        for job in jobs:
            if skip and job.id in skip:
                continue
            if not self.serve(job) and self.done():
                break
        return self

    def need(self, job: JobView) -> Need:
        policy, view = self.policy, self.view
        w = view_work(job)
        flavor = self._flavors.get(w)
        if flavor is None:
            flavor = self._flavors[w] = policy.flavor_for(view, job)
        if view.now - job.received_at >= policy.patience:
            return flavor, 1
        least = self._least.get(flavor)
        if least is None:
            least = self._least[flavor] = policy.least_cpus(view, job, flavor)
        return flavor, least

    def serve(self, job: JobView) -> bool:
        """Serve ``job``; False when it got nothing (no worker and no start)."""
        need = self.need(job)
        flavor, least = need
        if need not in self.no_pick:
            pick = self._pick(flavor, least)
            if pick is not None:
                self.assign.append(Assign(job.id, self.free[pick].pop(0).id))
                return True
            self.no_pick.add(need)
        self.left += 1
        if need not in self.no_cover:
            if self._cover(flavor, least):
                return True
            self.no_cover.add(need)
        if least not in self.no_due:
            soon = self.soon()
            due = next((w for w in soon if w.flavor.cpus >= least), None)
            if due is not None:
                soon.remove(due)
                return True
            self.no_due.add(least)
        if self.room <= 0 or need in self.no_place:
            return False
        placed = self.placer.place(flavor, least)
        if placed is None:
            self.no_place.add(need)
            return False
        self.start.append(placed)
        self.room -= 1
        return True

    def _pick(self, flavor: str, least: int) -> str | None:
        free = self.free
        options = sorted((f for f in free if free[f]), key=lambda f: FLAVORS[f].cpus)
        pick = next((f for f in options if FLAVORS[f].cpus >= FLAVORS[flavor].cpus), None)
        if pick is None and options and FLAVORS[options[-1]].cpus >= least:
            pick = options[-1]
        return pick

    def _cover(self, flavor: str, least: int) -> bool:
        booting = self.booting
        cover = next((b for b in booting if b.cpus >= FLAVORS[flavor].cpus), None)
        if cover is None and booting and booting[-1].cpus >= least:
            cover = booting[-1]
        if cover is None:
            return False
        booting.remove(cover)
        return True

    def soon(self) -> list[WorkerView]:
        if self._soon is None:
            self._soon = self.policy.soon_free(self.view)
        return self._soon

    def needs(self) -> tuple[Need, ...]:
        """Every need a job may have in this view."""
        if self._needs is None:
            policy, view = self.policy, self.view
            flavors = dict.fromkeys(f for _, f in policy.tiers)
            found: dict[Need, None] = {}
            for f in flavors:
                found[(f, 1)] = None
                wanted = FLAVORS[f]
                least = wanted.cpus if fits_somewhere(view, wanted) else max(1, wanted.cpus // 2)
                found[(f, least)] = None
            self._needs = tuple(found)
        return self._needs

    def done(self) -> bool:
        """No need can get anything any more: the jobs after this one get nothing."""
        if any(self.free.values()) and not all(n in self.no_pick for n in self.needs()):
            return False
        if self.booting and not all(n in self.no_cover for n in self.needs()):
            return False
        soon = self._soon
        if soon is None or (soon and not all(n[1] in self.no_due for n in self.needs())):
            return False
        return self.room <= 0 or all(n in self.no_place for n in self.needs())


def fits_somewhere(view: ClusterView, flavor: Flavor) -> bool:
    if not view.nodes:
        return view.room > 0
    return view.room > 0 and any(
        n.free_cpus >= flavor.cpus and n.free_memory_gb >= flavor.memory_gb for n in view.nodes
    )


class Placer:
    """New workers on the nodes: ``flavor`` on the fullest node that holds it (the first
    listed of the fullest), else the next smaller flavor down to ``least`` cores. The nodes
    are kept by free cores, so a placement looks at the few that may hold it."""

    def __init__(self, nodes: tuple[NodeView, ...]) -> None:
        self.nodes = nodes
        self._largest_first = sorted(FLAVORS.values(), key=lambda f: -f.cpus)
        self._order: list[tuple[float, int]] | None = None  # (free cores, position)
        self._free: list[list[float]] = []  # position -> [free cores, free GB]

    def _build(self) -> list[tuple[float, int]]:
        seen: set[str] = set()
        order = []
        for i, n in enumerate(self.nodes):
            self._free.append([n.free_cpus, n.free_memory_gb])
            if n.name not in seen:  # a name listed twice is one node, its first entry
                seen.add(n.name)
                order.append((n.free_cpus, i))
        order.sort()
        self._order = order
        return order

    def place(self, flavor: str, least: int) -> StartWorker | None:
        if not self.nodes:
            return StartWorker(flavor)
        most = FLAVORS[flavor].cpus
        for f in self._largest_first:
            if not least <= f.cpus <= most:
                continue
            i = self._fullest(f)
            if i is not None:
                return StartWorker(f.name, self.nodes[i].name)
        return None

    def _fullest(self, flavor: Flavor) -> int | None:
        order = self._order if self._order is not None else self._build()
        free = self._free
        for k in range(bisect_left(order, (flavor.cpus, -1)), len(order)):
            _, i = order[k]
            if free[i][1] >= flavor.memory_gb:
                del order[k]
                free[i][0] -= flavor.cpus
                free[i][1] -= flavor.memory_gb
                insort(order, (free[i][0], i))
                return i
        return None
