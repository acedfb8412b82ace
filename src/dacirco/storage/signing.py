"""HMAC-signed, expiring URLs: a worker may GET or PUT one object until a deadline, nothing else."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote, urlencode


class UrlSigner:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def signature(self, method: str, key: str, expires: int) -> str:
        message = f"{method.upper()}\n{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(self, base_url: str, method: str, key: str, expires: int) -> str:
        query = urlencode({"expires": expires, "sig": self.signature(method, key, expires)})
        return f"{base_url.rstrip('/')}/files/{quote(key)}?{query}"

    def check(self, method: str, key: str, expires: int, sig: str, now: float) -> str | None:
        """None when the URL is valid, else the reason it is refused."""
        if now > expires:
            return "signed URL expired"
        if not hmac.compare_digest(self.signature(method, key, expires).encode(), sig.encode()):
            return "bad signature for this object and method"
        return None
