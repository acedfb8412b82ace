"""The controller's side of the node agents (``runtimes/pilots.py``): an agent's node beside
the service's own, pilots handed out and stopped through heartbeats, exits reported, a
silent agent a lost node. The service's own runtime is a recording stand-in (what is tested
is the wrapper); time is a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from dacirco.domain import FLAVORS, ExitCause, Node
from dacirco.nodeagent.protocol import AgentBeat, PilotExit
from dacirco.runtimes.base import ExitHandler, WorkerExit, WorkerSpec
from dacirco.runtimes.pilots import NodeNameTaken, PilotRuntime


class Own:
    """The service's own runtime: one node; records what it is asked."""

    name = "local"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stopped: list[str] = []

    def nodes(self) -> list[Node]:
        return [Node("compute1", 6, 16.0)]

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self.handler = handler

    async def start(self, spec: WorkerSpec) -> None:
        self.started.append(spec.worker_id)

    async def stop(self, worker_id: str) -> None:
        self.stopped.append(worker_id)

    async def close(self) -> None:
        pass


def spec(wid: str, node: str) -> WorkerSpec:
    return WorkerSpec(wid, f"dacirco-{wid}", FLAVORS["tiny"], "http://ctl", f"token-{wid}", node)


def beat(**kw: object) -> AgentBeat:
    return AgentBeat(**{"node": "idle-desk1", "cpus": 2, "memory_gb": 4.0, **kw})  # type: ignore[arg-type]


@pytest.fixture
def clock() -> list[float]:
    return [0.0]


@pytest.fixture
def runtime(clock: list[float]) -> PilotRuntime:
    rt = PilotRuntime(Own(), agent_timeout=5.0, clock=lambda: clock[0])
    rt.exits = []  # type: ignore[attr-defined]

    async def on_exit(exit: WorkerExit) -> None:
        rt.exits.append(exit)  # type: ignore[attr-defined]

    rt.set_exit_handler(on_exit)
    return rt


async def test_an_agent_is_an_opportunistic_node_and_gets_its_pilots(runtime: PilotRuntime) -> None:
    assert [n.name for n in runtime.nodes()] == ["compute1"]
    assert (await runtime.heartbeat(beat())).start == []
    own, theirs = runtime.nodes()
    assert (own.opportunistic, theirs) == (False, Node("idle-desk1", 2, 4.0, opportunistic=True))
    await runtime.start(spec("w1", "idle-desk1"))
    await runtime.start(spec("w2", "compute1"))
    assert runtime.inner.started == ["w2"]  # type: ignore[attr-defined]
    orders = await runtime.heartbeat(beat())
    assert [(o.worker_id, o.token, o.cpus) for o in orders.start] == [("w1", "token-w1", 1)]
    assert (await runtime.heartbeat(beat(running=["w1"]))).start == []  # handed out once
    await runtime.stop("w1")
    assert (await runtime.heartbeat(beat(running=["w1"]))).stop == ["w1"]
    await runtime.close()


async def test_exits_come_back_with_their_cause(runtime: PilotRuntime) -> None:
    await runtime.heartbeat(beat())
    for wid in ("w1", "w2", "w3"):
        await runtime.start(spec(wid, "idle-desk1"))
    await runtime.heartbeat(beat())
    exits = [
        PilotExit(worker_id="w1", cause="preempted", reason="owner's load 3.0 cores"),
        PilotExit(worker_id="w2", cause="exited", reason="idle"),
    ]
    # w3 vanished without a word (the agent restarted): gone, as a crash.
    await runtime.heartbeat(beat(running=[], exits=exits))
    got = [(e.worker_id, e.cause) for e in runtime.exits]  # type: ignore[attr-defined]
    assert got == [
        ("w1", ExitCause.PREEMPTED),
        ("w2", ExitCause.STOPPED),
        ("w3", ExitCause.CRASHED),
    ]
    await runtime.close()


async def test_a_silent_agent_is_a_lost_node(runtime: PilotRuntime, clock: list[float]) -> None:
    await runtime.heartbeat(beat())
    await runtime.start(spec("w1", "idle-desk1"))
    await runtime.heartbeat(beat())
    clock[0] = 6.0  # past agent_timeout
    for _ in range(100):
        if runtime.exits:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    (lost,) = runtime.exits  # type: ignore[attr-defined]
    assert lost.cause is ExitCause.CRASHED and "node agent idle-desk1 lost" in lost.reason
    assert [n.name for n in runtime.nodes()] == ["compute1"]
    await runtime.close()


async def test_an_agent_may_not_take_the_name_of_our_node(runtime: PilotRuntime) -> None:
    with pytest.raises(NodeNameTaken, match="compute1"):
        await runtime.heartbeat(beat(node="compute1"))
