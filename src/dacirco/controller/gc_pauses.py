"""Short garbage-collection pauses while the controller's memory grows with its queue.

CPython's collector is generational: an object is looked at by young collections, then by
collections of the middle generation, then by full collections of the whole heap. That pays
when most objects die young. A controller taking a catalog push does the opposite: it keeps
every job it accepts (a thousand a second) until a worker takes it. Each pass then looks at
jobs that are all alive, and the older passes hold the event loop long: with 20,000 jobs
queued, a full collection took 140 ms; with full collections kept short, a middle one came
about every 11 s and took 35 to 65 ms, every submission waiting behind it.

While the controller runs, ``GcPauses``:

- freezes what start-up left (modules, the recovered jobs): CPython's own advice for objects
  that live as long as the process (``gc.freeze``);
- after every collection, freezes its survivors: an object is looked at by one young
  collection, then never again until the next whole-heap collection, so no pause is longer
  than a young collection (its objects: ``young`` allocations' worth, about 10 ms);
- collects the youngest generation every ``young`` allocations instead of CPython's 700:
  fewer pauses, and the objects of a request in flight mostly freed before one comes;
- every ``major_every`` seconds (``run``), collects the whole heap once: unfreezes
  everything, collects, freezes the survivors. Only objects that die in a reference cycle
  need the collector at all (the others are freed the moment their last reference goes,
  frozen or not); those that were alive at a collection wait for that one, which bounds the
  memory they can hold to what the process makes of them in ``major_every`` seconds. (A
  minute of 1,000 submissions a second left none: ``docs/metrics.md``.)

``close()`` puts the collector back as it was: its thresholds, and nothing frozen, unless
something else had frozen objects before ``install`` (then everything stays frozen: a
whole-heap collection cannot tell their objects from the others, and freezes all it
leaves). Nothing here decides anything about jobs: it only changes when the collector runs.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

YOUNG = 10_000  # allocations between young collections (CPython: 700)
MAJOR_EVERY = 600.0  # seconds between two collections of the whole heap


class GcPauses:
    def __init__(self, young: int = YOUNG, major_every: float = MAJOR_EVERY) -> None:
        self.young = young
        self.major_every = major_every
        self.majors = 0  # whole-heap collections made
        self._thresholds = gc.get_threshold()
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
        self._installed = True

    def close(self) -> None:
        if not self._installed:
            return
        self._installed = False
        gc.callbacks.remove(self._after)
        gc.set_threshold(*self._thresholds)
        if not self._frozen_before:
            gc.unfreeze()

    def major(self) -> int:
        """One collection of the whole heap, its survivors frozen again; returns what it
        freed (objects found unreachable)."""
        if not self._installed:
            return 0
        gc.unfreeze()
        freed = gc.collect()  # its callback freezes the survivors
        self.majors += 1
        return freed

    async def run(self) -> None:
        """``major`` every ``major_every`` seconds, until canceled (the service's loop)."""
        while True:
            await asyncio.sleep(self.major_every)
            self.major()

    def _after(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and self._installed:  # (not: ``close`` ran while on its way)
            gc.freeze()
