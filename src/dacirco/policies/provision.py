"""Building blocks of the policies taken from the literature (``covt``, ``cvss``, ``mpc``):
where new workers fit, when the current workers come free, and when a queue would be served.

Pure arithmetic on the view, like the rest of ``dacirco.policies``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

from dacirco.core.placement import how_many
from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import ClusterView, JobView, StartWorker, WorkerView
from dacirco.policies.deadline import job_work, seconds_per_work
from dacirco.policies.line import Line

DEFAULT_BOOT = 20.0  # seconds, until a boot has been seen
SCAN = 32  # servers up to which list scheduling looks at each in turn (else ``line.Line``)


def boot_seconds(view: ClusterView) -> float:
    b = view.stats.boot_seconds
    return DEFAULT_BOOT if b is None else b


def work_moments(view: ClusterView) -> tuple[float, float]:
    """(mean, squared coefficient of variation) of a request's work: of the recent requests
    (``view.stats.recent_work``), else of the waiting ones; (0, 0) when none has any."""
    works = [w for w in view.stats.recent_work if w > 0] or [
        w for w in (job_work(j) for j in view.waiting) if w > 0
    ]
    if not works:
        return 0.0, 0.0
    mean = sum(works) / len(works)
    var = sum((w - mean) ** 2 for w in works) / len(works)
    return mean, var / (mean * mean)


class Room:
    """What may still be started during one decision: ``max_workers`` and each node's free
    cores and memory, taken as workers are granted. A new worker goes to the node with the
    most free cores that holds it (the core's own spreading rule, ``core.placement``)."""

    def __init__(self, view: ClusterView) -> None:
        self.count = view.room
        self.nodes = view.nodes
        self.free = {n.name: [n.free_cpus, n.free_memory_gb] for n in view.nodes}
        # The nodes by free cores, then memory, then place (made at the first take): the best
        # node for a worker is then found without scanning them all.
        self._order: list[tuple[float, float, int]] | None = None

    def holds(self, flavor: str) -> int:
        """How many more workers of ``flavor`` may be started."""
        if not self.nodes:
            return self.count
        f = FLAVORS[flavor]
        return min(self.count, sum(how_many(_Free(*v), f) for v in self.free.values()))

    def take(self, flavor: str) -> StartWorker | None:
        if self.count <= 0:
            return None
        if not self.nodes:
            self.count -= 1
            return StartWorker(flavor)
        f = FLAVORS[flavor]
        order = self._order
        if order is None:
            order = [(-c, -m, i) for i, (c, m) in enumerate(self._frees())]
            heapify(order)
            self._order = order
        # The most free cores first (then memory, then the first node): the first that holds
        # the flavor is the one the core would pick; none has the cores once the head lacks them.
        passed, got = [], None
        while order and -order[0][0] >= f.cpus:
            entry = heappop(order)
            if -entry[1] >= f.memory_gb:
                got = entry
                break
            passed.append(entry)
        for entry in passed:
            heappush(order, entry)
        if got is None:
            return None
        name = self.nodes[got[2]].name
        self.free[name][0] -= f.cpus
        self.free[name][1] -= f.memory_gb
        cpus, mem = self.free[name]
        heappush(order, (-cpus, -mem, got[2]))
        self.count -= 1
        return StartWorker(flavor, name)

    def _frees(self) -> list[list[float]]:
        return [self.free[n.name] for n in self.nodes]


@dataclass(frozen=True)
class _Free:
    free_cpus: float
    free_memory_gb: float
    name: str = ""


def free_in(view: ClusterView, w: WorkerView, spw: Mapping[str, float] | None = None) -> float:
    """Seconds from now until ``w`` can take a job (predicted; 0 when idle); ``spw``: the
    seconds per unit of work of each flavor, if known."""
    now = view.now
    if w.state is WorkerState.BOOTING:
        return max(0.0, boot_seconds(view) - (now - w.created_at))
    if w.state is not WorkerState.BUSY or w.busy_since is None:
        return 0.0
    work = w.job_work or 0.0
    speed = seconds_per_work(view, w.flavor.name) if spw is None else spw[w.flavor.name]
    return max(0.0, work * speed - (now - w.busy_since))


@dataclass
class Server:
    """A worker as the list scheduling sees it: free ``at`` (seconds from now)."""

    at: float
    flavor: str


def servers(view: ClusterView, workers: Iterable[WorkerView]) -> list[Server]:
    return [Server(at, flavor) for at, flavor in free_times(view, workers)]


def free_times(view: ClusterView, workers: Iterable[WorkerView]) -> list[tuple[float, str]]:
    """Each worker's ``free_in`` and flavor, with what every worker shares computed once."""
    spw = speeds(view)
    now, boot = view.now, boot_seconds(view)
    out = []
    for w in workers:
        state = w.state
        if state is WorkerState.BOOTING:
            at = boot - (now - w.created_at)
        elif state is not WorkerState.BUSY or w.busy_since is None:
            at = 0.0
        else:
            at = (w.job_work or 0.0) * spw[w.flavor.name] - (now - w.busy_since)
        out.append((at if at > 0.0 else 0.0, w.flavor.name))  # max(0.0, at)
    return out


def speeds(view: ClusterView) -> dict[str, float]:
    """The seconds per unit of work of every flavor (``deadline.seconds_per_work``)."""
    return {f: seconds_per_work(view, f) for f in FLAVORS}


def completions(
    view: ClusterView, queue: Sequence[JobView], pool: Sequence[Server]
) -> list[tuple[float, float]]:
    """List scheduling of ``queue`` (in that order) on ``pool``: each job goes to the server
    where it would complete first (minimum completion time; of equals, the first in
    ``pool``). Returns, per job, its start and its completion (absolute times; inf when there
    is no server). ``pool`` is not changed."""
    if len(pool) > SCAN:
        line = Line(view.now, speeds(view), ((s.at, s.flavor) for s in pool))
        return [line.place(job_work(job)) for job in queue]
    free = [Server(s.at, s.flavor) for s in pool]  # a few servers: looked at in turn
    out = []
    now = view.now
    spw = speeds(view)
    for job in queue:
        work = job_work(job)
        best, done = None, math.inf
        for s in free:
            end = s.at + work * spw[s.flavor]
            if end < done:
                best, done = s, end
        if best is None:
            out.append((math.inf, math.inf))
            continue
        out.append((now + best.at, now + done))
        best.at = done
    return out
