"""Signatures of webhook deliveries (HMAC-SHA256 over ``"<timestamp>.<body>"``) and the
service's webhook secret."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SIGNATURE_HEADER = "DaCirco-Signature"
EVENT_ID_HEADER = "DaCirco-Event-Id"
SECRET_FILE = "webhook-secret"
DEFAULT_TOLERANCE = 300.0


def _digest(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``DaCirco-Signature`` header's value: ``t=<timestamp>,v1=<hex digest>``."""
    return f"t={int(timestamp)},v1={_digest(secret, body, int(timestamp))}"


def headers(secret: bytes, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Every header a delivery carries."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        EVENT_ID_HEADER: event_id,
    }


def verify(
    secret: bytes, body: bytes, header: str, now: float, tolerance: float = DEFAULT_TOLERANCE
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds
    of ``now`` (older or newer is refused: a replayed delivery stops being valid). Any ``v1``
    of the header may match (several are sent while a secret is being changed)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    # Every candidate is compared, each in constant time.
    return any([hmac.compare_digest(expected, c) for c in candidates])


def load_or_create_secret(data_dir: Path, given: str | None) -> bytes:
    """The operator's ``--webhook-secret`` if given; else the one kept in
    ``<data_dir>/webhook-secret`` (mode 0600), created at random the first time."""
    if given is not None and given.strip():
        return given.strip().encode()
    path = Path(data_dir) / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # Written whole to a private file, then linked into place: a reader never sees it half
    # written, and of two processes creating it at once, both end up using the first one.
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read(path)
    finally:
        tmp.unlink(missing_ok=True)
    return value.encode()


def _read(path: Path) -> bytes:
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"{path}: the webhook secret file is empty")
    return value.encode()
