"""The webhook options of ``serve`` and ``controller`` (``--webhook URL`` ...), written once
from ``WebhookOptions``: its defaults and descriptions, its checks (a refused URL ends the
command in one line)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError

from dacirco.cli_options import Parameter, option, secret_warning
from dacirco.webhooks import WebhookOptions

_FIELDS = WebhookOptions.model_fields
_FLAGS = {  # option name -> field of WebhookOptions
    "webhook": "url",
    "webhook_secret": "secret",
    "webhook_allow_private": "allow_private",
    "webhook_give_up_after": "give_up_after",
    "webhook_progress_interval": "progress_interval",
    "webhook_timeout": "timeout",
}
_ENV = {"webhook_secret": "DACIRCO_WEBHOOK_SECRET"}


def webhook_parameters() -> list[Parameter]:
    params = []
    for name, field_name in _FLAGS.items():
        spec = _FIELDS[field_name]
        kind: Any = spec.annotation
        info = typer.Option(
            help=spec.description,
            envvar=_ENV.get(name),
            show_envvar=False,
            show_default=name != "webhook_secret",
            callback=secret_warning(_ENV[name]) if name in _ENV else None,
        )
        params.append(option(name, Annotated[kind, info], spec.default))
    return params


def webhook_from(**values: Any) -> WebhookOptions:
    try:
        return WebhookOptions(**{_FLAGS[name]: value for name, value in values.items()})
    except ValidationError as exc:
        flags = {field_name: name for name, field_name in _FLAGS.items()}
        problems = "; ".join(
            f"--{flags.get(str(e['loc'][0]), e['loc'][0]).replace('_', '-')}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        typer.secho(f"error: {problems}", err=True, fg="red")
        raise typer.Exit(2) from None


WEBHOOK_NAMES = list(_FLAGS)
