"""Storage options shared by ``serve``, ``controller`` and ``catalog``, and ``dacirco storage
serve`` (a local S3 server)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from dacirco.config import default_data_dir
from dacirco.storage.base import BUCKET
from dacirco.storage.s3 import ACCESS_KEY_ENV, SECRET_KEY_ENV, SECURE_ENV, S3Config, env_endpoint
from dacirco.storage.seaweed import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_S3_PORT,
    DEFAULT_SECRET_KEY,
    SeaweedError,
    SeaweedServer,
)

StorageKind = Annotated[
    str,
    typer.Option(
        "--storage", envvar="DACIRCO_STORAGE", help="where movies live: local (data dir) or s3"
    ),
]
MinioServer = Annotated[
    str | None,
    typer.Option(help="s3: host of the S3 server (env DACIRCO_S3_ENDPOINT=host:port; 127.0.0.1)"),
]
MinioPort = Annotated[int | None, typer.Option(help="s3: port of the S3 server (default 9000)")]
MinioAccessKey = Annotated[str, typer.Option(envvar=ACCESS_KEY_ENV, help="s3: access key")]
MinioSecretKey = Annotated[
    str,
    typer.Option(
        envvar=SECRET_KEY_ENV, show_default=False, help="s3: secret key (default pass4minio)"
    ),
]
S3Secure = Annotated[
    bool,
    typer.Option(
        "--s3-secure/--no-s3-secure", envvar=SECURE_ENV, help="s3: HTTPS to the S3 server"
    ),
]


def s3_config(
    server: str | None, port: int | None, access_key: str, secret_key: str, secure: bool
) -> S3Config:
    """The options, completed from ``DACIRCO_S3_ENDPOINT``, then the classic defaults."""
    env_host, env_port = env_endpoint() or ("127.0.0.1", DEFAULT_S3_PORT)
    return S3Config(
        host=server or env_host,
        port=port or env_port,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
    )


def describe(kind: str, data_dir: Path, s3: S3Config) -> str:
    """Where the catalog is, for messages: the data dir or the bucket and its server."""
    return f"s3://{BUCKET} on {s3.endpoint}" if kind == "s3" else str(data_dir)


storage_app = typer.Typer(
    help="Object storage: run a local S3 server.", no_args_is_help=True, add_completion=False
)


@storage_app.command("serve")
def serve(
    data_dir: Annotated[
        Path,
        typer.Option(
            default_factory=default_data_dir,
            show_default=False,
            help="S3 data goes to <data dir>/s3 (env DACIRCO_DATA_DIR; default ./data)",
        ),
    ],
    port: Annotated[int, typer.Option("--port", "-p", help="S3 port")] = DEFAULT_S3_PORT,
    access_key: Annotated[str, typer.Option(help="the access key to accept")] = DEFAULT_ACCESS_KEY,
    secret_key: Annotated[
        str, typer.Option(help="its secret key", show_default=False)
    ] = DEFAULT_SECRET_KEY,
) -> None:
    """Run a SeaweedFS S3 server on 127.0.0.1 with one identity, until Ctrl-C."""
    server = SeaweedServer(
        Path(data_dir), s3_port=port, access_key=access_key, secret_key=secret_key
    )
    try:
        server.start()
    except SeaweedError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may come in ignored
        signal.signal(signum, _terminate)
    typer.echo(
        f"S3 listening on http://{server.endpoint} (access key {access_key!r}), "
        f"data in {server.root}; Ctrl-C stops it"
    )
    try:
        while server.running():
            time.sleep(0.5)
        typer.secho(f"error: weed stopped by itself; {server.tail()}", err=True, fg="red")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping S3")
    finally:
        server.stop()
