"""The command line: every command and classic alias answers --help; bad options say why."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from dacirco.cli import COMMANDS, app, command

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--help"], "serve"),
        (["serve", "--help"], "--max-idle-time"),
        (["controller", "--help"], "default 8001"),
        (["rest-api", "--help"], "--controller-url"),
        (["worker", "--help"], "DACIRCO_WORKER_TOKEN"),
        (["catalog", "--help"], "seed"),
        (["catalog", "seed", "--help"], "--duration-scale"),
        (["catalog", "add", "--help"], "FILE"),
        (["catalog", "list", "--help"], "--data-dir"),
        (["monitor", "--help"], "--refresh-interval"),
        (["scenario", "--help"], "--generator"),
        (["process-logs", "--help"], "LOG"),
        (["wait-scenario", "--help"], "one request at a time"),
    ],
)
def test_every_command_has_help(args, words):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert words in result.output


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads(name):
    result = runner.invoke(app, [name, "--help"], prog_name="dacirco")
    assert result.exit_code == 0, result.output
    assert f"Usage: dacirco {name}" in " ".join(result.output.split())


def test_a_command_imports_only_what_it_uses():
    code = (
        "import sys\n"
        "from dacirco.cli import app\n"
        "sys.argv = ['dacirco', 'simulate', '--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = ('fastapi', 'uvicorn', 'httpx', 'matplotlib', 'minio', 'av', 'psutil',\n"
        "         'dacirco.controller.core', 'dacirco.service', 'dacirco.runtimes.factory')\n"
        "print(*sorted(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == ""


@pytest.mark.parametrize(
    "name",
    ["controller", "rest-api", "worker", "monitor", "scenario", "wait-scenario", "process-logs"],
)
def test_classic_aliases_are_single_commands(name):
    single = typer.Typer()
    single.command()(command(name))
    result = runner.invoke(single, ["--help"], prog_name="alias")
    assert result.exit_code == 0 and "Usage: alias [OPTIONS]" in result.output


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--algorithm", "nope"], "unknown algorithm 'nope'"),
        (["--runtime", "cloud"], "--runtime 'cloud'"),
        (["--flavor", "huge"], "--flavor 'huge'"),
        (["--max-workers", "0"], "--max-workers must be at least 1"),
        (["--call-interval", "0"], "--call-interval must be positive"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(tmp_path, monkeypatch, option, words):
    monkeypatch.chdir(tmp_path)  # where an event log would be written
    result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "d"), *option])
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("tc-events-*"))
    assert not (tmp_path / "d").exists()  # nothing created before the options are known good
