"""The Storage protocol: where movies live, and signed URLs so workers never hold credentials."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dacirco.domain import MAX_FILE_NAME, MAX_OBJECT_NAME, shown

BUCKET = "videos"
INPUT_PREFIX = "input-videos/"
OUTPUT_PREFIX = "output-videos/"

_KEY_RE = re.compile(r"^(input-videos|output-videos)/[A-Za-z0-9_][A-Za-z0-9._-]*$")
# A streaming job's files sit in a folder of their own: output-videos/<folder>/<file>.
_IN_FOLDER_RE = re.compile(
    r"^output-videos/[A-Za-z0-9_][A-Za-z0-9._-]*/[A-Za-z0-9_][A-Za-z0-9._-]*$"
)


class StorageError(Exception):
    """The storage could not be reached or refused an operation (temporary)."""


class InvalidKey(ValueError):
    """A key outside the bucket layout (for instance one that tries to escape it), or whose
    object name is too long to be stored (see ``domain.MAX_OBJECT_NAME``)."""


def check_key(key: str) -> str:
    """``key`` if it is in the bucket's layout: ``input-videos/<name>``,
    ``output-videos/<name>`` or ``output-videos/<folder>/<name>``, each part a file name."""
    for name in key.split("/")[1:]:
        if len(name) > MAX_OBJECT_NAME:
            raise InvalidKey(
                f"object name {shown(name)} is too long: at most {MAX_OBJECT_NAME} characters "
                f"(a file name of at most {MAX_FILE_NAME} bytes while it is written)"
            )
    if not (_KEY_RE.match(key) or _IN_FOLDER_RE.match(key)) or ".." in key:
        raise InvalidKey(f"invalid object key {shown(key, 80)}")
    return key


def folder_of(name: str) -> str | None:
    """The folder of an output's name (``<folder>/<file>``: a streaming job's), or None."""
    folder, sep, _ = name.rpartition("/")
    return folder if sep else None


def delete_output(storage: Storage, name: str) -> None:
    """Delete an output: one object, or every file of a streaming job's folder."""
    folder = folder_of(name)
    if folder is None:
        storage.delete(output_key(name))
        return
    for info in storage.list(OUTPUT_PREFIX + folder + "/", metadata=False):
        storage.delete(info.key)


def part_path(dest: Path) -> Path:
    """Where an object is written until it is complete, beside it: a name of its own per
    writer, at most ``MAX_FILE_NAME`` bytes long for a name that passed ``check_key``."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")


def input_key(name: str) -> str:
    return check_key(INPUT_PREFIX + name)


def output_key(name: str) -> str:
    return check_key(OUTPUT_PREFIX + name)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def file(self) -> str:
        return self.key.rsplit("/", 1)[1]


class Storage(Protocol):
    """Blocking calls: the controller runs them in a thread, never in its event loop."""

    bucket: str

    def stat(self, key: str) -> ObjectInfo | None: ...
    # ``metadata`` false: sizes and times only (what S3 lists give without a stat each).
    def list(self, prefix: str, metadata: bool = True) -> list[ObjectInfo]: ...
    def get_url(self, key: str, ttl: float) -> str: ...
    # ``task``: the task whose output this is; a backend that can (local) binds the URL to
    # it, so that the URL stops working when the task is no longer open.
    def put_url(self, key: str, ttl: float, task: str) -> str: ...
    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def delete(self, key: str) -> None: ...
