"""The node agent's rule, with a scripted owner's load (what ``LoadMeter`` would measure):
no offer while the owner's load is above the threshold or has not been below it for
``preempt_after`` seconds; pilots preempted once it stayed above that long, the controller
told before they are stopped. The processes and the controller are exercised for real by
``tests/e2e/test_pilots.py``."""

from __future__ import annotations

import asyncio
import time

from dacirco.nodeagent.agent import AgentOptions, NodeAgent


class Scripted:
    """The owner's load, as the test sets it."""

    cores = 4

    def __init__(self) -> None:
        self.load = 0.0

    def sample(self) -> float:
        return self.load


async def until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def agent(**kw: float) -> tuple[NodeAgent, Scripted]:
    options = AgentOptions(
        controller="http://127.0.0.1:1",
        token=None,
        node="idle-desk",
        memory_gb=4.0,
        max_owner_load=2.0,
        sample_interval=0.02,
        window=0.05,
        **kw,  # type: ignore[arg-type]
    )
    a = NodeAgent(options)
    meter = a.meter = Scripted()  # type: ignore[assignment]
    return a, meter


async def test_the_offer_waits_for_a_calm_owner() -> None:
    a, meter = agent(preempt_after=1.0)
    meter.load = 1.0
    a._sample()
    assert a.offer() == 0  # not calm for preempt_after yet
    await asyncio.sleep(1.05)
    a._sample()
    assert a.offer() == 3  # the idle cores: 4 less the owner's 1
    meter.load = 3.5
    await asyncio.sleep(0.06)  # the window forgets the calm samples
    a._sample()
    assert a.load > a.threshold and a.offer() == 0


async def test_a_busy_owner_preempts_the_pilots_and_the_controller_hears_first() -> None:
    a, meter = agent(preempt_after=0.1)
    a.pilots = {"w1": time.monotonic(), "w2": time.monotonic()}
    stopped: list[tuple[str, bool]] = []

    async def stop(worker_id: str) -> None:  # the local runtime's stop, recorded
        stopped.append((worker_id, any(e.worker_id == worker_id for e in a.exits)))

    a.runtime.stop = stop  # type: ignore[method-assign]
    meter.load = 5.0
    watch = asyncio.create_task(a.watch())
    await until(lambda: bool(a.exits))
    assert [e.cause for e in a.exits] == ["preempted", "preempted"]
    assert "owner's load 5.0 cores above 2.0" in a.exits[0].reason
    assert stopped == []  # not before the controller is told (or TELL_FIRST passed)
    a.exits.clear()  # a heartbeat told it
    await until(lambda: len(stopped) == 2)
    assert sorted(stopped) == [("w1", False), ("w2", False)] and a.pilots == {}
    a._stopping = True
    watch.cancel()
