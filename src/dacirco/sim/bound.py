"""Clairvoyant lower bounds for a workload on a data center: no policy can do better.

For job ``j`` and a flavor ``f`` of ``c_f`` cores that fits on some node, let ``p_jf`` be the
job's service time on a ready worker of that flavor (dispatch + download + transcode +
upload, with the job's own noise draw: exactly what the simulator would charge).

- **delay**: a job cannot be done sooner than its arrival plus ``p_j = min_f p_jf`` (a worker
  already booted and idle, of the fastest flavor, waiting for it). So each delay is at least
  ``p_j``; the average delay at least their mean, and the p95 of delays at least the p95 of
  the ``p_j`` (order statistics are monotone).
- **reserved core-seconds**: a worker reserves its cores at least while it serves the job, so
  the total is at least ``Σ_j w_j`` with ``w_j = min_f c_f p_jf`` (the cheapest flavor for it:
  more cores are not used linearly). Idle core-seconds are at least 0.
- **a tighter delay bound** (offline, capacity-aware): think of the whole data center as one
  machine of ``C`` cores that may share itself among jobs at will (preemption, no memory or
  ``max_workers`` limit), job ``j`` needing ``w_j`` core-seconds. Any real schedule can be
  mimicked on it with every job finishing no later (run job ``j`` at ``w_j / p_jf`` cores while
  it runs on flavor ``f``: at most ``c_f``, so at most ``C`` in all), and on one preemptive
  machine shortest-remaining-work-first minimizes the total flow time. So the average delay
  is at least the SRPT average on that machine: ``max`` of the two averages is a bound. It
  bites when the load is high (queues cannot be avoided); at low load ``mean p_j`` wins.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dacirco.analytics.figures import percentile
from dacirco.domain import FLAVORS, Flavor
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.workload import SimJob, transcode_s


@dataclass(frozen=True)
class Bound:
    jobs: int
    delay_avg: float  # max(mean p_j, SRPT average)
    delay_p95: float
    delay_avg_ready: float  # mean p_j: each job alone on a ready worker
    delay_avg_srpt: float  # the pooled-capacity SRPT relaxation
    reserved_core_seconds: float
    flavors: tuple[str, ...]  # the flavors considered (those that fit on a node)


def eligible_flavors(datacenter: DataCenter) -> list[Flavor]:
    return [f for f in FLAVORS.values() if datacenter.holds(f) >= 1]


def srpt_flows(arrivals: Sequence[float], works: Sequence[float], speed: float) -> list[float]:
    """Flow times (completion - arrival) of preemptive shortest-remaining-work-first on one
    machine of ``speed`` work units per second; ``arrivals`` sorted."""
    flows = [0.0] * len(arrivals)
    heap: list[tuple[float, int]] = []  # (remaining work, job index)
    t = arrivals[0] if arrivals else 0.0

    def run_until(limit: float) -> float:
        now = t
        while heap and now < limit:
            remaining, j = heap[0]
            finish = now + remaining / speed
            if finish <= limit:
                heapq.heappop(heap)
                now = finish
                flows[j] = now - arrivals[j]
            else:
                heapq.heapreplace(heap, (remaining - (limit - now) * speed, j))
                now = limit
        return max(now, limit)

    for j, (r, w) in enumerate(zip(arrivals, works, strict=True)):
        t = run_until(r)
        heapq.heappush(heap, (w, j))
    run_until(float("inf"))
    return flows


def lower_bound(
    jobs: Sequence[SimJob], models: Models, datacenter: DataCenter, split: bool = False
) -> Bound:
    """With ``split``, a job may also be encoded in chunks on every core at once: its delay
    is then at least its transfers plus its cheapest encoding core-seconds spread over all
    the data center's cores (no chunk overhead, no merge)."""
    flavors = eligible_flavors(datacenter)
    if not jobs or not flavors:
        nan = float("nan")
        return Bound(len(jobs), nan, nan, nan, nan, 0.0, tuple(f.name for f in flavors))
    ready, works = [], []
    cpus = datacenter.cpus  # a sum over the nodes: once, not once per job
    cores = [f.cpus for f in flavors]
    transcode = models.transcode.seconds
    by_bitrate = models.transcode.reads_bitrate  # else one entry per movie, whatever its bitrate
    bases: dict[tuple[int, str, str, int, int | None], list[tuple[int, float]]] = {}
    for job in jobs:
        key = (
            id(job.movie),
            job.codec,
            job.speed,
            id(job.ladder),
            job.bitrate if by_bitrate else None,
        )
        per_flavor = bases.get(key)
        if per_flavor is None:
            if job.ladder is not None:  # its encoding step without the job's own noise
                one = replace(job, noise=1.0)
                per_flavor = bases[key] = [(c, transcode_s(one, models, c)) for c in cores]
            else:
                per_flavor = bases[key] = [
                    (c, transcode(job.movie, job.codec, job.speed, c, key[4])) for c in cores
                ]
        noise, up = job.noise, job.upload_s
        head = job.dispatch_s + job.download_s
        best = work = encode = math.inf
        for c, base in per_flavor:
            alone = base * noise
            p = head + alone + up
            if p < best:
                best = p
            if c * p < work:
                work = c * p
            if c * alone < encode:
                encode = c * alone
        if split:
            best = min(best, head + up + encode / cpus)
        ready.append(best)
        works.append(work)
    srpt = srpt_flows([j.arrival for j in jobs], works, float(cpus))
    mean_ready = sum(ready) / len(ready)
    mean_srpt = sum(srpt) / len(srpt)
    return Bound(
        jobs=len(jobs),
        delay_avg=max(mean_ready, mean_srpt),
        delay_p95=percentile(ready, 95),
        delay_avg_ready=mean_ready,
        delay_avg_srpt=mean_srpt,
        reserved_core_seconds=sum(works),
        flavors=tuple(f.name for f in flavors),
    )
