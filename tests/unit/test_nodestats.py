"""node-stats: the host of each completed job and its node's CPU % while it transcoded."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dacirco.analytics.csvs import REQUEST_COLUMNS, write_csvs
from dacirco.analytics.logs import parse_log
from dacirco.analytics.nodestats import (
    EXTRA_COLUMNS,
    NodeStatsError,
    load_window,
    node_stats,
    output_path,
)
from dacirco.analytics.report_cli import node_stats_command
from dacirco.analytics.samples import Series

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
app = typer.Typer()
app.command()(node_stats_command)
runner = CliRunner()


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def ev(seconds: float, code: str, **fields: object) -> dict[str, object]:
    return {"time": at(seconds), "code": code, **fields}


def job(rid: str, wid: str, t: float, downloaded: float, transcoded: float) -> list[dict]:
    ids = {"request_id": rid, "worker_id": wid, "task_id": f"t-{rid}"}
    return [
        ev(t, "EV1", request_id=rid, input_video="bbb_0.mp4", bitrate=1000, speed="fast"),
        ev(t + 0.1, "EV3", **ids),
        ev(t + 0.2, "EV4", **ids),
        ev(downloaded, "EV5", **ids),
        ev(transcoded, "EV6", **ids),
        ev(transcoded + 0.3, "EV7", **ids),
    ]


def node(seconds: float, host: str, cpu: float) -> dict[str, object]:
    return {"time": at(seconds), "kind": "node", "host": host, "cpus": 4, "cpu_percent": cpu,
            "memory_used_gb": 1.0, "memory_total_gb": 8.0}  # fmt: skip


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Two workers on hosts h1 and h2; r1 transcodes on h1 over [2.5, 5.2], r2 on h2 over
    [10.2, 10.6] (no sample inside: h2 is sampled at 8 and 13 s only)."""
    events = [
        ev(0, "EV2", name="w1", worker_id="w1"),
        ev(0.5, "EV11", name="w1", worker_id="w1", node="h1", cpus=2, memory=4),
        ev(0, "EV2", name="w2", worker_id="w2"),
        ev(0.5, "EV11", name="w2", worker_id="w2", node="h2", cpus=2, memory=4),
        *job("r1", "w1", 1, downloaded=2.5, transcoded=5.2),
        *job("r2", "w2", 9, downloaded=10.2, transcoded=10.6),
    ]
    events.sort(key=lambda e: str(e["time"]))
    log = tmp_path / "tc-events-03.txt"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    write_csvs(parse_log(log))
    samples = [node(s, "h1", 10.0 * s) for s in range(0, 8)]  # 1 s -> 10 %, 2 s -> 20 %…
    samples += [node(8, "h2", 30.0), node(13, "h2", 70.0)]
    samples.append({"time": at(3), "kind": "process", "role": "worker", "worker_id": "w1",
                    "host": "h1", "cpu_cores": 1.0, "rss_gb": 0.1})  # fmt: skip
    (tmp_path / "tc-events-03.samples.jsonl").write_text(
        "".join(json.dumps(s) + "\n" for s in samples)
    )
    return tmp_path


def rows(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), {r["request_id"]: r for r in reader}


def test_load_window_inside_and_around() -> None:
    s = Series([0.0, 1.0, 2.0, 3.0, 10.0], [5.0, 10.0, 20.0, 30.0, 50.0])
    # a sample measures the second before it: those of [1.5, 3.0 + 1] are at 2 and 3 s
    assert load_window(s, 1.5, 3.0) == (20.0, 25.0, 30.0)
    assert load_window(s, 5.0, 6.0) == (30.0, 40.0, 50.0)  # none in [5, 7]: 3 s and 10 s
    assert load_window(s, 20.0, 21.0) == (50.0, 50.0, 50.0)  # after the last one
    assert load_window(Series(), 0, 1) is None


def test_node_stats_adds_host_and_load(run_dir: Path) -> None:
    requests_csv = run_dir / "tc-events-03-ok-requests.csv"
    result = node_stats(requests_csv)
    assert result.out == run_dir / "tc-events-03-ok-requests-node-stats.csv"
    assert result.out == output_path(requests_csv) and result.warnings == []
    columns, by_id = rows(result.out)
    assert columns == [*REQUEST_COLUMNS, *EXTRA_COLUMNS]
    r1, r2 = by_id["r1"], by_id["r2"]
    assert r1["host"] == "h1" and r2["host"] == "h2"
    # [2.5, 5.2] on h1: the samples taken in [2.5, 6.2], at 3, 4, 5, 6 s (30 .. 60 %)
    assert (r1["load_min"], r1["load_avg"], r1["load_max"]) == ("30.0", "45.0", "60.0")
    # nothing in [10.2, 11.6] on h2: the nearest ones, 8 s (30 %) and 13 s (70 %)
    assert (r2["load_min"], r2["load_avg"], r2["load_max"]) == ("30.0", "50.0", "70.0")
    assert r1["timediff_assigned"] and r1["input_video"] == "bbb_0.mp4"  # input kept


def test_no_samples_file_leaves_the_load_empty_with_a_warning(run_dir: Path) -> None:
    (run_dir / "tc-events-03.samples.jsonl").unlink()
    result = runner.invoke(app, [str(run_dir / "tc-events-03-ok-requests.csv")])
    assert result.exit_code == 0, result.output
    assert "warning: no samples file" in result.output
    _, by_id = rows(run_dir / "tc-events-03-ok-requests-node-stats.csv")
    assert by_id["r1"]["host"] == "h1" and by_id["r1"]["load_avg"] == ""


def test_explicit_log_samples_and_out(run_dir: Path, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path_factory.mktemp("elsewhere")
    moved = other / "requests.csv"
    moved.write_bytes((run_dir / "tc-events-03-ok-requests.csv").read_bytes())
    with pytest.raises(NodeStatsError):  # its name no longer tells where the log is
        node_stats(moved)
    out = other / "stats.csv"
    result = runner.invoke(
        app,
        [str(moved), "--log", str(run_dir / "tc-events-03.txt"),
         "--samples", str(run_dir / "tc-events-03.samples.jsonl"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    _, by_id = rows(out)
    assert by_id["r1"]["load_avg"] == "45.0"


def test_without_a_findable_log_it_says_how_to_give_it(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(",".join(REQUEST_COLUMNS) + "\n")
    with pytest.raises(NodeStatsError, match="--log"):
        node_stats(path)
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2 and "mine.csv" in result.output and "--log" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_inputs_are_one_line_exit_2(run_dir: Path) -> None:
    result = runner.invoke(app, [str(run_dir / "nope-ok-requests.csv")])
    assert result.exit_code == 2 and "nope-ok-requests.csv: no such file" in result.output
    not_csv = run_dir / "x-ok-requests.csv"
    not_csv.write_text("hello\nworld\n")
    result = runner.invoke(app, [str(not_csv)])
    assert result.exit_code == 2
    assert "x-ok-requests.csv" in result.output and "worker_id" in result.output
    assert len(result.output.strip().splitlines()) == 1
