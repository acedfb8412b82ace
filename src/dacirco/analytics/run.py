"""A run as plain numbers: the workers' lives, the jobs' steps, the nodes' capacity, samples.

Both a real run (its event log, config and samples, see ``from_log``) and a simulated run
become a ``RunData``; every figure (``dacirco.analytics.figures``) is computed from it, so the
real controller and the simulator are measured by one definition. Times are seconds on one
clock (epoch seconds for a real run, simulated seconds for a simulated one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dacirco.analytics.logs import COMPLETED, ParsedLog, parse_log, parse_time
from dacirco.analytics.samples import Samples, read_samples, samples_path
from dacirco.domain import FLAVORS


@dataclass(frozen=True)
class NodeCapacity:
    name: str
    cpus: float
    memory_gb: float


@dataclass
class WorkerSpan:
    """One worker, from its creation (EV2) to its destruction (EV8); reserved all along."""

    worker_id: str
    name: str
    cpus: float  # reserved vCPUs (the flavor's)
    memory_gb: float  # reserved memory (the flavor's)
    created: float
    registered: float | None = None
    destroyed: float | None = None  # None: still alive when the run ended
    node: str | None = None
    flavor: str | None = None
    lost: bool = False
    busy: list[tuple[float, float]] = field(default_factory=list)  # [start, end) with a task


@dataclass(slots=True)  # one per request of a run: kept small
class JobSpan:
    """One request; ``uploaded`` is set only when it completed (its EV7, or its EV19 when it
    got an identical job's output: ``reused_from`` names that job, and no worker worked for
    it, so the figures count it apart)."""

    job_id: str
    received: float
    movie: str = ""
    bitrate: int = 0
    speed: str = ""
    state: str = "Waiting"  # Waiting, Started, Completed or Error
    assigned: float | None = None  # of the attempt that completed (else of the last attempt)
    started: float | None = None
    downloaded: float | None = None
    transcoded: float | None = None
    uploaded: float | None = None
    worker_id: str | None = None
    attempts: int = 0
    reused_from: str | None = None
    quality: list[dict[str, Any]] = field(default_factory=list)  # EV21: one per rendition

    @property
    def delay(self) -> float | None:
        return None if self.uploaded is None else self.uploaded - self.received


@dataclass
class RunData:
    label: str
    start: float
    end: float
    nodes: list[NodeCapacity]
    workers: list[WorkerSpan]
    jobs: list[JobSpan]
    samples: Samples | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # the run's parameters (config file)

    @property
    def capacity_cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)

    @property
    def capacity_memory_gb(self) -> float:
        return sum(n.memory_gb for n in self.nodes)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


def _t(value: str | None) -> float | None:
    return None if value is None else parse_time(value).timestamp()


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def read_config(log: Path) -> dict[str, Any]:
    """The run's parameters from ``X.config.txt`` beside ``X.txt`` ({} if missing or bad)."""
    path = Path(log).with_name(Path(log).stem + ".config.txt")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _nodes(meta: dict[str, Any], workers: list[WorkerSpan]) -> list[NodeCapacity]:
    """Capacity from the config's ``nodes``; else, one node per seen node, sized by its workers."""
    nodes = []
    for item in meta.get("nodes") or []:
        if isinstance(item, dict) and "name" in item:
            nodes.append(
                NodeCapacity(
                    str(item["name"]),
                    _num(item.get("cpus"), 0.0),
                    _num(item.get("memory_gb"), 0.0),
                )
            )
    if nodes:
        return nodes
    # The most the workers of each node reserved at once.
    changes: dict[str, list[tuple[float, float, float]]] = {}
    for w in workers:
        end = w.destroyed if w.destroyed is not None else float("inf")
        changes.setdefault(w.node or "?", []).extend(
            [(w.created, w.cpus, w.memory_gb), (end, -w.cpus, -w.memory_gb)]
        )
    out = []
    for name, steps in changes.items():
        cpus = mem = peak_cpus = peak_mem = 0.0
        for _, dc, dm in sorted(steps, key=lambda s: (s[0], s[1])):  # ends before starts
            cpus, mem = cpus + dc, mem + dm
            peak_cpus, peak_mem = max(peak_cpus, cpus), max(peak_mem, mem)
        out.append(NodeCapacity(name, peak_cpus, peak_mem))
    return out


def from_parsed(parsed: ParsedLog, meta: dict[str, Any] | None = None) -> RunData:
    """A ``RunData`` from a parsed event log; a crashed run's open spans end at its last event."""
    meta = meta or {}
    default = FLAVORS.get(str(meta.get("flavor", "small")), FLAVORS["small"])
    start, end = _t(parsed.first_time) or 0.0, _t(parsed.last_time) or 0.0
    workers: dict[str, WorkerSpan] = {}
    for w in parsed.workers.values():
        flavor = FLAVORS.get(str(w.flavor)) if w.flavor else None
        cpus = flavor.cpus if flavor else _num(w.cpus, default.cpus)
        memory = flavor.memory_gb if flavor else _num(w.memory, default.memory_gb)
        created = _t(w.time_created) or _t(w.time_registered) or start
        workers[w.worker_id] = WorkerSpan(
            worker_id=w.worker_id,
            name=w.name or w.worker_id,
            cpus=cpus,
            memory_gb=memory,
            created=created,
            registered=_t(w.time_registered),
            destroyed=_t(w.time_destroyed),
            node=None if w.node is None else str(w.node),
            flavor=flavor.name if flavor else None,
            lost=w.lost_reason is not None,
        )
    jobs = []
    for r in parsed.requests.values():
        received = _t(r.time_received)
        if received is None:
            continue  # its EV1 is not in this log: nothing to measure from
        ok = r.ok_attempt
        span = JobSpan(
            job_id=r.request_id,
            received=received,
            movie=str(r.input_video or ""),
            bitrate=int(_num(r.bitrate, 0)),
            speed=str(r.speed or ""),
            state=r.state,
            attempts=len(r.attempts),
            quality=list(r.quality),
        )
        jobs.append(span)
        if ok is None and r.reused_from and r.state == COMPLETED:
            span.uploaded, span.reused_from = _t(r.time_reused), r.reused_from
            continue  # served with another request's output: no attempt of its own
        attempt = ok or (r.attempts[-1] if r.attempts else None)
        times_of = attempt.times if attempt else {}
        span.assigned = _t(times_of.get("assigned"))
        if r.chunks:  # a split job starts with its first chunk; its ok attempt is the merge
            firsts = [_t(a.times.get("assigned")) for a in r.attempts]
            span.assigned = min((t for t in firsts if t is not None), default=span.assigned)
        span.started = _t(times_of.get("started"))
        span.downloaded = _t(times_of.get("file_downloaded"))
        span.transcoded = _t(times_of.get("transcoding_done"))
        if r.state == COMPLETED:
            span.uploaded = _t(times_of.get("file_uploaded"))
        span.worker_id = attempt.worker_id if attempt else None
        for a in r.attempts:
            worker = workers.get(str(a.worker_id))
            begin = _t(a.times.get("assigned"))
            if worker is None or begin is None:
                continue
            finish = _t(a.times.get("file_uploaded")) or _t(a.ended) or worker.destroyed or end
            worker.busy.append((begin, max(begin, finish)))
    samples = read_samples(samples_path(parsed.path))
    return RunData(
        label=parsed.path.stem,
        start=start,
        end=end,
        nodes=_nodes(meta, list(workers.values())),
        workers=list(workers.values()),
        jobs=jobs,
        samples=samples,
        meta=meta,
    )


def from_log(path: Path) -> RunData:
    """The log at ``path`` with its config and samples (raises OSError, NotAnEventLog)."""
    return from_parsed(parse_log(path), read_config(path))
