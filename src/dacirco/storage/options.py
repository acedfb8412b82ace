"""The storage section of a service's options: which storage, and where the S3 server is.

Plain data, quick to import (the ``minio`` SDK is only loaded by ``storage.s3``); the command
line of ``serve``, ``controller`` and ``catalog`` is built from these defaults
(``storage.cli``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

ENDPOINT_ENV = "DACIRCO_S3_ENDPOINT"
ACCESS_KEY_ENV = "DACIRCO_S3_ACCESS_KEY"
SECRET_KEY_ENV = "DACIRCO_S3_SECRET_KEY"
SECURE_ENV = "DACIRCO_S3_SECURE"


@dataclass(frozen=True)
class S3Config:
    """Where the S3 server is and who we are to it."""

    host: str = "127.0.0.1"
    port: int = 9000
    access_key: str = "minio"
    secret_key: str = "pass4minio"
    secure: bool = False

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class StorageOptions:
    kind: str = "local"  # local: <data dir>/videos; s3: bucket videos on an S3 server
    s3: S3Config = field(default_factory=S3Config)  # used when kind is s3


def env_endpoint() -> tuple[str, int] | None:
    """``DACIRCO_S3_ENDPOINT`` (``host:port``) split, or None if unset."""
    value = os.environ.get(ENDPOINT_ENV, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        return (value, S3Config.port)
    return (host.strip("[]"), int(port))
