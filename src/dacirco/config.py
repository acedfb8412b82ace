"""Defaults and the data dir: where the catalog, outputs and the SQLite state live."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dacirco.storage.options import S3Config

DATA_DIR_ENV = "DACIRCO_DATA_DIR"
PORT_ENV = "PORT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_CONTROLLER_PORT = 8001


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def default_port() -> int:
    value = os.environ.get(PORT_ENV)
    if value and value.isdigit():
        return int(value)
    return DEFAULT_PORT


def storage_root(data_dir: Path) -> Path:
    """The local bucket folder: ``<data dir>/videos``."""
    return Path(data_dir) / "videos"


def database_path(data_dir: Path) -> Path:
    return Path(data_dir) / "dacirco.sqlite3"


STORAGES = ("local", "s3")


def open_storage(
    kind: str, data_dir: Path, s3: S3Config | None = None, base_url: str | None = None
):  # -> Storage
    """The storage ``kind`` names (``local`` or ``s3``); an S3 one is checked (reached with
    its credentials, bucket created if missing): a ``StorageError`` in one line otherwise."""
    if kind == "s3":
        from dacirco.storage.options import S3Config
        from dacirco.storage.s3 import S3Storage

        storage = S3Storage(s3 or S3Config())
        storage.check()
        return storage
    if kind != "local":
        raise ValueError(f"--storage {kind!r}: choose one of {', '.join(STORAGES)}")
    return open_local_storage(data_dir, base_url=base_url)


def open_local_storage(data_dir: Path, base_url: str | None = None):  # -> LocalStorage
    from dacirco.storage.local import LocalStorage

    return LocalStorage(storage_root(data_dir), base_url=base_url)
