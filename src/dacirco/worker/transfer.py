"""Downloads and uploads against signed storage URLs: streamed between the network and disk
(never a whole movie in memory) and retried when the failure may be temporary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

log = logging.getLogger("dacirco.worker")

CHUNK = 1 << 20
# Statuses worth another try; any other 4xx (expired or bad signature, missing object)
# would fail the same way again.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# The longest pause between two tries: with the agent's 8 tries (0.5, 1, 2, 4, 4, 4, 4 s), a
# transfer rides out a storage outage of about 20 s before the job's attempt fails.
MAX_BACKOFF = 4.0

Check = Callable[[], None]  # called between chunks; raises to abandon the transfer


class StorageError(Exception):
    """A download or upload that failed for good (after retries when they made sense)."""


class _Temporary(Exception):
    pass


class _Permanent(Exception):
    pass


async def download(
    client: httpx.AsyncClient,
    url: str,
    path: Path,
    *,
    check: Check,
    attempts: int = 3,
    backoff: float = 0.5,
) -> int:
    """GET ``url`` into ``path``; the number of bytes written."""

    async def attempt() -> int:
        async with client.stream("GET", url) as resp:
            _raise_for_status(resp)
            written = 0
            with path.open("wb") as out:
                async for chunk in resp.aiter_bytes(CHUNK):
                    check()
                    out.write(chunk)
                    written += len(chunk)
            return written

    return await _with_retries("download", attempt, attempts, backoff)


async def upload(
    client: httpx.AsyncClient,
    path: Path,
    url: str,
    *,
    check: Check,
    attempts: int = 3,
    backoff: float = 0.5,
) -> int:
    """PUT ``path`` to ``url``, streamed with its Content-Length; the number of bytes sent."""
    size = path.stat().st_size

    async def body() -> AsyncIterator[bytes]:
        with path.open("rb") as src:
            while chunk := src.read(CHUNK):
                check()
                yield chunk

    async def attempt() -> int:
        # An explicit Content-Length makes httpx send the body as is, not chunked: S3 needs it.
        headers = {"Content-Length": str(size), "Content-Type": "video/mp4"}
        resp = await client.put(url, content=body(), headers=headers)
        _raise_for_status(resp)
        return size

    return await _with_retries("upload", attempt, attempts, backoff)


async def _with_retries(
    what: str, attempt: Callable[[], Awaitable[int]], attempts: int, backoff: float
) -> int:
    attempts = max(1, attempts)
    delay = backoff
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except _Permanent as exc:
            raise StorageError(f"{what} failed: {exc}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise StorageError(f"{what} failed: bad URL: {exc}") from None
        except _Temporary as exc:
            reason = str(exc)
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if number == attempts:
            raise StorageError(f"{what} failed after {attempts} attempts: {reason}")
        log.warning("%s failed (%s); attempt %d of %d", what, reason, number + 1, attempts)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_for_status(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    reason = f"HTTP {resp.status_code} {resp.reason_phrase}"
    raise (_Temporary if resp.status_code in RETRYABLE_STATUS else _Permanent)(reason)
