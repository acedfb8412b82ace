"""Capacity that is not ours: opportunistic nodes (a node agent's idle machine) are free, but
their pilots may be preempted whenever the owner's load comes back. A preempted task waits
again without counting an attempt, so what it costs is the work it had done: little for a
chunk or a short job, much for a long job encoded whole.

Hence one rule, shared by the policies that know it (grace-period, adaptive): chunks, merges
and short jobs go to pilots first (an idle pilot, then a new one on an opportunistic node),
then to our own workers; long whole jobs go to our own capacity only, and wait for it.
With no opportunistic node and no pilot in the view, nothing here is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dacirco.core.placement import how_many
from dacirco.domain import FLAVORS
from dacirco.policies.base import Assign, ClusterView, JobView, NodeView, StartWorker, WorkerView

# Seconds of movie: a whole job this short may run on a pilot (its loss costs little).
SHORT_JOB_S = 60.0


def suits_pilot(job: JobView, short: float = SHORT_JOB_S) -> bool:
    """A part of a split job, or a whole job known to be short."""
    if job.part is not None:
        return True
    return job.input_duration is not None and job.input_duration <= short


def has_pilots(view: ClusterView) -> bool:
    """The view holds an opportunistic node (else the rule changes nothing). A pilot lives on
    one: its node leaves the view only when its agent is lost, and its pilots with it. The
    core says so in the view's limits (no pass over a thousand nodes at every decision)."""
    known = view.limits.opportunistic
    return known if known is not None else any(n.opportunistic for n in view.nodes)


def match(
    jobs: Iterable[JobView], idle: Sequence[WorkerView], short: float = SHORT_JOB_S
) -> tuple[tuple[Assign, ...], tuple[JobView, ...], tuple[WorkerView, ...]]:
    """Jobs in the order given to the idle workers in theirs: a job that suits a pilot takes
    an idle pilot first, else one of our workers; a long whole job only one of ours.
    Returns the assignments, the jobs left and the workers still idle."""
    pilots = [w for w in idle if w.preemptible]
    owned = [w for w in idle if not w.preemptible]
    pilots.reverse()  # popped from the end: in the order given
    owned.reverse()
    assign: list[Assign] = []
    left: list[JobView] = []
    for job in jobs:
        if suits_pilot(job, short) and (pilots or owned):
            worker = pilots.pop() if pilots else owned.pop()
        elif not suits_pilot(job, short) and owned:
            worker = owned.pop()
        else:
            left.append(job)
            continue
        assign.append(Assign(job.id, worker.id))
    taken = {a.worker_id for a in assign}
    return tuple(assign), tuple(left), tuple(w for w in idle if w.id not in taken)


def needs(
    view: ClusterView, unserved: Iterable[JobView], short: float = SHORT_JOB_S
) -> tuple[int, int]:
    """New workers wanted for the jobs left: (on our own nodes only, on any node), once the
    booting workers are counted (a booting pilot for a job that suits one, ours for any)."""
    long_jobs = short_jobs = 0
    for job in unserved:
        if suits_pilot(job, short):
            short_jobs += 1
        else:
            long_jobs += 1
    booting_pilots = sum(1 for w in view.booting if w.preemptible)
    booting_owned = len(view.booting) - booting_pilots
    owned_only = max(0, long_jobs - booting_owned)
    spare_owned = max(0, booting_owned - long_jobs)
    return owned_only, max(0, short_jobs - booting_pilots - spare_owned)


def place(
    view: ClusterView, owned_only: int, anywhere: int, flavor: str
) -> tuple[StartWorker, ...]:
    """``owned_only`` workers of ``flavor`` on our own nodes, then ``anywhere`` on the
    opportunistic nodes first, then on ours; each on the node with the most room, at most
    ``view.room`` in all."""
    f = FLAVORS[flavor]
    free = {n.name: [n.free_cpus, n.free_memory_gb] for n in view.nodes}
    ours = [n for n in view.nodes if not n.opportunistic]
    theirs = [n for n in view.nodes if n.opportunistic]
    out: list[StartWorker] = []
    budget = view.room

    def take(nodes: list[NodeView], count: int) -> None:
        nonlocal budget
        for _ in range(count):
            if budget <= 0:
                return
            best = max(
                (n for n in nodes if how_many(_Room(n.name, *free[n.name]), f) > 0),
                key=lambda n: free[n.name][0],
                default=None,
            )
            if best is None:
                return
            free[best.name][0] -= f.cpus
            free[best.name][1] -= f.memory_gb
            out.append(StartWorker(flavor, best.name))
            budget -= 1

    take(ours, owned_only)
    before = len(out)
    take(theirs, anywhere)
    take(ours, anywhere - (len(out) - before))
    return tuple(out)


class _Room:
    """A node's room as ``how_many`` reads it."""

    __slots__ = ("free_cpus", "free_memory_gb", "name")

    def __init__(self, name: str, free_cpus: float, free_memory_gb: float) -> None:
        self.name, self.free_cpus, self.free_memory_gb = name, free_cpus, free_memory_gb
