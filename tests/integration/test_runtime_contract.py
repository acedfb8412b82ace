"""The Runtime contract, one suite for every runtime (``runtime_contract.FACTORIES``):

- ``start`` returns at once; the worker registers later, with the node, cpus and memory of
  its flavor;
- ``stop`` frees it (its process or actor is gone; stopping again is a no-op);
- ``close`` leaves nothing running;
- ``nodes`` reports capacity, and a worker goes to the node its spec names (the controller's
  choice, ``core.placement.place``);
- a worker that dies on its own is reported to the exit handler as data (a ``WorkerExit``
  with ``ExitCause.CRASHED`` and a reason: an event, not a hang).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from dacirco.core.placement import place
from dacirco.domain import FLAVORS, ExitCause
from dacirco.policies.base import NodeView
from dacirco.runtimes.base import WorkerExit, WorkerSpec
from tests.integration.runtime_contract import FACTORIES, FIXTURES, Sink

pytestmark = pytest.mark.slow

START_RETURNS_WITHIN = 2.0  # seconds: start launches, it does not wait for the boot
REGISTERS_WITHIN = 60.0


@pytest.fixture(params=sorted(FACTORIES))
def runtime_name(request: pytest.FixtureRequest) -> str:
    if request.param in FIXTURES:  # a real cluster: started once, or the test says why not
        request.getfixturevalue(FIXTURES[request.param])
    return request.param


def spec(sink: Sink, flavor: str = "tiny", node: str | None = None) -> WorkerSpec:
    wid = str(uuid.uuid4())
    return WorkerSpec(
        worker_id=wid,
        name=f"contract-{wid[:8]}",
        flavor=FLAVORS[flavor],
        controller_url=sink.url,
        token=f"token-{wid}",
        node=node,
    )


async def registered(sink: Sink, worker_id: str) -> dict:
    return await asyncio.to_thread(sink.wait_registered, worker_id, REGISTERS_WITHIN)


async def test_start_returns_at_once_and_the_worker_registers(
    runtime_name: str, sink: Sink, tmp_path: Path
) -> None:
    async with FACTORIES[runtime_name](tmp_path) as runtime:
        nodes = runtime.nodes()
        assert nodes and all(n.cpus >= 1 and n.memory_gb > 0 for n in nodes)
        views = [NodeView(n.name, n.cpus, n.memory_gb, n.cpus, n.memory_gb) for n in nodes]
        node = place(views, FLAVORS["tiny"])
        assert node in {n.name for n in nodes}
        s = spec(sink, "tiny", node)
        t0 = time.monotonic()
        await runtime.start(s)
        assert time.monotonic() - t0 < START_RETURNS_WITHIN
        body = await registered(sink, s.worker_id)
        assert body["cpus"] == 1 and body["memory_gb"] == 2.0 and body["name"] == s.name
        assert sink.tokens[s.worker_id] == f"Bearer {s.token}"  # its own token, nothing else
        await runtime.stop(s.worker_id)
        await runtime.stop(s.worker_id)  # a no-op
        polled = sink.polls.get(s.worker_id, 0.0)
        await asyncio.sleep(2.5)
        assert sink.polls.get(s.worker_id, 0.0) == polled, "the stopped worker still polls"


async def test_close_stops_every_worker(runtime_name: str, sink: Sink, tmp_path: Path) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    async with FACTORIES[runtime_name](tmp_path) as runtime:
        runtime.set_exit_handler(on_exit)
        specs = [spec(sink) for _ in range(2)]
        for s in specs:
            await runtime.start(s)
        for s in specs:
            await registered(sink, s.worker_id)
        await runtime.close()
    last = {s.worker_id: sink.polls.get(s.worker_id, 0.0) for s in specs}
    await asyncio.sleep(2.5)
    assert {s.worker_id: sink.polls.get(s.worker_id, 0.0) for s in specs} == last
    assert exits == []  # stopped on purpose: no exit reported


async def test_a_worker_that_dies_is_reported_not_waited_for(
    runtime_name: str, sink: Sink, tmp_path: Path
) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    async with FACTORIES[runtime_name](tmp_path) as runtime:
        runtime.set_exit_handler(on_exit)
        # The controller refuses its token: the worker exits at once, on its own.
        dead = spec(sink)
        sink.refuse.add(dead.worker_id)
        await runtime.start(dead)
        deadline = time.monotonic() + 60
        while not exits and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert exits and exits[0].worker_id == dead.worker_id
        assert exits[0].cause is ExitCause.CRASHED
        assert exits[0].reason  # with its reason
