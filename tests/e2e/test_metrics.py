"""End to end: the resource samples of a real run, and /metrics against the API."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dacirco.analytics.samples import read_samples, samples_path

pytestmark = pytest.mark.slow


def scrape(svc) -> dict[str, dict[tuple, float]]:  # type: ignore[no-untyped-def]
    """name -> {sorted label items: value}, parsed by prometheus-client's own parser."""
    resp = svc.client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def api_counts(svc) -> tuple[Counter, Counter]:  # type: ignore[no-untyped-def]
    ids = svc.client.get("/jobs").json()["items"]
    jobs = Counter(svc.client.get(f"/jobs/{j}/state").json() for j in ids)
    return jobs, Counter(svc.worker_states().values())


def test_samples_and_metrics_of_a_real_run(service_factory) -> None:
    svc = service_factory(
        "--algorithm", "grace-period", "--max-workers", "1", "--sample-interval", "0.2"
    )  # fmt: skip
    jobs = [svc.submit(id_video="bbb_5.mp4", speed="fast") for _ in range(2)]
    # While the first one transcodes: a job busy, one queued, one worker busy.
    svc.wait_for(lambda: api_counts(svc)[0]["Started"] == 1, what="a job started")
    m = scrape(svc)
    jobs_api, workers_api = api_counts(svc)
    for state in ("Waiting", "Started", "Completed", "Error"):
        assert m["dacirco_jobs"][(("state", state),)] == jobs_api[state], state
    assert m["dacirco_queue_length"][()] == jobs_api["Waiting"]
    for state in ("Booting", "Idle", "Busy", "Stopped"):
        assert m["dacirco_workers"][(("flavor", "small"), ("state", state))] == workers_api[state]
    assert m["dacirco_reserved_cores"][()] == 2.0  # one small worker
    assert m["dacirco_capacity_cores"][()] >= 1

    for job in jobs:
        assert svc.wait_state(job, {"Completed", "Error"}) == "Completed"
    m = scrape(svc)
    assert m["dacirco_jobs"][(("state", "Completed"),)] == 2
    assert m["dacirco_job_delay_seconds_count"][()] == 2
    assert m["dacirco_job_delay_seconds_bucket"][(("le", "+Inf"),)] == 2
    delays = [svc.client.get(f"/jobs/{j}").json() for j in jobs]
    assert m["dacirco_job_delay_seconds_sum"][()] > 0, delays
    # The worker sent its samples while it transcoded (every 5 s, and when it stops).
    svc.stop()

    path = samples_path(svc.event_log)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = Counter((r["kind"], r.get("role")) for r in records)
    assert kinds[("node", None)] >= 2 and kinds[("process", "controller")] >= 2, kinds
    assert kinds[("process", "worker")] >= 2, kinds
    samples = read_samples(path)
    assert samples is not None and samples.skipped == 0
    (worker_id,) = samples.worker_cpu_cores
    assert worker_id in {e["worker_id"] for e in svc.events() if e["code"] == "EV2"}
    # ffmpeg is in the worker's tree: while it encoded, the tree used most of a core or more.
    assert max(samples.worker_cpu_cores[worker_id].values) > 0.5
    assert max(samples.worker_rss_gb[worker_id].values) > 0.02
    host_cpus = next(iter(samples.node_cpus.values()))
    assert all(0 <= v <= 100 for s in samples.node_cpu_percent.values() for v in s.values)
    assert host_cpus >= 1
