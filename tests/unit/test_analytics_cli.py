"""process-logs as a command: summary, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from dacirco.analytics.cli import process_logs

app = typer.Typer()
app.command()(process_logs)
runner = CliRunner()

EVENTS = [
    {"time": "2024-05-01T12:00:00+00:00", "code": "EV1", "request_id": "r1", "input_video": "v",
     "bitrate": 1, "speed": "fast"},
    {"time": "2024-05-01T12:00:00.500000+00:00", "code": "EV1", "request_id": "r2",
     "input_video": "v", "bitrate": 1, "speed": "fast"},
    {"time": "2024-05-01T12:00:01+00:00", "code": "EV2", "name": "n", "worker_id": "w1"},
]  # fmt: skip


def test_converts_and_summarizes(tmp_path: Path) -> None:
    log = tmp_path / "tc-events-04.txt"
    log.write_text("".join(json.dumps(e) + "\n" for e in EVENTS) + '{"time": "20')
    out = tmp_path / "csv"
    result = runner.invoke(app, [str(log), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "tc-events-04-workers.csv").exists()
    assert (out / "tc-events-04-ok-requests.csv").exists()
    assert "incomplete requests" in result.output and "2 Waiting" in result.output
    assert "1 truncated" in result.output


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "nope.txt" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_an_event_log_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "readme.txt"
    path.write_text("just text\n")
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    assert "readme.txt" in result.output and "not an event log" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "readme-workers.csv").exists()


def test_directory_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path)])
    assert result.exit_code == 2 and "not a file" in result.output


def test_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "--out-dir" in result.output and "ok-requests.csv" in result.output
