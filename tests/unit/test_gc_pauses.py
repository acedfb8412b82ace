"""The controller's collector settings (``controller/gc_pauses.py``): every collection's
survivors are frozen (no collection looks at an object twice), cyclic garbage is still
collected (young at once, old at the next whole-heap collection, which ``run`` makes every
``major_every`` seconds), and ``close`` gives the process its collector back."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from dacirco.controller.gc_pauses import GcPauses


class Node:
    """A cycle of two when linked to another."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _linked() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def _cycle() -> weakref.ref[Node]:
    return weakref.ref(_linked())


@pytest.fixture
def pauses():
    before = gc.get_threshold()
    p = GcPauses(young=5_000, major_every=0.05)
    p.install()
    yield p
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
    gc.collect(0)
    assert young() is None


@pytest.mark.usefixtures("pauses")
def test_a_young_collections_survivors_are_frozen_none_looked_at_again() -> None:
    keep = [Node() for _ in range(100)]
    frozen = gc.get_freeze_count()
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen + 100  # the survivors
    assert not any(gc.is_tracked(n) and n in gc.get_objects(0) for n in keep[:3])
    assert len(gc.get_objects(1)) == len(gc.get_objects(2)) == 0  # nothing left to promote


def test_old_cycles_wait_for_the_whole_heap_collection(pauses) -> None:
    alive = _linked()  # a cycle alive at a collection: frozen with the rest
    gc.collect()
    old = weakref.ref(alive)
    del alive
    gc.collect()
    assert old() is not None  # garbage, but frozen: no collection looks at it
    assert pauses.major() >= 2  # the whole heap: the two nodes found unreachable
    assert old() is None and pauses.majors == 1
    assert gc.get_freeze_count() > 1_000  # and its survivors frozen again


def test_run_collects_the_whole_heap_every_major_every(pauses) -> None:
    alive = _linked()
    gc.collect()
    old = weakref.ref(alive)
    del alive

    async def a_while() -> None:
        task = asyncio.create_task(pauses.run())
        while pauses.majors < 2:  # 0.05 s apart
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(a_while(), 30))
    assert old() is None


def test_objects_frozen_by_someone_else_stay_frozen_and_a_closed_one_does_nothing() -> None:
    gc.freeze()  # another part of the process froze its objects
    try:
        p = GcPauses(young=5_000)
        p.install()
        p.close()
        assert gc.get_freeze_count() > 1_000
        gc.unfreeze()
        assert p.major() == 0 and gc.get_freeze_count() == 0  # closed: leaves it alone
        p._after("stop", {"generation": 0})  # a callback on its way when it closed
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
