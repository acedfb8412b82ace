"""The Ray runtime on a real local multi-node Ray cluster (``ray_cluster.shared_cluster``: a
head with no CPU and three raylets ``compute1..3``, 6 CPU and 16 GB each), beyond the runtime
contract: nodes and capacity from the cluster, placement honoured (and, for a spec naming no
node, the placement rule over the room its own actors leave), the flavor's resources
reserved and freed, bad conditions (unreachable cluster, a flavor that can never fit, a node
full for now, an actor killed from outside), and no DaCirco actor left behind.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from dacirco.core.placement import place
from dacirco.domain import FLAVORS, ExitCause, Flavor
from dacirco.policies.base import NodeView
from dacirco.runtimes.base import RuntimeError_, WorkerExit, WorkerSpec
from dacirco.runtimes.factory import RuntimeOptions, RuntimeUnavailable, make_runtime
from tests.integration.runtime_contract import Sink, free_port

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dacirco[ray]'")

from dacirco.runtimes.ray import RayRuntime, dacirco_actors  # noqa: E402
from dacirco.runtimes.ray_cluster import shared_cluster  # noqa: E402

REGISTERS_WITHIN = 60.0


@pytest.fixture
async def runtime():  # type: ignore[no-untyped-def]
    rt = RayRuntime(shared_cluster().address, stop_grace=5.0)
    try:
        yield rt
    finally:
        await rt.close()


def spec(sink: Sink, node: str | None, flavor: Flavor = FLAVORS["tiny"]) -> WorkerSpec:
    wid = str(uuid.uuid4())
    return WorkerSpec(wid, f"ray-{wid[:8]}", flavor, sink.url, f"token-{wid}", node)


async def registered(sink: Sink, worker_id: str, timeout: float = REGISTERS_WITHIN) -> dict:
    return await asyncio.to_thread(sink.wait_registered, worker_id, timeout)


def free_cpus() -> float:
    return ray.available_resources().get("CPU", 0.0)


async def settle(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    """Ray frees resources a moment after an actor dies: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.2)
    return predicate()


async def test_nodes_and_capacity_come_from_the_cluster(runtime: RayRuntime) -> None:
    nodes = {n.name: (n.cpus, n.memory_gb) for n in runtime.nodes()}
    # The head (no CPU: the controller's node) holds no worker and is not offered.
    assert nodes == {"compute1": (6, 16.0), "compute2": (6, 16.0), "compute3": (6, 16.0)}
    views = [NodeView(n.name, n.cpus, n.memory_gb, n.cpus, n.memory_gb) for n in runtime.nodes()]
    assert place(views, FLAVORS["medium"]) in nodes
    assert place(views, Flavor("huge", 8, 4.0)) is None  # no node has 8 CPUs


async def test_workers_run_where_placed_with_the_flavor_reserved(
    runtime: RayRuntime, sink: Sink
) -> None:
    before = free_cpus()
    specs = [spec(sink, "compute3", FLAVORS["medium"]), spec(sink, "compute1", FLAVORS["small"])]
    for s in specs:
        await runtime.start(s)
    for s in specs:
        body = await registered(sink, s.worker_id)
        # The node is what the actor found itself on (Ray's runtime context), not an echo.
        assert body["node"] == s.node
        assert (body["cpus"], body["memory_gb"]) == (s.flavor.cpus, s.flavor.memory_gb)
    assert before - free_cpus() == 4 + 2  # num_cpus reserved for as long as they live
    assert sorted(dacirco_actors()) == sorted(f"dacirco-{s.worker_id}" for s in specs)
    # A spec naming no node goes to the node its own actors left freest.
    unplaced = spec(sink, None, FLAVORS["small"])
    await runtime.start(unplaced)
    assert (await registered(sink, unplaced.worker_id))["node"] == "compute2"
    for s in [*specs, unplaced]:
        await runtime.stop(s.worker_id)
    assert dacirco_actors() == []
    assert await settle(lambda: free_cpus() == before)


async def test_a_flavor_that_can_never_fit_is_refused_at_once(
    runtime: RayRuntime, sink: Sink
) -> None:
    t0 = time.monotonic()
    with pytest.raises(RuntimeError_, match=r"compute2 has 6 CPU in all; flavor huge needs 8 CPU"):
        await runtime.start(spec(sink, "compute2", Flavor("huge", 8, 4.0)))
    with pytest.raises(RuntimeError_, match=r"32 GB"):
        await runtime.start(spec(sink, "compute2", Flavor("fat", 1, 32.0)))
    with pytest.raises(RuntimeError_, match=r"'compute9' is not in the cluster"):
        await runtime.start(spec(sink, "compute9"))
    assert time.monotonic() - t0 < 5
    assert dacirco_actors() == []


async def test_a_node_full_for_now_leaves_the_worker_waiting_not_lost(
    runtime: RayRuntime, sink: Sink
) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    runtime.set_exit_handler(on_exit)

    @ray.remote(num_cpus=6, resources={"compute3": 0.001})
    class Hog:  # another tenant holds every CPU of compute3
        def ready(self) -> bool:
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote(), timeout=60)
    try:
        waiting, dropped = spec(sink, "compute3"), spec(sink, "compute3")
        t0 = time.monotonic()
        await runtime.start(waiting)
        await runtime.start(dropped)
        assert time.monotonic() - t0 < 2.0  # start never blocks on a pending actor
        await asyncio.sleep(3)
        assert waiting.worker_id not in sink.registered
        t0 = time.monotonic()
        await runtime.stop(dropped.worker_id)  # a pending actor goes at once
        assert time.monotonic() - t0 < 3.0
    finally:
        ray.kill(hog)
    body = await registered(sink, waiting.worker_id)  # placed as soon as compute3 is free
    assert body["node"] == "compute3"
    await runtime.stop(waiting.worker_id)
    assert exits == []
    assert dacirco_actors() == []


async def test_an_actor_killed_from_outside_is_reported(runtime: RayRuntime, sink: Sink) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    runtime.set_exit_handler(on_exit)
    s = spec(sink, "compute1")
    await runtime.start(s)
    await registered(sink, s.worker_id)
    ray.kill(ray.get_actor(f"dacirco-{s.worker_id}", namespace="dacirco"))  # a node failure
    deadline = time.monotonic() + 30
    while not exits and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert exits and exits[0].worker_id == s.worker_id
    assert exits[0].cause is ExitCause.CRASHED
    assert "Ray actor on compute1 ended" in exits[0].reason
    # Its worker process went with the actor (parent-death signal): it polls no more.
    await asyncio.sleep(1.5)
    polled = sink.polls.get(s.worker_id, 0.0)
    await asyncio.sleep(2.5)
    assert sink.polls.get(s.worker_id, 0.0) == polled
    assert dacirco_actors() == []


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "nothing"])
def test_an_unreachable_cluster_is_one_line(address: str) -> None:
    address = address.format(port=free_port())
    t0 = time.monotonic()
    with pytest.raises(RuntimeUnavailable) as info:
        make_runtime(RuntimeOptions(kind="ray", ray_address=address))
    assert time.monotonic() - t0 < 10
    message = str(info.value)
    assert message.startswith(f"--ray-address {address}: ") and "\n" not in message
