"""``GET /metrics``: the controller's state in the Prometheus text format (prometheus-client).

Every value is read from the controller when scraped (a custom collector): counts from its
``Tally`` (moved by the same stored changes as the event streams, so they agree with the API),
sums over live workers only; no scrape reads every job, so it costs the same with ten jobs
or a hundred thousand.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from dacirco.controller.core import Controller
from dacirco.domain import FLAVORS, JobState, WorkerState

router = APIRouter(tags=["metrics"])


class ControllerCollector(Collector):
    def __init__(self, controller: Controller) -> None:
        self.c = controller

    def collect(self) -> Iterator[Metric]:
        c = self.c
        tally = c.tally
        jobs = GaugeMetricFamily("dacirco_jobs", "Jobs by state", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], tally.jobs[state.value])
        yield jobs
        yield GaugeMetricFamily("dacirco_queue_length", "Jobs waiting for a worker", value=c.queued)
        workers = GaugeMetricFamily(
            "dacirco_workers", "Workers by state and flavor", labels=["state", "flavor"]
        )
        for state in WorkerState:
            for flavor in FLAVORS:
                workers.add_metric([state.value, flavor], tally.workers[(state.value, flavor)])
        yield workers
        hist = HistogramMetricFamily(
            "dacirco_job_delay_seconds", "Request to uploaded output, transcoded jobs"
        )
        hist.add_metric([], tally.delay_buckets(), tally.delay_sum)
        yield hist
        alive = [c.workers[w] for w in c.core.state.alive]
        nodes = c.runtime.nodes()
        usage = c.usage.workers if c.usage is not None else {}
        for name, doc, value in (
            ("reserved_cores", "vCPUs reserved by live workers", sum(w.flavor.cpus for w in alive)),
            (
                "reserved_memory_gb",
                "Memory reserved by live workers",
                sum(w.flavor.memory_gb for w in alive),
            ),
            ("used_cores", "Cores the workers use (latest samples)", _used(usage, "cpu_cores")),
            ("used_memory_gb", "RSS of the workers (latest samples)", _used(usage, "rss_gb")),
            ("capacity_cores", "vCPUs of the runtime's nodes", sum(n.cpus for n in nodes)),
            (
                "capacity_memory_gb",
                "Memory of the runtime's nodes",
                sum(n.memory_gb for n in nodes),
            ),
        ):
            yield GaugeMetricFamily(f"dacirco_{name}", doc, value=value)
        if c.retention is not None:
            yield from _retention(c)
        if c.usage is not None and c.usage.node is not None:
            yield GaugeMetricFamily(
                "dacirco_node_cpu_percent",
                "CPU of the controller's machine, all cores (0-100)",
                value=c.usage.node["cpu_percent"],
            )


def _retention(c: Controller) -> Iterator[Metric]:
    retention = c.retention
    assert retention is not None
    totals = retention.totals
    for name, doc, value in (
        ("retention_sweeps", "Retention sweeps run", retention.sweeps),
        ("retention_deleted_jobs", "Finished jobs deleted by retention", totals.jobs),
        ("retention_deleted_workers", "Stopped workers deleted by retention", totals.workers),
        ("retention_deleted_objects", "Output objects deleted by retention", totals.objects),
        ("retention_freed_bytes", "Bytes of output objects deleted by retention", totals.bytes),
        ("retention_deleted_changes", "Stored changes deleted by retention", totals.changes),
        ("retention_deleted_logs", "Worker logs deleted by retention", totals.logs),
        (
            "retention_deleted_sample_pieces",
            "Pieces of the samples file deleted by retention",
            totals.samples,
        ),
        (
            "retention_database_bytes_given_back",
            "Bytes the database file gave back to the disk after retention",
            totals.db_bytes,
        ),
    ):
        yield CounterMetricFamily(f"dacirco_{name}", doc, value=value)


def _used(usage: dict, attr: str) -> float:
    return float(sum(getattr(u, attr) for u in usage.values()))


def registry_for(controller: Controller) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(controller))
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
