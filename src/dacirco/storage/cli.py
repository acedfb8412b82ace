"""The storage options, written once and shared by ``serve``, ``controller`` and the
``catalog`` commands (``storage_options``); and ``dacirco storage serve`` (a local S3 server).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from dacirco.cli_options import Parameter, option, option_for, secret_warning, shared_options
from dacirco.config import default_data_dir
from dacirco.storage.base import BUCKET
from dacirco.storage.options import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    SECURE_ENV,
    S3Config,
    StorageOptions,
    env_endpoint,
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
        envvar=SECRET_KEY_ENV,
        show_default=False,
        help=f"s3: secret key (env {SECRET_KEY_ENV}; default pass4minio)",
        callback=secret_warning(SECRET_KEY_ENV),
    ),
]
S3Secure = Annotated[
    bool,
    typer.Option(
        "--s3-secure/--no-s3-secure", envvar=SECURE_ENV, help="s3: HTTPS to the S3 server"
    ),
]


def storage_parameters(**changes: object) -> list[Parameter]:
    """The storage options, with the defaults of ``StorageOptions`` and ``S3Config``; the
    server and port default to ``DACIRCO_S3_ENDPOINT``, else S3Config's (``s3_config``)."""
    return [
        option_for(StorageOptions, "kind", StorageKind, name="storage", **changes),
        option("minio_server", MinioServer, None, **changes),
        option("minio_port", MinioPort, None, **changes),
        option_for(S3Config, "access_key", MinioAccessKey, name="minio_access_key", **changes),
        option_for(S3Config, "secret_key", MinioSecretKey, name="minio_secret_key", **changes),
        option_for(S3Config, "secure", S3Secure, name="s3_secure", **changes),
    ]


def s3_config(
    server: str | None, port: int | None, access_key: str, secret_key: str, secure: bool
) -> S3Config:
    """The options, completed from ``DACIRCO_S3_ENDPOINT``, then the classic defaults."""
    env_host, env_port = env_endpoint() or (S3Config.host, S3Config.port)
    return S3Config(
        host=server or env_host,
        port=port or env_port,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
    )


def storage_from(
    storage: str,
    minio_server: str | None,
    minio_port: int | None,
    minio_access_key: str,
    minio_secret_key: str,
    s3_secure: bool,
) -> StorageOptions:
    """The storage section from the values of ``storage_parameters``."""
    s3 = s3_config(minio_server, minio_port, minio_access_key, minio_secret_key, s3_secure)
    return StorageOptions(kind=storage, s3=s3)


# A command that declares ``storage: StorageOptions`` gets the storage options.
storage_options = shared_options(storage_parameters(), storage_from, into="storage")


def describe(storage: StorageOptions, data_dir: Path) -> str:
    """Where the catalog is, for messages: the data dir or the bucket and its server."""
    return f"s3://{BUCKET} on {storage.s3.endpoint}" if storage.kind == "s3" else str(data_dir)


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
    port: Annotated[int, typer.Option("--port", "-p", help="S3 port")] = S3Config.port,
    access_key: Annotated[str, typer.Option(help="the access key to accept")] = S3Config.access_key,
    secret_key: Annotated[
        str,
        typer.Option(
            envvar=SECRET_KEY_ENV,
            show_envvar=False,
            help=f"its secret key (env {SECRET_KEY_ENV}; default pass4minio)",
            show_default=False,
            callback=secret_warning(SECRET_KEY_ENV),
        ),
    ] = S3Config.secret_key,
) -> None:
    """Run a SeaweedFS S3 server on 127.0.0.1 with one identity, until Ctrl-C."""
    from dacirco.storage.seaweed import SeaweedError, SeaweedServer

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
