"""HMAC-signed, expiring URLs: a worker may GET or PUT one object until a deadline, nothing else;
a PUT URL names its task too, so that it can be refused once that task is no longer open."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote, urlencode


class UrlSigner:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def signature(self, method: str, key: str, expires: int, task: str | None = None) -> str:
        message = f"{method.upper()}\n{key}\n{expires}\n{task or ''}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(
        self, base_url: str, method: str, key: str, expires: int, task: str | None = None
    ) -> str:
        fields: dict[str, object] = {"expires": expires}
        if task:
            fields["task"] = task
        fields["sig"] = self.signature(method, key, expires, task)
        return f"{base_url.rstrip('/')}/files/{quote(key)}?{urlencode(fields)}"

    def check(
        self, method: str, key: str, expires: int, sig: str, now: float, task: str | None = None
    ) -> str | None:
        """None when the URL is valid, else the reason it is refused."""
        if now > expires:
            return "signed URL expired"
        expected = self.signature(method, key, expires, task)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            return "bad signature for this object, method and task"
        return None
