"""The controller's collector settings (``controller/gc_pauses.py``): full collections look
only at what came since the last one, cyclic garbage is still collected (young at once, old
at the next whole-heap collection), and ``close`` gives the process its collector back."""

from __future__ import annotations

import gc
import weakref

import pytest

from dacirco.controller.gc_pauses import GcPauses


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A cycle of two when linked to another."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def pauses():
    clock = Clock()
    before = gc.get_threshold()
    p = GcPauses(young=5_000, major_every=60.0, clock=clock)
    p.install()
    yield p, clock
    p.close()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert p._after not in gc.callbacks


@pytest.mark.usefixtures("pauses")
def test_installed_it_freezes_start_up_and_collects_young_less_often() -> None:
    assert gc.get_freeze_count() > 1_000  # the modules, the test session...
    assert gc.get_threshold()[0] == 5_000


@pytest.mark.usefixtures("pauses")
def test_cycles_that_die_young_are_collected_at_once() -> None:
    young = _cycle()
    gc.collect()
    assert young() is None


def test_old_cycles_wait_for_the_whole_heap_collection(pauses) -> None:
    p, clock = pauses
    keep = [_cycle()]
    alive = keep[0]()  # a cycle that lives through a full collection: frozen with the rest
    gc.collect()
    frozen = gc.get_freeze_count()
    old = weakref.ref(alive)
    del alive, keep
    gc.collect()
    assert old() is not None  # garbage, but frozen: a full collection does not look at it
    assert gc.get_freeze_count() >= frozen - 2
    clock.now = 61.0
    gc.collect()  # after it: everything unfrozen, the next one looks at the whole heap
    assert p.majors == 1 and gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None
    assert gc.get_freeze_count() > 0  # and its survivors frozen again
