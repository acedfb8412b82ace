"""`dacirco jobs` without a service: every command's help, and an unreachable service."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from tests.conftest import free_port

runner = CliRunner()
COMMANDS = ["submit", "list", "show", "cancel", "wait", "events", "outputs"]


def test_the_group_lists_its_commands():
    result = runner.invoke(app, ["jobs", "--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert re.search(rf"│ {name}\s+\w", result.output), name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_option_has_help(name):
    result = runner.invoke(app, ["jobs", name, "--help"], prog_name="dacirco")
    assert result.exit_code == 0, result.output
    assert f"Usage: dacirco jobs {name}" in " ".join(result.output.split())
    for option in ("--url", "--api-token", "--json"):
        assert option in result.output
    for line in result.output.splitlines():
        if re.match(r"^│\s+(\*\s+)?--[a-z-]+(\s+-\w)?\s+<\w+>\s*│", line):
            pytest.fail(f"option without help: {line}")


@pytest.mark.parametrize("name", ["show", "cancel", "wait", "outputs"])
def test_an_unreachable_service_is_said_in_one_line_and_exits_1(name, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DACIRCO_URL", url)
    result = runner.invoke(app, ["jobs", name, "j1"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith(f"error: cannot reach {url}")
    ]
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_a_refused_token_says_which_option_sends_one():
    from dacirco.client import Unauthorized
    from dacirco.client.render import error_json, error_text

    assert error_text(Unauthorized(401, "Not authenticated")) == (
        "Not authenticated (the service needs an API token: --api-token or DACIRCO_API_TOKEN)"
    )
    assert "refused the API token" in error_text(Unauthorized(403, "bad token"))
    assert error_json(Unauthorized(403, "bad token")).startswith('{"status":403,')


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "give --bitrate for one MP4, or --preset for a streaming job"),
        (["-b", "1000", "--preset", "hls-ladder"], "not both"),
        (["-b", "1000", "--thumbnails", "5"], "thumbnails come with a --preset"),
        (["--preset", "hls-ladder", "--thumbnails", "99"], "less than or equal to 60"),
    ],
)
def test_submit_refuses_what_cannot_go_together_in_one_line(args, words):
    result = runner.invoke(app, ["jobs", "submit", "bbb_1.mp4", *args])
    assert result.exit_code == 2
    assert words in " ".join(result.output.replace("│", " ").split()), result.output
    assert "Traceback" not in result.output
