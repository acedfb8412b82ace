"""Storage reads shared by the requests that ask them at the same time.

A burst of submissions for one movie asks the storage the same question (its size and
metadata) hundreds of times a second: one call in a thread (a ``HEAD`` on S3) answers every
request that arrived while it was in flight. Nothing is kept after the call returns, so an
answer is never older than the request that waits for it: a movie added or removed is seen by
the next submission, exactly as without sharing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight(key)``: ``fetch(key)`` in a thread, one call per key at a time."""

    def __init__(self, fetch: Callable[[str], T]) -> None:
        self._fetch = fetch
        self._flying: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._flying)

    def _forget(self, key: str, future: asyncio.Future[T]) -> None:
        if self._flying.get(key) is future:
            del self._flying[key]

    async def __call__(self, key: str) -> T:
        flying = self._flying.get(key)
        if flying is None or flying.done():  # done: answered before this request came
            flying = asyncio.get_running_loop().run_in_executor(None, self._fetch, key)
            self._flying[key] = flying
            flying.add_done_callback(lambda f: self._forget(key, f))
        # shield: a request that gives up (its client left) does not cancel the others' call.
        return await asyncio.shield(flying)
