"""``GET /metrics``: the controller's state in the Prometheus text format (prometheus-client).

Every value is read from the controller when scraped (a custom collector), so the figures
always agree with the API: nothing is counted twice or kept in a second copy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dacirco.controller.core import Controller
from dacirco.domain import FLAVORS, JobState, WorkerState

DELAY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

router = APIRouter(tags=["metrics"])


def _histogram(values: list[float]) -> tuple[list[tuple[str, float]], float]:
    buckets = []
    for bound in DELAY_BUCKETS:
        buckets.append((f"{bound:g}", float(sum(1 for v in values if v <= bound))))
    buckets.append(("+Inf", float(len(values))))
    return buckets, sum(values)


class ControllerCollector(Collector):
    def __init__(self, controller: Controller) -> None:
        self.c = controller

    def collect(self) -> Iterator[Metric]:
        c = self.c
        jobs = GaugeMetricFamily("dacirco_jobs", "Jobs by state", labels=["state"])
        by_state = Counter(j.state for j in c.jobs.values())
        for state in JobState:
            jobs.add_metric([state.value], by_state[state])
        yield jobs
        yield GaugeMetricFamily("dacirco_queue_length", "Jobs waiting for a worker", value=c.queued)
        workers = GaugeMetricFamily(
            "dacirco_workers", "Workers by state and flavor", labels=["state", "flavor"]
        )
        by_kind = Counter((w.state, w.flavor.name) for w in c.workers.values())
        for state in WorkerState:
            for flavor in FLAVORS:
                workers.add_metric([state.value, flavor], by_kind[(state, flavor)])
        yield workers
        delays = [
            j.timings["uploaded"] - j.received_at
            for j in c.jobs.values()
            if j.state == JobState.COMPLETED and "uploaded" in j.timings
        ]
        buckets, total = _histogram(delays)
        hist = HistogramMetricFamily(
            "dacirco_job_delay_seconds", "Request to uploaded output, completed jobs"
        )
        hist.add_metric([], buckets, total)
        yield hist
        alive = [w for w in c.workers.values() if w.state != WorkerState.STOPPED]
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
        if c.usage is not None and c.usage.node is not None:
            yield GaugeMetricFamily(
                "dacirco_node_cpu_percent",
                "CPU of the controller's machine, all cores (0-100)",
                value=c.usage.node["cpu_percent"],
            )


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
