"""The simulated clock and its event heap.

Events are ``(time, seq, kind, data)``; ``seq`` keeps insertion order among equal times, so a
run is deterministic. ``pop_batch`` hands every event of the earliest time at once: the
simulated controller, like the real one, reacts to simultaneous events with one policy call.
"""

from __future__ import annotations

import heapq
from typing import Any


class Engine:
    __slots__ = ("_heap", "_seq", "now")

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, int, Any]] = []
        self._seq = 0

    def at(self, time: float, kind: int, data: Any = None) -> None:
        """Schedule an event; a time in the past is a bug of the caller."""
        if time < self.now:
            raise ValueError(f"event at {time} is before now ({self.now})")
        self._seq += 1
        heapq.heappush(self._heap, (time, self._seq, kind, data))

    def __len__(self) -> int:
        return len(self._heap)

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_batch(self) -> list[tuple[int, Any]]:
        """Every event of the earliest time, in insertion order; the clock moves to that time."""
        heap = self._heap
        time, _, kind, data = heapq.heappop(heap)
        self.now = time
        batch = [(kind, data)]
        while heap and heap[0][0] == time:
            _, _, kind, data = heapq.heappop(heap)
            batch.append((kind, data))
        return batch
