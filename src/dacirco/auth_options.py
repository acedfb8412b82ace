"""The command-line options of client API tokens: what a service accepts (``serve``,
``controller``, ``rest-api``) and what a client sends (``scenario``, ``monitor`` ...).

Kept free of FastAPI so that ``--help`` stays quick. A token is never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dacirco.cli_options import secret_warning

TOKENS_ENV = "DACIRCO_API_TOKENS"  # a service's accepted tokens, comma-separated
CLIENT_TOKEN_ENV = "DACIRCO_API_TOKEN"  # the one token a client sends

ApiTokens = Annotated[
    list[str] | None,
    typer.Option(
        "--api-token",
        help="a client API token the public routes accept (repeatable; also "
        f"{TOKENS_ENV}, comma-separated); required unless listening on 127.0.0.1/localhost",
        show_default=False,
        callback=secret_warning(f"{TOKENS_ENV} or --api-token-file"),
    ),
]
ApiTokenFile = Annotated[
    Path | None,
    typer.Option(
        help="a file of client API tokens, one a line ('#' starts a comment)",
        dir_okay=False,
    ),
]
InsecureNoAuth = Annotated[
    bool,
    typer.Option(
        "--insecure-no-auth",
        help="listen beyond this machine without any API token (anyone reaching the port "
        "may submit jobs)",
    ),
]
ClientToken = Annotated[
    str | None,
    typer.Option(
        "--api-token",
        envvar=CLIENT_TOKEN_ENV,
        help=f"the API token to send as 'Authorization: Bearer' (env {CLIENT_TOKEN_ENV})",
        show_default=False,
        show_envvar=False,
        callback=secret_warning(CLIENT_TOKEN_ENV),
    ),
]


class TokenError(ValueError):
    """A token file that cannot be read; said in one line."""


def service_tokens(given: list[str] | None, file: Path | None) -> tuple[str, ...]:
    """The tokens of ``--api-token``, of ``--api-token-file`` and of ``DACIRCO_API_TOKENS``,
    stripped, each once."""
    tokens = list(given or [])
    tokens += os.environ.get(TOKENS_ENV, "").split(",")
    if file is not None:
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise TokenError(f"--api-token-file {file}: cannot be read: {reason}") from None
        tokens += [line.split("#", 1)[0] for line in text.splitlines()]
        if not any(t.strip() for t in tokens):
            raise TokenError(f"--api-token-file {file}: holds no token")
    tokens = [t.strip() for t in tokens if t.strip()]
    for number, token in enumerate(tokens, 1):
        if not (token.isascii() and token.isprintable()) or " " in token:
            # The token itself is never echoed: it may be a real one with a typo.
            raise TokenError(f"API token #{number}: only printable ASCII without spaces")
    return tuple(dict.fromkeys(tokens))


def bearer(token: str | None) -> dict[str, str]:
    """The headers a client sends: the token, if any."""
    token = (token or "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}
