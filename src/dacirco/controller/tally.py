"""Counters of what the controller holds, kept up to date from the stored changes, so that
``/metrics`` costs the same with ten jobs or a hundred thousand: jobs by state, workers by
state and flavor, and the histogram of the completed jobs' delays.

A ``Tally`` is built once from everything a restart loads (``of``), then moved by each
step's changes once they are stored (``apply``), as the event streams are.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping

from dacirco.controller.changes import DELETED, Change
from dacirco.domain import Job, JobState, Worker

DELAY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def transcoded_delay(job: Job) -> float | None:
    """Request to uploaded output, for a job a worker transcoded (a reused one has none)."""
    if job.state is JobState.COMPLETED and "uploaded" in job.timings:
        return job.timings["uploaded"] - job.received_at
    return None


class Tally:
    def __init__(self) -> None:
        self.jobs: Counter[str] = Counter()  # state -> jobs
        self.workers: Counter[tuple[str, str]] = Counter()  # (state, flavor) -> workers
        self.delay_counts = [0] * len(DELAY_BUCKETS)  # jobs with a delay <= each bound
        self.delay_sum = 0.0
        self.delay_n = 0
        self._flavor: dict[str, str] = {}  # worker id -> flavor (a change names only the id)

    @classmethod
    def of(cls, jobs: Iterable[Job], workers: Iterable[Worker]) -> Tally:
        tally = cls()
        for job in jobs:
            tally.jobs[job.state.value] += 1
            tally._delay(transcoded_delay(job))
        for worker in workers:
            tally._flavor[worker.id] = worker.flavor.name
            tally.workers[(worker.state.value, worker.flavor.name)] += 1
        return tally

    @classmethod
    def of_stored(
        cls, counts: Mapping[str, int], delays: Iterable[float], workers: Iterable[Worker]
    ) -> Tally:
        """From what the store counted (``archive.summary``), without loading the jobs."""
        tally = cls.of((), workers)
        tally.jobs.update(counts)
        for delay in delays:
            tally._delay(delay)
        return tally

    def apply(
        self,
        changes: Iterable[Change],
        jobs: Mapping[str, Job],
        workers: Mapping[str, Worker],
    ) -> None:
        """A stored step's changes (``jobs``/``workers``: the controller's, after the step)."""
        for change in changes:
            previous, state = change.record["previous"], change.record["state"]
            if state == DELETED:
                continue  # counted out by ``forget``
            if change.kind == "job":
                if previous is not None:
                    self.jobs[previous] -= 1
                self.jobs[state] += 1
                job = jobs.get(change.id)
                if job is not None and state == JobState.COMPLETED.value:
                    self._delay(transcoded_delay(job))
            else:
                flavor = self._flavor.get(change.id)
                if flavor is None:
                    worker = workers.get(change.id)
                    flavor = self._flavor[change.id] = worker.flavor.name if worker else "?"
                if previous is not None:
                    self.workers[(previous, flavor)] -= 1
                self.workers[(state, flavor)] += 1

    def forget(self, jobs: Iterable[Job], workers: Iterable[Worker]) -> None:
        """Jobs and workers that retention deleted leave the counts (the delay histogram
        keeps them: it counts what happened)."""
        for job in jobs:
            self.jobs[job.state.value] -= 1
        for worker in workers:
            flavor = self._flavor.pop(worker.id, worker.flavor.name)
            self.workers[(worker.state.value, flavor)] -= 1

    def workers_in(self, state: str) -> int:
        return sum(n for (s, _), n in self.workers.items() if s == state)

    def _delay(self, delay: float | None) -> None:
        if delay is None:
            return
        self.delay_n += 1
        self.delay_sum += delay
        for i in range(bisect_left(DELAY_BUCKETS, delay), len(DELAY_BUCKETS)):
            self.delay_counts[i] += 1

    def delay_buckets(self) -> list[tuple[str, float]]:
        """Cumulative buckets as Prometheus wants them, ``+Inf`` last."""
        pairs = [
            (f"{b:g}", float(n)) for b, n in zip(DELAY_BUCKETS, self.delay_counts, strict=True)
        ]
        return [*pairs, ("+Inf", float(self.delay_n))]
