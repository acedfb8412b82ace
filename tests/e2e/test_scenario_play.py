"""`dacirco scenario` and `dacirco wait-scenario` against a real service (short catalog
bbb_0..bbb_5, one worker), plus the checks that need no service."""

from __future__ import annotations

import random
import re
from datetime import datetime

import pytest
import typer
from typer.testing import CliRunner

from dacirco.scenario.cli import scenario, wait_scenario
from dacirco.scenario.generate import classic
from dacirco.scenario.model import read_scenario
from tests.conftest import free_port

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command("scenario")(scenario)
    app.command("wait-scenario")(wait_scenario)
    return app


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli(), list(args))


def row(output: str, name: str) -> str | None:
    """The value of a row of the summary table."""
    match = re.search(rf"{re.escape(name)}\s*[│|]\s*([^│|\n]+?)\s*[│|]", output)
    return match.group(1) if match else None


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


@pytest.mark.slow
def test_plays_a_file_with_wait_and_reports_the_rejection(service_factory, tmp_path):
    svc = service_factory("--max-workers", "1")
    path = tmp_path / "four.csv"
    path.write_text(
        "# three good jobs and an unknown movie\n"
        "0,bbb_1.mp4,800,ultrafast\n"
        "2,bbb_99.mp4,800,ultrafast\n"
        "2,bbb_2.mp4,600,ultrafast\n"
        "2,bbb_3.mp4,700,fast\n"
    )
    result = invoke(
        "scenario", "-f", str(path), "-p", port_of(svc.url), "--time-scale", "0.05",
        "--wait", "--timeout", "240",
    )  # fmt: skip
    print(result.output)
    assert result.exit_code == 0, result.output + svc.tail()
    assert row(result.output, "accepted") == "3"
    assert row(result.output, "rejected") == "1"
    assert row(result.output, "failed sends") == "0"
    assert row(result.output, "final state Completed") == "3"
    assert row(result.output, "delay avg") not in (None, "-")
    rejected = [line for line in result.output.splitlines() if "bbb_99.mp4" in line]
    assert rejected and "(requests 2)" in rejected[0], result.output
    ids = svc.client.get("/jobs").json()["items"]
    assert len(ids) == 3
    assert {svc.client.get(f"/jobs/{i}/state").json() for i in ids} == {"Completed"}


@pytest.mark.slow
def test_wait_scenario_plays_one_job_after_the_other(service_factory, tmp_path):
    svc = service_factory("--max-workers", "1")
    path = tmp_path / "two.csv"
    path.write_text("0,bbb_1.mp4,800,ultrafast\n0,bbb_2.mp4,800,ultrafast\n")
    result = invoke("wait-scenario", str(path), "-p", port_of(svc.url), "--timeout", "240")
    print(result.output)
    assert result.exit_code == 0, result.output + svc.tail()
    assert row(result.output, "final state Completed") == "2"
    jobs = [svc.client.get(f"/jobs/{i}").json() for i in svc.client.get("/jobs").json()["items"]]
    jobs.sort(key=lambda j: j["timings"]["received"])
    assert [j["id_video"] for j in jobs] == ["bbb_1.mp4", "bbb_2.mp4"]
    first_done = datetime.fromisoformat(jobs[0]["timings"]["uploaded"])
    second_received = datetime.fromisoformat(jobs[1]["timings"]["received"])
    assert second_received > first_done


@pytest.mark.slow
def test_malformed_file_exits_2_and_sends_nothing(service_factory, tmp_path):
    svc = service_factory("--max-workers", "1")
    path = tmp_path / "bad.csv"
    path.write_text("0,bbb_1.mp4,800,ultrafast\n# comment\n1,bbb_2.mp4,9000,fast\n")
    for args in (["scenario", "-f"], ["wait-scenario"]):
        result = invoke(*args, str(path), "-p", port_of(svc.url))
        assert result.exit_code == 2, result.output
        assert f"{path}:3:" in result.output and "9000" in result.output
    assert svc.client.get("/jobs").json()["items"] == []
    assert not [e for e in svc.events() if e["code"] == "EV1"]


def test_dry_run_saves_last_scenario_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("scenario", "-n", "3", "--seed", "7", "--dry-run", "-p", str(free_port()))
    assert result.exit_code == 0, result.output
    assert read_scenario(tmp_path / "last_scenario.csv") == classic(3, random.Random(7))
    assert "seed 7" in (tmp_path / "last_scenario.csv").read_text()


def test_out_option_and_other_generators(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "b.csv"
    result = invoke(
        "scenario", "-n", "20", "--seed", "1", "--generator", "bursty", "--on-rate", "3",
        "--dry-run", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(read_scenario(out)) == 20 and not (tmp_path / "last_scenario.csv").exists()
    assert "on_rate=3.0" in out.read_text()


def test_unreachable_server_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    port = str(free_port())
    result = invoke("scenario", "-n", "2", "-p", port)
    assert result.exit_code == 1
    assert f"cannot reach the job API at http://127.0.0.1:{port}" in result.output
    path = tmp_path / "last_scenario.csv"
    result = invoke("wait-scenario", str(path), "-p", port)
    assert result.exit_code == 1 and "cannot reach" in result.output


@pytest.mark.parametrize(
    "args", [["scenario"], ["scenario", "-n", "2", "-f", "x.csv"], ["scenario", "-n", "0"]]
)
def test_needs_exactly_one_of_number_and_file(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    assert not (tmp_path / "last_scenario.csv").exists()


@pytest.mark.parametrize("command", ["scenario", "wait-scenario"])
def test_every_option_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    options = re.findall(r"^│\s+(--[a-z-]+)", result.output, flags=re.M)
    assert options
    for line in result.output.splitlines():
        if re.match(r"^│\s+--[a-z-]+\s+(-\w\s+)?<?[\w ]*>?\s*│", line):
            pytest.fail(f"option without help: {line}")
