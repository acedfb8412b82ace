"""The waiting jobs by urgency (earliest deadline first), one at a time, without sorting
them all: the order of ``cvss``'s batch queue.

A job's urgency is its deadline (``policies.deadline``), earlier by what its priority is worth
(``JobView.ranked_at``). The jobs of one kind (``ClusterView.waiting_groups``: the same
predicted work, so the same slack) come in arrival order, which is their order of urgency
when no job carries a rank of its own (priority 0: the deadline grows with the arrival, in
floating point too); ties, jobs that arrived at the same time, go by id. The order is then a
merge of the groups: a few heap operations per job taken instead of a sort of the queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from heapq import heapify, heappop, heappush

from dacirco.policies.base import ClusterView, JobView
from dacirco.policies.deadline import (
    SLACK_FACTOR,
    WAIT_ALLOWANCE,
    deadline,
    job_work,
    reference_seconds,
)


def urgency(job: JobView) -> float:
    """The batch queue's key: the deadline, earlier by what the job's priority is worth."""
    return deadline(job) - (job.received_at - job.ranked_at)


def urgency_key(job: JobView) -> tuple[float, float, str]:
    return (urgency(job), job.ranked_at, job.id)


def unranked(view: ClusterView) -> bool:
    """No waiting job carries a rank of its own (every one of priority 0)."""
    return all(j.rank is None for j in view.waiting)


def by_urgency(
    view: ClusterView,
    groups: Sequence[Sequence[int]] | None = None,
    plain: bool | None = None,
) -> Iterator[JobView]:
    """``sorted(view.waiting, key=urgency_key)``, lazily; only the jobs of ``groups``
    (positions in ``view.waiting``, as ``view.waiting_groups``) if given. ``plain``:
    ``unranked(view)``, if known."""
    waiting = view.waiting
    if groups is None:
        groups = view.waiting_groups
    if plain is None:
        plain = unranked(view)
    if groups is None or not plain:
        chosen = range(len(waiting)) if groups is None else sorted(i for g in groups for i in g)
        yield from sorted((waiting[i] for i in chosen), key=urgency_key)
        return
    runs = [_Run(waiting, g) for g in groups if g]
    heap = [(r.key(), k) for k, r in enumerate(runs)]
    heapify(heap)
    while heap:
        _, k = heappop(heap)
        run = runs[k]
        yield run.head
        if run.advance():
            heappush(heap, (run.key(), k))


class _Run:
    """One group's jobs in order of urgency: arrival order, those of one arrival by id."""

    def __init__(self, waiting: Sequence[JobView], positions: Sequence[int]) -> None:
        self.waiting, self.positions = waiting, positions
        # The group's share of every deadline, as ``deadline`` adds it.
        self.slack = SLACK_FACTOR * reference_seconds(job_work(waiting[positions[0]]))
        self.next = 0  # the next position to read
        self.tied: list[JobView] = []  # jobs of the head's arrival, reversed
        self.advance()

    def key(self) -> tuple[float, float, str]:
        """``urgency_key(self.head)``: with no rank, the urgency is the deadline."""
        job = self.head
        return (job.received_at + WAIT_ALLOWANCE + self.slack, job.received_at, job.id)

    def advance(self) -> bool:
        """Move to the group's next job; False when there is none."""
        if self.tied:
            self.head = self.tied.pop()
            return True
        waiting, positions, k = self.waiting, self.positions, self.next
        if k >= len(positions):
            return False
        first = waiting[positions[k]]
        k += 1
        while k < len(positions) and waiting[positions[k]].received_at == first.received_at:
            k += 1
        if k - self.next > 1:  # arrived together: by id
            tied = [waiting[positions[i]] for i in range(self.next, k)]
            tied.sort(key=lambda j: j.id, reverse=True)
            first = tied.pop()
            self.tied = tied
        self.next = k
        self.head = first
        return True
