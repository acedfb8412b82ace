"""The figures of a run, one definition for real and simulated runs (docs/metrics.md).

- delay = uploaded - received, over completed jobs (failed and unfinished ones counted apart);
- queueing = assigned - received of the attempt that completed (SPEC §6 timediff_assigned);
- boot = registered - created;
- reserved core-seconds = sum over workers of vCPUs * (destroyed - created), boot included; a worker
  still alive at the end counts until the end of the run; idle core-seconds = the part of
  it with no task; memory likewise in GB-seconds;
- utilization = a quantity over the nodes' capacity, as a time series; its average and p95
  are weighted by time. "Used" comes from the samples when the run has them (what the
  workers' process trees really used), else from busy workers (a busy worker uses its cores:
  the simulator's model).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

from dacirco.analytics.run import RunData, WorkerSpan
from dacirco.analytics.samples import Series


@dataclass(frozen=True)
class Stats:
    n: int = 0
    avg: float = math.nan
    p95: float = math.nan
    max: float = math.nan


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stats(values: Iterable[float | None]) -> Stats:
    vals = [v for v in values if v is not None]
    if not vals:
        return Stats()
    return Stats(len(vals), sum(vals) / len(vals), percentile(vals, 95), max(vals))


@dataclass(frozen=True)
class Step:
    """A piecewise-constant function of time: ``values[i]`` holds on [times[i], times[i+1])."""

    times: tuple[float, ...]
    values: tuple[float, ...]


def step_function(
    intervals: Iterable[tuple[float, float, float]], start: float, end: float
) -> Step:
    """The sum of ``value`` over the intervals ``[t0, t1)`` that cover each instant."""
    changes: dict[float, float] = defaultdict(float)
    for t0, t1, value in intervals:
        if start > t0:
            t0 = start
        if end < t1:
            t1 = end
        if t1 > t0:
            changes[t0] += value
            changes[t1] -= value
    return _from_changes(changes, sorted(changes), start)


def _step_pair(
    intervals: Iterable[tuple[float, float, float, float]], start: float, end: float
) -> tuple[Step, Step]:
    """:func:`step_function` of the first and of the second values of the same intervals."""
    first: dict[float, float] = defaultdict(float)
    second: dict[float, float] = defaultdict(float)
    for t0, t1, a, b in intervals:
        if start > t0:
            t0 = start
        if end < t1:
            t1 = end
        if t1 > t0:
            first[t0] += a
            first[t1] -= a
            second[t0] += b
            second[t1] -= b
    keys = sorted(first)
    return _from_changes(first, keys, start), _from_changes(second, keys, start)


def _from_changes(changes: dict[float, float], keys: list[float], start: float) -> Step:
    levels = list(accumulate([changes[t] for t in keys], initial=0.0))
    if keys and keys[0] == start:
        return Step((start, *keys[1:]), tuple(levels[1:]))
    return Step((start, *keys), tuple(levels))


def weighted(step: Step, end: float, scale: float = 1.0) -> Stats:
    """Time-weighted average, p95 and max of ``step / scale`` up to ``end``."""
    if scale <= 0 or not step.times or end <= step.times[0]:
        return Stats()
    times = step.times
    spans = [
        (v / scale, t1 - t)
        for t, t1, v in zip(times, (*times[1:], end), step.values, strict=True)
        if t1 > t
    ]
    total = sum([d for _, d in spans])
    avg = sum([v * d for v, d in spans]) / total
    by_value: dict[float, list[float]] = defaultdict(list)
    for v, d in spans:
        by_value[v].append(d)
    threshold = 0.95 * total
    acc, p95 = 0.0, spans[-1][0]
    for v in sorted(by_value):
        acc = list(accumulate(sorted(by_value[v]), initial=acc))[-1]
        if acc >= threshold:
            p95 = v
            break
    return Stats(len(spans), avg, p95, max(by_value))


def life(w: WorkerSpan, run: RunData) -> tuple[float, float]:
    return w.created, w.destroyed if w.destroyed is not None else run.end


def busy_seconds(w: WorkerSpan, run: RunData) -> float:
    """Seconds of the worker's life with a task (overlapping intervals counted once)."""
    begin, finish = life(w, run)
    total, reach = 0.0, begin
    for t0, t1 in sorted(w.busy):
        t0, t1 = max(t0, reach), min(t1, finish)
        if t1 > t0:
            total += t1 - t0
            reach = t1
    return total


def reserved_cores(run: RunData) -> Step:
    return step_function(((*life(w, run), w.cpus) for w in run.workers), run.start, run.end)


def reserved_memory(run: RunData) -> Step:
    return step_function(((*life(w, run), w.memory_gb) for w in run.workers), run.start, run.end)


def busy_cores(run: RunData) -> Step:
    return step_function(
        ((t0, t1, w.cpus) for w in run.workers for t0, t1 in w.busy), run.start, run.end
    )


def busy_memory(run: RunData) -> Step:
    return step_function(
        ((t0, t1, w.memory_gb) for w in run.workers for t0, t1 in w.busy), run.start, run.end
    )


MAX_SAMPLE_GAP = 10.0  # seconds: a longer gap between two samples means nothing ran between


def _summed(series: dict[str, Series], run: RunData) -> Step:
    """Per-second sum of the series. A sample measures the interval since the previous one of
    its series, so it stands for every second of that interval (up to ``MAX_SAMPLE_GAP``);
    seconds no sample covers count 0 (the source was not running)."""
    per_second: dict[int, float] = defaultdict(float)
    for s in series.values():
        buckets: dict[int, list[float]] = defaultdict(list)
        before: float | None = None
        for t, v in zip(s.times, s.values, strict=True):
            start = int(t) if before is None or t - before > MAX_SAMPLE_GAP else int(before) + 1
            for second in range(start, int(t) + 1):
                buckets[second].append(v)
            before = t
        for second, vals in buckets.items():
            per_second[second] += sum(vals) / len(vals)
    first, last = int(run.start), int(run.end)
    times = tuple(float(s) for s in range(first, last + 1))
    return Step(times, tuple(per_second.get(s, 0.0) for s in range(first, last + 1)))


def used_cores(run: RunData) -> tuple[Step, str]:
    """What the workers used, from the samples when there are some, else busy cores."""
    if run.samples is not None and run.samples.worker_cpu_cores:
        return _summed(run.samples.worker_cpu_cores, run), "samples"
    return busy_cores(run), "busy workers"


def used_memory(run: RunData) -> tuple[Step, str]:
    if run.samples is not None and run.samples.worker_rss_gb:
        return _summed(run.samples.worker_rss_gb, run), "samples"
    return busy_memory(run), "busy workers"


@dataclass(frozen=True)
class Figures:
    label: str
    jobs: int
    completed: int
    failed: int
    unfinished: int
    delay: Stats
    queueing: Stats
    boot: Stats
    workers: int
    duration: float
    capacity_cpus: float
    capacity_memory_gb: float
    reserved_core_seconds: float
    idle_core_seconds: float
    busy_core_seconds: float
    reserved_gb_seconds: float
    reserved_cpu_util: Stats  # reserved cores / capacity
    cpu_util: Stats  # used cores / capacity
    ram_util: Stats  # used memory / capacity
    used_source: str  # "samples" or "busy workers"
    node_cpu_util: Stats | None  # the machines' own CPU %, from node samples (real runs)
    canceled: int = 0  # by their clients: counted apart, like failed ones
    reused: int = 0  # completed with an identical job's output: no work, counted apart
    reused_delay: Stats | None = None


def figures(run: RunData) -> Figures:
    done = [j for j in run.jobs if j.state == "Completed" and j.uploaded is not None]
    reused = [j for j in done if j.reused_from is not None]
    done = [j for j in done if j.reused_from is None]  # the scheduler's figures: work done
    reserved = sum(w.cpus * (life(w, run)[1] - w.created) for w in run.workers)
    busy = sum(w.cpus * busy_seconds(w, run) for w in run.workers)
    samples = run.samples
    if (samples is None or not samples.worker_cpu_cores) and (
        samples is None or not samples.worker_rss_gb
    ):
        busy_pair = ((t0, t1, w.cpus, w.memory_gb) for w in run.workers for t0, t1 in w.busy)
        used_c, used_m = _step_pair(busy_pair, run.start, run.end)
        source = "busy workers"
    else:
        used_c, source = used_cores(run)
        used_m, _ = used_memory(run)
    node_util = None
    if run.samples is not None and run.samples.node_cpu_percent:
        merged = _summed(run.samples.node_cpu_percent, run)
        node_util = weighted(merged, run.end, 100.0 * len(run.samples.node_cpu_percent))
    return Figures(
        label=run.label,
        jobs=len(run.jobs),
        completed=len(done),
        failed=sum(1 for j in run.jobs if j.state == "Error"),
        canceled=sum(1 for j in run.jobs if j.state == "Canceled"),
        reused=len(reused),
        reused_delay=stats(j.delay for j in reused),
        unfinished=sum(1 for j in run.jobs if j.state in ("Waiting", "Started")),
        delay=stats(j.delay for j in done),
        queueing=stats(None if j.assigned is None else j.assigned - j.received for j in done),
        boot=stats(None if w.registered is None else w.registered - w.created for w in run.workers),
        workers=len(run.workers),
        duration=run.duration,
        capacity_cpus=run.capacity_cpus,
        capacity_memory_gb=run.capacity_memory_gb,
        reserved_core_seconds=reserved,
        idle_core_seconds=reserved - busy,
        busy_core_seconds=busy,
        reserved_gb_seconds=sum(w.memory_gb * (life(w, run)[1] - w.created) for w in run.workers),
        reserved_cpu_util=weighted(reserved_cores(run), run.end, run.capacity_cpus),
        cpu_util=weighted(used_c, run.end, run.capacity_cpus),
        ram_util=weighted(used_m, run.end, run.capacity_memory_gb),
        used_source=source,
        node_cpu_util=node_util,
    )


def reused_summary(f: Figures) -> str:
    """How many jobs got an identical job's output, and how long they waited for it."""
    if not f.reused or f.reused_delay is None:
        return str(f.reused)
    return f"{f.reused}, delay avg {f.reused_delay.avg:.1f} s"
