"""The report: figures as a table, PNG plots and one self-contained HTML page; the command."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dacirco.analytics.figures import figures
from dacirco.analytics.plots import job_segments, worker_segments
from dacirco.analytics.report import default_out, report, unique_labels
from dacirco.analytics.report_cli import report_command
from dacirco.analytics.run import JobSpan, NodeCapacity, RunData, WorkerSpan, from_log

PNG = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

app = typer.Typer()
app.command()(report_command)
runner = CliRunner()


def ev(seconds: float, code: str, **fields: object) -> dict[str, object]:
    return {"time": (T0 + timedelta(seconds=seconds)).isoformat(), "code": code, **fields}


def job(t: float, rid: str, wid: str, gaps=(1.0, 0.5, 2.0, 3.0, 0.5)) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    out = [ev(t, "EV1", request_id=rid, input_video="bbb_0.mp4", bitrate=1000, speed="fast")]
    for code, gap in zip(("EV3", "EV4", "EV5", "EV6", "EV7"), gaps, strict=True):
        t += gap
        out.append(ev(t, code, request_id=rid, worker_id=wid, task_id=f"t-{rid}"))
    return out


def small_log(path: Path, tail: str = "") -> Path:
    """Two jobs on one small worker (created 0 s, registered 1 s, destroyed 20 s)."""
    events = [
        ev(0, "EV2", name="w1", worker_id="w1", flavor="small"),
        ev(1, "EV11", name="w1", worker_id="w1", node="n1", cpus=2, memory=4),
        *job(0, "r1", "w1"),  # delay 7
        *job(8, "r2", "w1", gaps=(1.0, 0.5, 2.0, 5.0, 0.5)),  # delay 9
        ev(20, "EV8", name="w1", worker_id="w1"),
    ]
    events.sort(key=lambda e: str(e["time"]))
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    path.with_name(path.stem + ".config.txt").write_text(
        json.dumps({"flavor": "small", "nodes": [{"name": "n1", "cpus": 4, "memory_gb": 8}]})
    )
    return path


def is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def sim_run(label: str) -> RunData:
    """A simulated run as the simulator would hand it over (no samples, own clock)."""
    w = WorkerSpan("w", "w", 2, 4, created=0, registered=5, destroyed=None, busy=[(5, 15)])
    jobs = [
        JobSpan("a", received=0, state="Completed", assigned=5, uploaded=15, worker_id="w"),
        JobSpan("b", received=12, state="Waiting"),
    ]
    return RunData(label, 0.0, 30.0, [NodeCapacity("n", 6, 16)], [w], jobs)


def test_report_writes_valid_pngs_and_a_self_contained_page(tmp_path: Path) -> None:
    run = from_log(small_log(tmp_path / "tc-events-01.txt"))
    result = report([run], tmp_path / "out")
    names = {p.path.name for p in result.plots}
    assert names == {"delay-cdf.png", "gantt-tc-events-01.png", "utilization-tc-events-01.png"}
    assert all(is_png(p.path) for p in result.plots)
    page = result.html.read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert not re.search(r"(src|href)=\"(http|/|\./)", page)  # no external asset
    rows = dict(result.rows)
    assert rows["delay avg / p95 / max (s)"] == ["8.00 / 8.90 / 9.00"]
    assert rows["completed / failed / canceled / unfinished"] == ["2 / 0 / 0 / 0"]
    assert rows["reserved core-seconds"] == ["40.0"]  # 2 cores * 20 s
    assert rows["used CPU and RAM from"] == ["busy workers"]
    assert "<td>8.00 / 8.90 / 9.00</td>" in page
    assert result.figures[0] == figures(run)


def test_several_runs_are_compared_on_the_same_axes(tmp_path: Path) -> None:
    result = report([sim_run("grace"), sim_run("grace")], tmp_path)
    assert result.labels == ["grace", "grace (2)"]
    names = [p.path.name for p in result.plots]
    assert {"compare-figures.png", "compare-cores.png", "delay-cdf.png"} <= set(names)
    assert "gantt-grace.png" in names and "gantt-grace-2.png" in names
    assert all(is_png(p.path) for p in result.plots)
    assert all(len(cells) == 2 for _, cells in result.rows)
    assert result.html.read_text().count("data:image/png;base64,") == len(result.plots)


def test_segments_of_workers_and_jobs() -> None:
    run = sim_run("s")
    assert worker_segments(run.workers[0], run) == [
        (0, 5, "booting"),
        (5, 15, "busy"),
        (15, 30.0, "idle"),
    ]
    assert job_segments(run.jobs[0], run) == [(0, 5, "waiting"), (5, 15, "running")]
    assert job_segments(run.jobs[1], run) == [(12, 30.0, "waiting")]


def test_labels_and_default_folder(tmp_path: Path) -> None:
    assert unique_labels([sim_run("a"), sim_run("a"), sim_run("a")]) == ["a", "a (2)", "a (3)"]
    assert default_out([tmp_path / "tc-events-01.txt"]) == tmp_path / "tc-events-01-report"
    both = default_out([tmp_path / "tc-events-01.txt", Path("x/tc-events-02.txt")])
    assert both == tmp_path / "tc-events-01-vs-tc-events-02-report"
    with pytest.raises(ValueError):
        report([], tmp_path)


def test_command_prints_the_table_and_writes_beside_the_log(tmp_path: Path) -> None:
    log = small_log(tmp_path / "tc-events-05.txt")
    result = runner.invoke(app, [str(log)])
    assert result.exit_code == 0, result.output
    assert "8.00 / 8.90 / 9.00" in result.output and "busy workers" in result.output
    assert (tmp_path / "tc-events-05-report" / "report.html").exists()


def test_a_truncated_log_still_reports_its_unfinished_jobs(tmp_path: Path) -> None:
    log = tmp_path / "tc-events-06.txt"
    small_log(log)
    lines = log.read_text().splitlines()
    cut = [line for line in lines if '"EV7"' not in line or "r1" in line][:-1]
    log.write_text("\n".join(cut) + '\n{"time": "2024-05-01T12:0')
    result = runner.invoke(app, [str(log), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "1 / 0 / 0 / 1" in result.output
    assert "cut short" in result.output and "unfinished" in result.output


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "nope.txt" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_an_event_log_names_the_file_and_its_first_bad_line(tmp_path: Path) -> None:
    good = small_log(tmp_path / "tc-events-01.txt")
    bad = tmp_path / "notes.txt"
    bad.write_text("\nhello, this is not JSON\n")
    result = runner.invoke(app, [str(good), str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert "\n" not in line and "notes.txt" in line and "not an event log" in line
    assert "line 2: 'hello, this is not JSON'" in line
    assert not (tmp_path / "o").exists()


def test_both_commands_are_registered() -> None:
    from dacirco.cli import app as dacirco

    for command in ("report", "node-stats"):
        result = runner.invoke(dacirco, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--out" in runner.invoke(dacirco, ["report", "--help"]).output
