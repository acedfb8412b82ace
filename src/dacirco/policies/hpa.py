"""hpa: Kubernetes' Horizontal Pod Autoscaler, the workers as the pods of one Deployment,
scaled on their CPU utilization.

Source: The Kubernetes Authors, "Horizontal Pod Autoscaling", Kubernetes documentation
(kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/: "Algorithm details",
"Configurable scaling behavior", "Default Behavior"), autoscaling/v2 API, Kubernetes 1.23 and
later.

What the documentation specifies, as done here:

- a control loop every ``sync_period`` (15 s, ``--horizontal-pod-autoscaler-sync-period``):
  ``desired = ceil(current * currentMetric / desiredMetric)``, with the metric the pods' mean
  CPU utilization (their usage over their request) and nothing done while the ratio is
  within ``tolerance`` (0.1) of 1;
- pods not yet ready (a booting worker) are set aside; when the ratio says "up" they are
  counted again at 0 % and the ratio recomputed: if it then says "down" or lies within the
  tolerance, nothing is done;
- scale-down stabilization (``downscale_window``, 300 s): the highest recommendation of the
  window is used; scale-up is immediate, limited per period to the larger of +100 % and
  +4 pods (the default ``scaleUp`` policies); scale-down by up to 100 % at once;
- ``maxReplicas``: as many workers as ``max_workers`` and the nodes' free room allow.

Assumed (DaCirco has no pods): a worker's CPU is used while it is busy (ffmpeg uses its
cores), not while idle, so the utilization is busy workers over ready workers, averaged
over the sync period as metrics-server reports a rate over its window (time-weighted from
the views: between two calls nothing changes). A deleted pod is killed; a busy worker
cannot be stopped, so the surplus is stopped as it becomes idle (a graceful drain). Booting
workers go first, then the newest idle (the ReplicaSet's deletion order). Queued jobs go to
idle workers, oldest first. ``minReplicas`` (1) would keep a worker for ever, and a run ends
only when every worker is stopped: by default the floor is 1 only while a request waits or
runs, 0 otherwise (``scale_to_zero``: Kubernetes' HPAScaleToZero with a second, "work
present" metric, as KEDA's ScaledObject activates a Deployment); the last worker then goes
a stabilization window after the last request; ``scale_to_zero=False`` keeps one always.

Its numbers above (``target``, ``tolerance``, ``sync_period``, ``downscale_window``,
``min_replicas``, ``up_percent``, ``up_pods``) are knobs (``--policy-knob``).

Memory: the utilization since the last sync, the desired count and the recommendations of
the stabilization window, all from the views seen. It acts at the first call at or after
each sync time and says so (``wake_at`` the next one), so skipping ticks changes nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from dacirco.domain import FLAVORS
from dacirco.policies.base import (
    ClusterView,
    Decisions,
    PolicyParams,
    StartWorker,
    StopWorker,
    WorkerView,
    register,
)
from dacirco.policies.common import fits, match_fifo


@dataclass
class Hpa:
    target: float = 0.8  # the autoscaling API's default target CPU utilization
    tolerance: float = 0.1
    sync_period: float = 15.0
    downscale_window: float = 300.0
    min_replicas: int = 1  # while a request waits or runs
    scale_to_zero: bool = True  # none otherwise (HPAScaleToZero, with an activation metric)
    up_percent: float = 100.0  # scale-up per period: +100 % or +4 pods, whichever is more
    up_pods: int = 4
    flavor: str = "small"
    name: str = "hpa"
    # The knobs ``--policy-knob`` may set (``policies/knobs.py``), each within its range.
    KNOBS: ClassVar[dict[str, tuple[float, float]]] = {
        # The utilization is busy over ready workers, at most 1 (0 would divide by 0); from
        # 1 / (1 + tolerance) up, it never asks for more workers: the floor alone starts them.
        "target": (0.01, 1.0),
        "tolerance": (0.0, 0.9),  # at 1 an all-idle ratio of 0 is "within": none would go
        "sync_period": (1.0, 600.0),
        "downscale_window": (0.0, 3600.0),
        "min_replicas": (1, 100),  # 0: a request with no worker would never get one
        "up_percent": (0.0, 1000.0),
        "up_pods": (1, 100),  # 0 (with no worker alive): no scale-up ever, +0 % of 0
    }
    # ---- memory, from the views seen ------------------------------------------------------
    spec: int | None = field(default=None, init=False)  # the desired count (the Deployment's)
    _recs: deque[tuple[float, int]] = field(default_factory=deque, init=False, repr=False)
    _next_sync: float = field(default=-math.inf, init=False, repr=False)
    _synced_at: float | None = field(default=None, init=False, repr=False)
    _since: float | None = field(default=None, init=False, repr=False)  # the window's start
    _area: float = field(default=0.0, init=False, repr=False)  # busy workers x seconds
    _last: tuple[float, int] | None = field(default=None, init=False, repr=False)

    def decide(self, view: ClusterView) -> Decisions:
        now = view.now
        if self._last is not None:  # busy workers since the last call, unchanged until now
            self._area += (now - self._last[0]) * self._last[1]
        assign, _, still_idle = match_fifo(view)
        busy = len(view.busy) + len(assign)
        if self._synced_at == now or now >= self._next_sync:  # (again: the same view)
            if self._synced_at != now:
                self._sync(view, busy, len(still_idle))
            self._synced_at = now
            self._next_sync = (math.floor(now / self.sync_period) + 1) * self.sync_period
        spec = self.spec if self.spec is not None else len(view.workers)
        start, stop = self._reconcile(view, spec, still_idle)
        self._last = (now, busy)
        return Decisions(start=start, stop=stop, assign=assign, wake_at=self._next_sync)

    # ---- the control loop ------------------------------------------------------------------
    def _sync(self, view: ClusterView, busy: int, idle: int) -> None:
        now = view.now
        current = self.spec if self.spec is not None else len(view.workers)
        span = now - self._since if self._since is not None else 0.0
        mean_busy = self._area / span if span > 0 else float(busy)
        self._since, self._area = now, 0.0
        # The activation metric: one replica at least while a request waits or runs.
        floor = self.min_replicas if (view.waiting_count or busy or not self.scale_to_zero) else 0
        cpu = self.recommend(current, mean_busy, busy + idle, len(view.booting))
        raw = max(current, floor) if cpu is None else max(cpu, floor)  # missing: no scale-down
        most = len(view.workers) + min(view.room, fits(view, FLAVORS[self.flavor]))
        least = 0 if self.scale_to_zero else self.min_replicas
        self.spec = self.stabilize(now, current, raw, least, max(least, most))

    def recommend(self, current: int, mean_busy: float, ready: int, booting: int) -> int | None:
        """The replica count the CPU utilization asks for (the documentation's algorithm);
        None without a ready pod (no metric)."""
        if ready == 0:
            return None
        ratio = mean_busy / ready / self.target
        if ratio > 1 and booting:  # not-yet-ready pods at 0 %, scale up only if still "up"
            ready += booting
            ratio = mean_busy / ready / self.target
            if ratio <= 1:
                return current
        if abs(ratio - 1) <= self.tolerance:
            return current
        return math.ceil(ratio * ready)

    def stabilize(self, now: float, current: int, raw: int, least: int, most: int) -> int:
        """Scale-up at once (rate-limited), scale-down to the highest recommendation of the
        window; within ``least`` .. ``most``."""
        recs = self._recs
        while recs and recs[0][0] <= now - self.downscale_window:
            recs.popleft()
        highest = max([raw, *(r for _, r in recs)])  # the window's, this one included
        recs.append((now, raw))
        new = current
        if raw > current:
            limit = max(current + self.up_pods, math.ceil(current * (1 + self.up_percent / 100)))
            new = min(raw, limit)
        else:
            new = min(current, highest)
        return max(least, min(new, most))

    # ---- the Deployment's controller -------------------------------------------------------
    def _reconcile(
        self, view: ClusterView, spec: int, still_idle: tuple[WorkerView, ...]
    ) -> tuple[tuple[StartWorker, ...], tuple[StopWorker, ...]]:
        alive = len(view.workers)
        if alive < spec:
            n = min(spec - alive, view.room, fits(view, FLAVORS[self.flavor]))
            return tuple(StartWorker(self.flavor) for _ in range(max(0, n))), ()
        excess = alive - spec
        if excess <= 0:
            return (), ()
        # Not ready first, then the newest; a busy worker goes once idle (a graceful drain).
        order = sorted(view.booting, key=lambda w: (-w.created_at, w.id))
        order += sorted(still_idle, key=lambda w: (-w.created_at, w.id))
        why = f"scaled down to {spec}"
        return (), tuple(StopWorker(w.id, why) for w in order[:excess])


@register("hpa")
def _make(params: PolicyParams) -> Hpa:
    return Hpa(flavor=params.flavor)
