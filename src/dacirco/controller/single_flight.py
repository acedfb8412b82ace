"""Storage reads shared by the requests that ask them at the same time.

A burst of submissions for one movie asks the storage the same question (its size and
metadata) hundreds of times a second: one call in a thread (a ``HEAD`` on S3) answers every
request that arrived while it was in flight. Nothing is kept after the call returns, so an
answer is never older than the request that waits for it: a movie added or removed is seen by
the next submission, exactly as without sharing.

``spacing``: calls for one key start at least this far apart. A request that comes less than
``spacing`` after the last call for its key started waits for the next call, which starts
when the spacing is over and answers every request that came meanwhile. Still no answer
older than its request; under a flood of submissions for one movie, one call (a thread's
wake-up, a ``HEAD``) per ``spacing`` instead of one per request, for at most ``spacing`` more
delay to each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
SPACING = 0.005  # seconds between two calls for one key (the controller's)
_REMEMBERED = 1024  # keys whose last call is kept before the old ones are dropped


class SingleFlight(Generic[T]):
    """``await flight(key)``: ``fetch(key)`` in a thread, one call per key at a time."""

    def __init__(self, fetch: Callable[[str], T], spacing: float = 0.0) -> None:
        self._fetch = fetch
        self.spacing = spacing
        self.calls = 0  # calls started, all keys
        self._flying: dict[str, asyncio.Future[T]] = {}
        self._started: dict[str, float] = {}  # key -> when its last call started (loop time)

    def __len__(self) -> int:
        return len(self._flying)

    def _forget(self, key: str, future: asyncio.Future[T]) -> None:
        if self._flying.get(key) is future:
            del self._flying[key]

    async def __call__(self, key: str) -> T:
        flying = self._flying.get(key)
        if flying is None or flying.done():  # done: answered before this request came
            loop = asyncio.get_running_loop()
            wait = self._started.get(key, float("-inf")) + self.spacing - loop.time()
            flying = asyncio.ensure_future(self._later(key, wait)) if wait > 0 else self._start(key)
            self._flying[key] = flying
            flying.add_done_callback(lambda f: self._forget(key, f))
        # shield: a request that gives up (its client left) does not cancel the others' call.
        return await asyncio.shield(flying)

    def _start(self, key: str) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        if self.spacing > 0:
            now = loop.time()
            if len(self._started) >= _REMEMBERED:  # only the keys asked within the spacing
                self._started = {k: t for k, t in self._started.items() if t + self.spacing > now}
            self._started[key] = now
        self.calls += 1
        return loop.run_in_executor(None, self._fetch, key)

    async def _later(self, key: str, wait: float) -> T:
        await asyncio.sleep(wait)
        return await self._start(key)
