"""keda-scaledjob: KEDA's ScaledJob, one Kubernetes Job (a fresh worker) per queued request.

Source: The KEDA Authors, "Scaling Jobs" and "ScaledJob specification", KEDA documentation
(keda.sh/docs/2.16/concepts/scaling-jobs/, keda.sh/docs/2.16/reference/scaledjob-spec/),
KEDA 2.16, 2024.

What the documentation specifies, as done here:

- "for each detected event a single Kubernetes Job is scheduled. That job will initialize,
  pull a single event from the message source, and process to completion and terminate":
  a worker is started for a request, takes one request from the queue once it has booted,
  and is stopped when that request is done; no worker is ever reused;
- the queue is checked every ``polling_interval`` (30 s): jobs are created at the polls only;
- the ``accurate`` scaling strategy, the one the documentation recommends when the queue
  length does not count the messages already taken (DaCirco's queue holds only waiting
  requests): ``maxScale = min(maxReplicaCount, ceil(queueLength / targetAverageValue))``,
  then ``maxReplicaCount - runningJobCount`` new jobs if ``maxScale + runningJobCount``
  exceeds ``maxReplicaCount``, else ``maxScale - pendingJobCount``;
- ``maxReplicaCount`` (100) bounds the jobs running at once.

Assumed: ``targetAverageValue`` is 1 (one request a job); a running job is a worker that is
booting, busy or booted and not yet given its request; a pending job a booting worker; the
polls fall on multiples of ``polling_interval`` (as a controller started at time 0); new
workers are also bounded by ``max_workers`` and the nodes' room; a worker booted when no
request is left (one taken by another) exits at once, as a Job finding the queue empty.

``polling_interval`` and ``max_replica_count`` are knobs (``--policy-knob``).

Memory: the workers given a request (and when), and the last poll, from the views seen.
It acts at the first call at or after a poll time that has work to do, and says so
(``wake_at`` the next poll while requests are not covered), so skipping ticks changes
nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    Assign,
    ClusterView,
    Decisions,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.common import fits


@dataclass
class KedaScaledJob:
    polling_interval: float = 30.0
    max_replica_count: int = 100
    flavor: str = "small"
    name: str = "keda-scaledjob"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        "polling_interval": (1.0, 600.0),
        "max_replica_count": (1, 10_000),  # 0: no job would ever be created
    }
    # ---- memory, from the views seen ------------------------------------------------------
    _given: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _last_call: float | None = field(default=None, init=False, repr=False)
    _uncovered: bool = field(default=False, init=False, repr=False)  # after the last call
    _polled: float = field(default=-math.inf, init=False, repr=False)  # the last poll's time
    _poll_call: float | None = field(default=None, init=False, repr=False)

    def ran(self, w: WorkerView, now: float) -> bool:
        """The worker was given its request before this call and is idle again: done."""
        at = self._given.get(w.id)
        return at is not None and at < now and (w.idle_since is None or w.idle_since >= at)

    def decide(self, view: ClusterView) -> Decisions:
        now = view.now
        fresh = sorted(
            (w for w in view.idle if not self.ran(w, now)),
            key=lambda w: (w.idle_since or 0.0, w.id),
        )
        n = min(len(fresh), view.waiting_count)
        assign = tuple(Assign(j.id, w.id) for j, w in zip(view.waiting[:n], fresh[:n], strict=True))
        for a in assign:
            self._given[a.worker_id] = now
        # Done with its request, or booted when none was left: the Job completes.
        stop = tuple(
            StopWorker(w.id, "job done" if self.ran(w, now) else "queue empty")
            for w in view.idle
            if w.id not in self._given or self.ran(w, now)
        )
        queue = view.waiting_count - n
        pending = len(view.booting)
        running = len(view.workers) - len(stop)
        start: tuple[StartWorker, ...] = ()
        grid = math.floor(now / self.polling_interval) * self.polling_interval
        if self._poll_due(now, grid):
            self._polled, self._poll_call = grid, now
            count = self.jobs_to_create(queue, running, pending)
            count = min(count, view.room, fits(view, FLAVORS[self.flavor]))
            start = tuple(StartWorker(self.flavor) for _ in range(max(0, count)))
        self._uncovered = queue - pending - len(start) > 0
        self._last_call = now
        self._forget(view)
        wake = grid + self.polling_interval if self._uncovered else math.inf
        return Decisions(start=start, stop=stop, assign=assign, wake_at=wake)

    def jobs_to_create(self, queue: int, running: int, pending: int) -> int:
        """The ``accurate`` strategy (targetAverageValue 1)."""
        max_scale = min(self.max_replica_count, queue)
        if max_scale + running > self.max_replica_count:
            return max(0, self.max_replica_count - running)
        return max(0, max_scale - pending)

    def _poll_due(self, now: float, grid: float) -> bool:
        if self._last_call is None or self._poll_call == now:  # the first call; the same view
            return True
        if grid <= self._polled:
            return False
        if self._last_call < grid and not self._uncovered:
            # The poll at ``grid`` found every request covered; this call comes after it.
            self._polled = grid
            return False
        return True

    def _forget(self, view: ClusterView) -> None:
        if len(self._given) > 2 * len(view.workers) + 64:
            alive = {w.id for w in view.workers}
            self._given = {k: v for k, v in self._given.items() if k in alive}


@register("keda-scaledjob")
def _make(params: PolicyParams) -> KedaScaledJob:
    return KedaScaledJob(flavor=params.flavor)
