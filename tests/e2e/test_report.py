"""End to end: a real run reported by `dacirco report`, and its jobs by `dacirco node-stats`;
the figures are recomputed here from the CSV and the log, independently of figures.py."""

from __future__ import annotations

import csv
import json
import statistics
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dacirco.analytics.run import from_log
from dacirco.cli import app
from dacirco.domain import FLAVORS

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_report_and_node_stats_of_a_real_run(service_factory) -> None:  # type: ignore[no-untyped-def]
    svc = service_factory(
        "--algorithm", "grace-period", "--max-idle-time", "1", "--flavor", "tiny",
        "--sample-interval", "0.2",
    )  # fmt: skip
    jobs = [svc.submit(id_video="bbb_0.mp4") for _ in range(3)]
    for job in jobs:
        assert svc.wait_state(job, {"Completed", "Error"}) == "Completed"
    svc.wait_for(lambda: set(svc.worker_states().values()) == {"Stopped"}, what="workers stopped")
    svc.stop()
    log = svc.event_log
    runner = CliRunner()

    result = runner.invoke(app, ["process-logs", str(log)])
    assert result.exit_code == 0, result.output
    out = log.parent / "report"
    result = runner.invoke(app, ["report", str(log), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    printed = result.output

    # Independent figures: delays from the CSV, reserved core-seconds from EV2/EV8 x flavor.
    ok = rows(log.with_name("tc-events-01-ok-requests.csv"))
    delays = [seconds(r["time_file_uploaded"], r["time_received"]) for r in ok]
    assert len(delays) == 3
    avg, p95 = statistics.mean(delays), statistics.quantiles(delays, n=20, method="inclusive")[18]
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    created = {e["worker_id"]: e for e in events if e["code"] == "EV2"}
    destroyed = {e["worker_id"]: e["time"] for e in events if e["code"] == "EV8"}
    assert created and set(destroyed) == set(created)
    reserved = sum(
        FLAVORS[e.get("flavor", "tiny")].cpus * seconds(destroyed[w], e["time"])
        for w, e in created.items()
    )
    gb_seconds = sum(
        FLAVORS[e.get("flavor", "tiny")].memory_gb * seconds(destroyed[w], e["time"])
        for w, e in created.items()
    )

    from dacirco.analytics.report import report

    run = from_log(log)
    figs = report([run], log.parent / "again").figures[0]
    assert (figs.jobs, figs.completed, figs.failed, figs.unfinished) == (3, 3, 0, 0)
    assert figs.delay.avg == pytest.approx(avg, abs=0.002)
    assert figs.delay.p95 == pytest.approx(p95, abs=0.002)
    assert figs.reserved_core_seconds == pytest.approx(reserved, abs=0.01)
    assert figs.reserved_gb_seconds == pytest.approx(gb_seconds, abs=0.02)
    # The table prints the figures checked above (the CSV's millisecond times may round the
    # other way at the second decimal).
    d = figs.delay
    assert d.max == pytest.approx(max(delays), abs=0.002)
    assert f"{d.avg:.2f} / {d.p95:.2f} / {d.max:.2f}" in printed
    assert f"{figs.reserved_core_seconds:,.1f}" in printed and "3 / 0 / 0" in printed

    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {
        "delay-cdf.png",
        "gantt-tc-events-01.png",
        "utilization-tc-events-01.png",
    }
    for png in pngs:
        assert png.stat().st_size > 1000 and png.read_bytes()[:8] == PNG, png
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert 'src="http' not in page and "<table>" in page

    requests_csv = log.with_name("tc-events-01-ok-requests.csv")
    result = runner.invoke(app, ["node-stats", str(requests_csv)])
    assert result.exit_code == 0, result.output
    stats = rows(log.with_name("tc-events-01-ok-requests-node-stats.csv"))
    assert [r["request_id"] for r in stats] == [r["request_id"] for r in ok]
    nodes = {e["worker_id"]: e["node"] for e in events if e["code"] == "EV11"}
    assert all(r["host"] == nodes[r["worker_id"]] for r in stats)

    samples = log.with_name("tc-events-01.samples.jsonl")
    # Every run writes its samples; a worker sends its own after each transcode.
    assert samples.exists() and run.samples is not None and run.samples.worker_cpu_cores
    assert figs.used_source == "samples" and "samples" in printed
    assert figs.node_cpu_util is not None and "node CPU" in printed
    for r in stats:
        load = [float(r[k]) for k in ("load_min", "load_avg", "load_max")]
        assert 0.0 <= load[0] <= load[1] <= load[2] <= 100.0, r
