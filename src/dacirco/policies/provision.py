"""Building blocks of the policies taken from the literature (``covt``, ``cvss``, ``mpc``):
where new workers fit, when the current workers come free, and when a queue would be served.

Pure arithmetic on the view, like the rest of ``dacirco.policies``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dacirco.core.placement import how_many
from dacirco.domain import FLAVORS, WorkerState
from dacirco.policies.base import ClusterView, JobView, StartWorker, WorkerView
from dacirco.policies.deadline import job_work, seconds_per_work

DEFAULT_BOOT = 20.0  # seconds, until a boot has been seen


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
        best, key = None, None
        for i, n in enumerate(self.nodes):
            cpus, mem = self.free[n.name]
            if cpus >= f.cpus and mem >= f.memory_gb and (key is None or (cpus, mem, -i) > key):
                best, key = n.name, (cpus, mem, -i)
        if best is None:
            return None
        self.free[best][0] -= f.cpus
        self.free[best][1] -= f.memory_gb
        self.count -= 1
        return StartWorker(flavor, best)


@dataclass(frozen=True)
class _Free:
    free_cpus: float
    free_memory_gb: float
    name: str = ""


def free_in(view: ClusterView, w: WorkerView) -> float:
    """Seconds from now until ``w`` can take a job (predicted; 0 when idle)."""
    now = view.now
    if w.state is WorkerState.BOOTING:
        return max(0.0, boot_seconds(view) - (now - w.created_at))
    if w.state is not WorkerState.BUSY or w.busy_since is None:
        return 0.0
    work = w.job_work or 0.0
    return max(0.0, work * seconds_per_work(view, w.flavor.name) - (now - w.busy_since))


@dataclass
class Server:
    """A worker as the list scheduling sees it: free ``at`` (seconds from now)."""

    at: float
    flavor: str


def servers(view: ClusterView, workers: Iterable[WorkerView]) -> list[Server]:
    return [Server(free_in(view, w), w.flavor.name) for w in workers]


def completions(
    view: ClusterView, queue: Sequence[JobView], pool: Sequence[Server]
) -> list[tuple[float, float]]:
    """List scheduling of ``queue`` (in that order) on ``pool``: each job goes to the server
    where it would complete first (minimum completion time). Returns, per job, its start and
    its completion (absolute times; inf when there is no server). ``pool`` is not changed."""
    free = [Server(s.at, s.flavor) for s in pool]
    out = []
    now = view.now
    spw = {f: seconds_per_work(view, f) for f in FLAVORS}
    for job in queue:
        work = job_work(job)
        best, done = None, float("inf")
        for s in free:
            end = s.at + work * spw[s.flavor]
            if end < done:
                best, done = s, end
        if best is None:
            out.append((float("inf"), float("inf")))
            continue
        out.append((now + best.at, now + done))
        best.at = done
    return out
