"""What the dashboard's pages show, computed from the controller: plain dicts for the
templates. Lists are paged and counts come from the controller's counters, so a page costs
the same with ten jobs or ten thousand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dacirco.api.schemas import JobPublic
from dacirco.controller.core import Controller
from dacirco.domain import FINAL_JOB_STATES, Job, JobState, Worker, WorkerState

PAGE = 50  # jobs per page, newest first


def job_row(job: Job, now: float) -> dict[str, Any]:
    ready = job.ready_at()
    if ready is not None:
        delay = ready - job.received_at
    elif job.state in FINAL_JOB_STATES:
        delay = None
    else:
        delay = now - job.received_at  # waiting so far
    return {
        "id": job.id,
        "movie": job.id_video,
        "bitrate": job.bitrate,
        "speed": job.speed.value,
        "codec": job.codec.value,
        "state": job.state.value,
        "progress": round(100 * job.progress),
        "priority": job.priority,
        "delay": None if delay is None else f"{delay:.1f}",
        "reused_from": job.reused_from,
        "final": job.state in FINAL_JOB_STATES,
    }


def worker_row(worker: Worker, usage: dict[str, Any]) -> dict[str, Any]:
    sample = usage.get(worker.id)
    return {
        "id": worker.id,
        "name": worker.name,
        "state": worker.state.value,
        "flavor": worker.flavor.name,
        "node": worker.node or "",
        "job": worker.job_id or "",
        "cpu": "" if sample is None else f"{sample.cpu_cores:.2f}",
        "memory": "" if sample is None else f"{sample.rss_gb:.2f}",
    }


def paging(c: Controller, page: int) -> tuple[int, int, int]:
    """Jobs in all (from the counters), pages of ``PAGE``, and ``page`` brought within them."""
    total = sum(c.tally.jobs.values())
    pages = max(1, -(-total // PAGE))
    return total, pages, min(max(0, page), pages - 1)


def overview(
    c: Controller, paged: tuple[int, int, int], now: float, shown: list[Job]
) -> dict[str, Any]:
    """The overview page: counts, capacity, live workers, one page of jobs (``shown``, newest
    first, read by the caller: finished jobs are in the store; ``paged``: from ``paging``)."""
    total, pages, page = paged
    usage = c.usage.workers if c.usage is not None else {}
    alive = [c.workers[w] for w in c.core.state.alive]
    nodes = c.runtime.nodes()
    capacity = sum(n.cpus for n in nodes)
    reserved = sum(w.flavor.cpus for w in alive)
    used = sum(getattr(usage.get(w.id), "cpu_cores", 0.0) for w in alive)
    return {
        "counts": {s.value: c.tally.jobs[s.value] for s in JobState},
        "total": total,
        "queue": c.queued,
        "policy": c.policy.name,
        "capacity": capacity,
        "reserved": reserved,
        "used": round(used, 2),
        "free": capacity - reserved,
        "workers": [worker_row(w, usage) for w in alive],
        "stopped": c.tally.workers_in(WorkerState.STOPPED.value),
        "jobs": [job_row(j, now) for j in shown],
        "page": page,
        "pages": pages,
        "last_seq": c.hub.last,
    }


def movies(c: Controller, cache: dict[str, Any]) -> list[str]:
    """The catalog's movies, for the submit form: a storage listing (run it in a thread),
    kept a minute in ``cache`` (the app's)."""
    cached = cache.get("movies")
    if cached is not None and c.clock() - cached[0] < 60:
        return cached[1]
    try:
        names = sorted(info.key.rsplit("/", 1)[-1] for info in c.storage.list("input-videos/"))
    except Exception:  # storage down: the form still takes a typed name
        names = []
    cache["movies"] = (c.clock(), names)
    return names


def timeline(job: JobPublic) -> dict[str, Any]:
    """The job page's lanes: its queue, then one lane per attempt (chunks as lanes of their
    own), each bar placed in percent of the job's whole span."""

    def t(value: str | None) -> float | None:
        return datetime.fromisoformat(value).timestamp() if value else None

    start = t(job.timings.received) or 0.0
    attempts = job.figures.attempts if job.figures else []
    ends = [t(a.ended) for a in attempts] + [t(job.timings.uploaded), t(job.timings.reused)]
    end = max([e for e in ends if e is not None] + [start + 0.001])
    span = end - start

    def bar(a: float | None, b: float | None, kind: str, label: str) -> dict[str, Any] | None:
        if a is None or b is None:
            return None
        left = 100 * (a - start) / span
        return {"left": round(left, 2), "width": round(max(0.5, 100 * (b - a) / span), 2),
                "kind": kind, "label": label}  # fmt: skip

    lanes = []
    first = min((t(a.assigned) for a in attempts), default=None)
    queue = bar(start, first or t(job.timings.reused), "queue", "queue")
    lanes.append({"name": "request", "bars": [b for b in [queue] if b]})
    for a in attempts:
        name = a.part if a.part != "chunk" else f"chunk {a.index}"
        if a.renditions:  # a part of a ladder: its renditions
            name = f"part {a.index}: {', '.join(a.renditions)}"
        elif a.part == "merge" and job.outputs:
            name = "packaging"
        begin, finish = t(a.assigned), t(a.ended) or end
        bars = [bar(begin, finish, a.state.lower(), f"{a.worker} ({a.state})")]
        lanes.append({"name": name, "bars": [b for b in bars if b], "attempt": a})
    return {"lanes": lanes, "seconds": round(span, 2)}
