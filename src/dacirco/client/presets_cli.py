"""``dacirco presets``: add, list, show and remove the presets of a running service.

An operator's preset is what a job's body says of its outputs (``outputs``, and optionally
``quality``, ``thumbnails``, ``description``), as a JSON file; the service checks it as it
checks a job's body. The shipped presets cannot be replaced or removed. Exit status as
``dacirco jobs``: 0 done; 2 bad input or a 4xx answer; 1 the service unreachable or a 5xx.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dacirco.auth_options import ClientToken
from dacirco.client import render
from dacirco.client.calls import DEFAULT_URL
from dacirco.client.cli import Json, Url, _api, _console, _out, _show
from dacirco.outputs.presets import PresetPublic

presets_app = typer.Typer(
    help="Add, list, show and remove the presets of a running service (the shipped ones and "
    "the operators' own).",
    no_args_is_help=True,
    add_completion=False,
)

Name = Annotated[str, typer.Argument(help="the preset's name, e.g. my-ladder")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _read(source: str) -> dict[str, Any]:
    """The preset's JSON body from a file (``-``: standard input), or one line saying why not."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise _fail(f"{source} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _fail(f"{source} must hold a JSON object (outputs, quality, thumbnails, ...)")
    return body


def _summary(preset: PresetPublic) -> str:
    outs = []
    for out in preset.outputs:
        rungs = [
            f"{r.get('height') or 'source'}p {r['video_bitrate']}k"
            if r.get("video_bitrate")
            else f"audio {r.get('audio_bitrate')}k"
            for r in out.get("renditions", [])
        ]
        outs.append(f"{out.get('container')}: {', '.join(rungs)}")
    extra = [x for x, on in (("quality", preset.quality), ("thumbnails", preset.thumbnails)) if on]
    return "; ".join(outs) + (f" (+ {', '.join(extra)})" if extra else "")


@presets_app.command()
def add(
    name: Name,
    source: Annotated[
        str, typer.Argument(metavar="FILE", help="the preset as JSON (a job's outputs); - : stdin")
    ],
    url: Url = DEFAULT_URL,
    api_token: ClientToken = None,
    as_json: Json = False,
) -> None:
    """Add an operator's preset (or replace one of that name), checked by the service."""
    body = _read(source)
    with _api(url, api_token, as_json) as api:
        preset = api.put_preset(name, body)
    _out(render.dumps(preset.model_dump(mode="json")) if as_json else f"{name}: {_summary(preset)}")


@presets_app.command("list")
def list_presets(
    url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """List every preset, the shipped ones first."""
    with _api(url, api_token, as_json) as api:
        items = api.presets().items
    if as_json:
        _out(render.dumps([p.model_dump(mode="json") for p in items]))
        return
    table = Table(title="presets")
    for column in ("name", "kind", "outputs"):
        table.add_column(column)
    for p in items:
        table.add_row(p.name, "shipped" if p.shipped else "operator", _summary(p))
    _console().print(table)


@presets_app.command()
def show(
    name: Name, url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """Show one preset as JSON: what `add` takes (--json: with its name and kind, one line)."""
    with _api(url, api_token, as_json) as api:
        preset = api.preset(name)
    body = preset.model_dump(mode="json", exclude={"name", "shipped"})
    _show(preset, as_json, lambda: _out(json.dumps(body, indent=2)))


@presets_app.command()
def remove(
    name: Name, url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """Remove an operator's preset (a shipped one cannot be removed)."""
    with _api(url, api_token, as_json) as api:
        api.delete_preset(name)
    _out(render.dumps({"removed": name}) if as_json else f"{name}: removed")
