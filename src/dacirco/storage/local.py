"""The embedded default storage: a folder under the data dir, laid out like the bucket.

``<root>/input-videos/<name>``, ``<root>/output-videos/<name>``; object metadata sits beside
them in ``<root>/.meta/<key>.json``. Workers reach objects only through the API's signed URLs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from dacirco.storage.base import BUCKET, ObjectInfo, StorageError, check_key, part_path
from dacirco.storage.signing import UrlSigner


class LocalStorage:
    def __init__(
        self,
        root: Path,
        base_url: str | None = None,
        signer: UrlSigner | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket = BUCKET
        self.root = Path(root)
        self.base_url = base_url
        self.signer = signer or UrlSigner()
        self._clock = clock
        for prefix in ("input-videos", "output-videos", ".meta"):
            (self.root / prefix).mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def sweep_partial(self, stale_inputs_after: float = 3600.0) -> int:
        """Delete the ``.part`` files that uploads cut short left (a service killed mid-upload).
        Outputs are written only by this service's file route, which holds the data dir: at
        its start, every partial output is abandoned. Inputs may be added by ``dacirco catalog
        add`` at any time: only one untouched for ``stale_inputs_after`` seconds goes."""
        now, removed = self._clock(), 0
        for prefix, max_age in (("output-videos", 0.0), ("input-videos", stale_inputs_after)):
            folder = self.root / prefix
            # A streaming job's files are one folder down (output-videos/<folder>/<file>).
            for part in [*folder.glob(".*.part"), *folder.glob("*/.*.part")]:
                try:
                    if now - part.stat().st_mtime >= max_age:
                        part.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def _meta_path(self, key: str) -> Path:
        return self.root / ".meta" / (check_key(key) + ".json")

    def stat(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat {key}: {exc}") from exc
        metadata: dict[str, str] = {}
        meta = self._meta_path(key)
        if meta.exists():
            try:
                metadata = {str(k): str(v) for k, v in json.loads(meta.read_text()).items()}
            except (OSError, ValueError):
                metadata = {}
        return ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime, metadata=metadata)

    def list(self, prefix: str, metadata: bool = True) -> list[ObjectInfo]:
        # Metadata is a small file beside each object: read either way.
        folder = self.root / prefix.strip("/")
        if not folder.is_dir():
            return []
        infos = []
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                info = self.stat(f"{prefix.strip('/')}/{entry.name}")
                if info is not None:
                    infos.append(info)
        return infos

    def _url(self, method: str, key: str, ttl: float, task: str | None = None) -> str:
        if self.base_url is None:
            raise StorageError("local storage has no base URL: signed URLs need the API's URL")
        expires = int(self._clock() + ttl)
        return self.signer.url(self.base_url, method, check_key(key), expires, task)

    def get_url(self, key: str, ttl: float) -> str:
        return self._url("GET", key, ttl)

    def put_url(self, key: str, ttl: float, task: str) -> str:
        """A PUT URL bound to ``task``: the files route takes it only while that task is open."""
        return self._url("PUT", key, ttl, task)

    def check(
        self, method: str, key: str, expires: int, sig: str, task: str | None = None
    ) -> str | None:
        """Why a signed URL is refused (on this storage's clock, the one that signed it)."""
        if method == "PUT" and not task:
            return "an upload URL must name its task"
        return self.signer.check(method, key, expires, sig, self._clock(), task)

    def folder_for(self, key: str) -> Path:
        """The object's path, its folder made if it is in one (a streaming job's file)."""
        dest = self.path(key)
        if dest.parent != self.root / key.split("/", 1)[0]:
            dest.parent.mkdir(exist_ok=True)
        return dest

    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        tmp = None
        try:
            dest = self.folder_for(key)
            tmp = part_path(dest)
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
            if metadata is not None:
                self._meta_path(key).parent.mkdir(parents=True, exist_ok=True)
                self._meta_path(key).write_text(json.dumps(metadata, sort_keys=True))
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def get_file(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self.path(key), path)
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)
        if key.count("/") == 2:  # a streaming job's folder goes with its last file
            with contextlib.suppress(OSError):
                path.parent.rmdir()
