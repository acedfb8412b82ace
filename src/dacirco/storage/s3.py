"""S3 storage (MinIO, SeaweedFS, Ceph, AWS) on the ``minio`` SDK.

Bucket ``videos`` with ``input-videos/`` and ``output-videos/`` (SPEC §2). Workers get presigned
GET/PUT URLs only, never the credentials. Every failure to reach S3, or any refusal, surfaces as
a ``StorageError`` carrying the reason.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from dacirco.storage.base import BUCKET, ObjectInfo, StorageError, check_key
from dacirco.storage.options import S3Config

META_PREFIX = "x-amz-meta-"
REGION = "us-east-1"  # presigning needs one; set, it costs no request
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}
)
MAX_URL_TTL = 7 * 24 * 3600  # S3's limit for a presigned URL

# urllib3 logs each retry of ours; the StorageError that follows says it once.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


POOL_SIZE = 10  # connections kept open to the S3 server (and HEADs at once in ``list``)


def _http_client(secure: bool) -> urllib3.PoolManager:
    # Fail fast when S3 is down (the SDK's default retries for a minute); reads may be long.
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3.0, read=120.0),
        maxsize=POOL_SIZE,
        cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=2, connect=1, backoff_factor=0.2, status_forcelist=[502, 503]),
    )


class S3Storage:
    """The Storage protocol over an S3 bucket; calls block (run them off the event loop)."""

    def __init__(self, config: S3Config, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.config = config
        self.client = Minio(
            config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=REGION,
            http_client=_http_client(config.secure),
        )

    def _error(self, what: str, exc: Exception) -> StorageError:
        if isinstance(exc, S3Error):
            if exc.code in CREDENTIAL_CODES:
                reason = (
                    f"S3 refused the credentials for access key {self.config.access_key!r} "
                    f"({exc.code})"
                )
            else:
                reason = f"S3 error {exc.code}: {exc.message}"
        elif isinstance(exc, Urllib3Error | OSError):
            reason = f"cannot reach S3 at {self.config.endpoint}: {_root_cause(exc)}"
        else:
            reason = f"S3 at {self.config.endpoint}: {exc}"
        return StorageError(f"{what}: {reason}")

    def check(self) -> None:
        """Reach S3 with our credentials and create the bucket if missing (a StorageError if
        S3 cannot be reached or refuses us)."""
        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            if isinstance(exc, S3Error) and exc.code == "BucketAlreadyOwnedByYou":
                return
            raise self._error("storage", exc) from None

    def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        try:
            obj = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            if (
                exc.response is not None
                and exc.response.status == 404
                and exc.code != ("NoSuchBucket")
            ):
                return None
            raise self._error(f"cannot stat {key}", exc) from None
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            raise self._error(f"cannot stat {key}", exc) from None
        modified = obj.last_modified.timestamp() if obj.last_modified else 0.0
        return ObjectInfo(
            key=key, size=int(obj.size or 0), modified=modified, metadata=user_metadata(obj)
        )

    def list(self, prefix: str, metadata: bool = True) -> list[ObjectInfo]:
        """Objects under ``prefix``, with their metadata (one stat each: S3 lists carry none)
        unless ``metadata`` is false (sizes from the listing alone: a streaming job's folder
        of thousands of segments)."""
        prefix = prefix.strip("/") + "/"
        try:
            found = {
                o.object_name: o
                for o in self.client.list_objects(self.bucket, prefix=prefix)
                if o.object_name and not o.is_dir
            }
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            raise self._error(f"cannot list {prefix}", exc) from None
        shown = [
            (key, obj)
            for key, obj in sorted(found.items())
            if (name := key[len(prefix) :]) and not name.startswith(".")
        ]
        if not metadata:
            return [
                ObjectInfo(
                    key=key,
                    size=int(obj.size or 0),
                    modified=obj.last_modified.timestamp() if obj.last_modified else 0.0,
                )
                for key, obj in shown
            ]
        # One HEAD each, several at a time (as many as the connection pool keeps open).
        if len(shown) <= 1:
            stats = [self.stat(key) for key, _ in shown]
        else:
            with ThreadPoolExecutor(min(POOL_SIZE, len(shown))) as pool:
                stats = list(pool.map(self.stat, (key for key, _ in shown)))
        return [info for info in stats if info is not None]

    def _presign(self, method: str, key: str, ttl: float) -> str:
        expires = timedelta(seconds=max(1, min(int(ttl), MAX_URL_TTL)))
        try:
            if method == "GET":
                return self.client.presigned_get_object(self.bucket, check_key(key), expires)
            return self.client.presigned_put_object(self.bucket, check_key(key), expires)
        except (MinioException, Urllib3Error, OSError) as exc:
            raise self._error(f"cannot sign a URL for {key}", exc) from None

    def get_url(self, key: str, ttl: float) -> str:
        return self._presign("GET", key, ttl)

    def put_url(self, key: str, ttl: float, task: str) -> str:
        """A presigned PUT URL: S3 cannot bind it to ``task`` nor revoke it, only let it expire
        (the controller asks for a short ``ttl``, just before the upload)."""
        return self._presign("PUT", key, ttl)

    def put_file(self, key: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        """Upload ``path`` streamed from disk (multipart for big files), with user metadata."""
        try:
            self.client.fput_object(
                self.bucket,
                check_key(key),
                str(path),
                content_type="video/mp4",
                metadata=dict(metadata) if metadata else None,  # type: ignore[arg-type]
            )
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            raise self._error(f"cannot write {key}", exc) from None

    def get_file(self, key: str, path: Path) -> None:
        try:
            self.client.fget_object(self.bucket, check_key(key), str(path))
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            raise self._error(f"cannot read {key}", exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, check_key(key))
        except (MinioException, Urllib3Error, OSError, ValueError) as exc:
            raise self._error(f"cannot delete {key}", exc) from None


def user_metadata(obj: object) -> dict[str, str]:
    """The object's user metadata with the lowercase keys the local backend uses
    (``X-Amz-Meta-Duration`` → ``duration``)."""
    headers = getattr(obj, "metadata", None) or {}
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = str(name).lower()
        if lower.startswith(META_PREFIX):
            out[lower[len(META_PREFIX) :]] = str(value)
    return out


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a urllib3 error (``Connection refused`` rather than the wrapper)."""
    reason: BaseException = exc
    seen = 0
    while seen < 5:
        inner = getattr(reason, "reason", None) or reason.__cause__ or reason.__context__
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason, seen = inner, seen + 1
    text = str(reason)
    if "Connection refused" in text or isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return text.split(": ", 1)[-1] if text else type(reason).__name__
