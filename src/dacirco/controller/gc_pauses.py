"""Short garbage-collection pauses while the controller's memory grows with its queue.

CPython's collector looks at the whole heap (a *full* collection) each time the objects that
survived two collections have grown by a quarter. A controller taking a catalog push holds
tens of thousands of waiting jobs, so its heap grows steadily and full collections come again
and again, each longer than the last: with 20,000 jobs queued, a full collection held the
event loop for 140 ms, and every submission waiting behind it was late by as much.

While the controller runs, ``GcPauses``:

- freezes what start-up left (modules, the recovered jobs): CPython's own advice for objects
  that live as long as the process (``gc.freeze``);
- after each full collection, freezes its survivors too, so the next one looks only at what
  came since: a full collection then costs what the heap grew by, not the heap;
- every ``major_every`` seconds, unfreezes everything once, so the next full collection
  looks at the whole heap again. Only objects that die in a reference cycle need the
  collector at all (the others are freed the moment their last reference goes, frozen or
  not); those among the frozen ones wait for that collection, which bounds the memory they
  can hold to what the process makes of them in ``major_every`` seconds;
- collects the youngest generation every ``young`` allocations instead of CPython's 700:
  fewer, slightly longer young collections, and fewer short-lived objects promoted.

``close()`` puts the collector back as it was (thresholds, nothing frozen unless something
else had frozen objects before ``install``). Nothing here decides anything about jobs: it
only changes when the collector runs.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

YOUNG = 10_000  # allocations between young collections (CPython: 700)
MAJOR_EVERY = 600.0  # seconds between two collections of the whole heap


class GcPauses:
    def __init__(
        self,
        young: int = YOUNG,
        major_every: float = MAJOR_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.young = young
        self.major_every = major_every
        self.clock = clock
        self.majors = 0  # whole-heap collections started by an unfreeze
        self._thresholds = gc.get_threshold()
        self._last_major = clock()
        self._installed = False
        self._frozen_before = False  # someone else had frozen objects: theirs stay so

    def install(self) -> None:
        """From now on (call it once start-up's objects are made)."""
        if self._installed:
            return
        self._frozen_before = gc.get_freeze_count() > 0
        gc.freeze()  # no collection first: start-up waits for none (the first major one frees)
        _, middle, old = self._thresholds
        gc.set_threshold(self.young, middle, old)
        gc.callbacks.append(self._after)
        self._last_major = self.clock()
        self._installed = True

    def close(self) -> None:
        if not self._installed:
            return
        self._installed = False
        gc.callbacks.remove(self._after)
        gc.set_threshold(*self._thresholds)
        if not self._frozen_before:
            gc.unfreeze()

    def _after(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != 2 or not self._installed:
            return  # (not installed: ``close`` ran while this was on its way)
        now = self.clock()
        if now - self._last_major >= self.major_every:
            gc.unfreeze()  # the next full collection looks at the whole heap
            self._last_major = now
            self.majors += 1
        else:
            gc.freeze()
