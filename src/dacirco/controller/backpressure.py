"""Backpressure: how many jobs may wait, and when a refused client should come back."""

from __future__ import annotations

import math
from itertools import islice
from typing import TYPE_CHECKING

from dacirco.controller.errors import QueueFull
from dacirco.domain import JobState, WorkerState

if TYPE_CHECKING:
    from dacirco.controller.core import Controller

RECENT_JOBS = 200  # the newest jobs looked at for the mean duration of a job
MAX_RETRY_AFTER = 300


def check_queue(c: Controller) -> None:
    """Refuse a new job (``QueueFull``, a 429) when ``max_queue`` jobs already wait, counting
    those being admitted right now; ``max_queue`` 0 is no limit."""
    limit = c.config.max_queue
    if limit <= 0:
        return
    queued = c.queued + c._admitting
    if queued >= limit:
        seconds = retry_after(c)
        raise QueueFull(
            f"the queue is full: {queued} jobs are waiting (--max-queue {limit}); "
            f"retry in {seconds} s",
            seconds,
        )


def retry_after(c: Controller) -> int:
    """An estimate, in whole seconds, of when a queue slot frees: the mean duration of the
    recent completed jobs shared by the workers that take jobs; without any completed job yet,
    the policy's call interval."""
    durations = []
    for job in islice(reversed(c.jobs.values()), RECENT_JOBS):
        t = job.timings
        if job.state == JobState.COMPLETED and "uploaded" in t and "assigned" in t:
            durations.append(t["uploaded"] - t["assigned"])
    if not durations:
        return max(1, math.ceil(c.config.call_interval))
    busy = sum(1 for w in c.workers.values() if w.state == WorkerState.BUSY)
    slots = max(1, busy or c.config.max_workers)
    mean = sum(durations) / len(durations)
    return min(MAX_RETRY_AFTER, max(1, math.ceil(mean / slots)))
