"""Secrets stay off the command line: every secret option of every command can be given
another way (its environment variable or a file option), and one given on the command line
still works but earns a one-line warning that names the alternative."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from dacirco.cli import app

SECRET = re.compile(r"token|secret|password", re.IGNORECASE)
VALUE = "s3cr3t-value-on-the-command-line"


# Typer carries its own copy of click: commands and options are known by what they do.
Command = Any
Option = Any


def _commands(command: Command, path: str = "dacirco") -> Iterator[tuple[str, Command]]:
    if hasattr(command, "list_commands"):
        ctx = command.make_context(path, [], resilient_parsing=True)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from _commands(sub, f"{path} {name}")
    else:
        yield path, command


def secret_options() -> list[tuple[str, Command, Option]]:
    """Every option of every command that carries a secret (a file option names a file)."""
    found = [
        (path, command, param)
        for path, command in _commands(typer.main.get_command(app))
        for param in command.params
        if param.param_type_name == "option"
        and SECRET.search(param.name or "")
        and not (param.name or "").endswith("_file")
    ]
    assert len(found) >= 8, [(p, o.name) for p, _, o in found]
    return found


SECRETS = secret_options()


def _id(entry: tuple[str, Command, Option]) -> str:
    return f"{entry[0]} {entry[2].opts[0]}"


@pytest.mark.parametrize("entry", SECRETS, ids=[_id(e) for e in SECRETS])
def test_a_secret_on_the_command_line_works_with_a_warning_naming_the_way_around(
    entry, capsys, monkeypatch
):
    path, command, option = entry
    flag = option.opts[0]
    others = {p.name for p in command.params}
    env = option.envvar if isinstance(option.envvar, str) else None
    assert env or f"{option.name}_file" in others, f"{path} {flag}: only on the command line"
    if env:
        monkeypatch.delenv(env, raising=False)
    ctx = command.make_context(path, [flag, VALUE], resilient_parsing=True)
    value = ctx.params[option.name]
    assert value == VALUE or value == [VALUE], (path, flag, value)  # still given to the command
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1, (path, flag, warning)
    assert flag in warning[0] and "`ps`" in warning[0], warning
    assert (env or f"--{option.name.replace('_', '-')}-file") in warning[0], warning
    assert VALUE not in warning[0]
    if env:  # the same secret from the environment: no warning
        monkeypatch.setenv(env, VALUE)
        command.make_context(path, [], resilient_parsing=True)
        assert capsys.readouterr().err == ""
