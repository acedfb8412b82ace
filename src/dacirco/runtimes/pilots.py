"""Capacity that is not ours: the node agents' machines beside the service's own runtime.

``PilotRuntime`` wraps the runtime the service was given (``--runtime``): its nodes are the
runtime's plus one *opportunistic* node per live node agent (``Node.opportunistic``), so the
placement and the policies see both. A worker placed on an agent's node is a *pilot*: it is
not started here but handed to that agent in the answer to its next heartbeat
(``POST /agents/heartbeat``); a stop goes the same way. What the agent reports of its pilots
comes back as exits: ``preempted`` (the owner's load came back), ``exited`` (idle, it left),
``crashed``. An agent silent for ``agent_timeout`` seconds is a lost node: its pilots are
lost workers (their jobs requeued, as for any lost worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dacirco.domain import ExitCause, Node
from dacirco.nodeagent.protocol import AGENT_TIMEOUT, AgentBeat, AgentOrders, PilotStart
from dacirco.runtimes.base import ExitHandler, Runtime, WorkerExit, WorkerSpec

log = logging.getLogger(__name__)

CAUSES = {
    "preempted": ExitCause.PREEMPTED,
    "exited": ExitCause.STOPPED,
    "crashed": ExitCause.CRASHED,
}


class NodeNameTaken(ValueError):
    """An agent names a node the service's own runtime has."""


@dataclass
class _Agent:
    name: str
    cpus: int
    memory_gb: float
    seen: float
    starts: list[WorkerSpec] = field(default_factory=list)  # to hand out at its next beat
    stops: list[str] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)  # pilots handed out, not ended
    owner_load: float | None = None


class PilotRuntime:
    """The service's runtime, with the node agents' opportunistic nodes beside it."""

    def __init__(
        self,
        inner: Runtime,
        *,
        agent_timeout: float = AGENT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.agent_timeout = agent_timeout
        self._clock = clock
        self._agents: dict[str, _Agent] = {}
        self._where: dict[str, str] = {}  # pilot id -> its agent's node
        self._on_exit: ExitHandler | None = None
        self._watcher: asyncio.Task[None] | None = None

    # ---- the Runtime contract ----------------------------------------------------------
    def nodes(self) -> list[Node]:
        theirs = [
            Node(a.name, a.cpus, a.memory_gb, opportunistic=True) for a in self._agents.values()
        ]
        return [*self.inner.nodes(), *theirs]

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler
        self.inner.set_exit_handler(handler)

    async def start(self, spec: WorkerSpec) -> None:
        agent = self._agents.get(spec.node or "")
        if agent is None:
            await self.inner.start(spec)
            return
        self._where[spec.worker_id] = agent.name
        agent.starts.append(spec)

    async def stop(self, worker_id: str) -> None:
        name = self._where.pop(worker_id, None)
        if name is None:
            await self.inner.stop(worker_id)
            return
        agent = self._agents.get(name)
        if agent is None:
            return
        before = len(agent.starts)
        agent.starts = [s for s in agent.starts if s.worker_id != worker_id]
        if len(agent.starts) == before:  # handed out already: the agent stops it
            agent.stops.append(worker_id)
        agent.sent.discard(worker_id)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.inner.close()

    # ---- the agents --------------------------------------------------------------------
    def agents(self) -> list[tuple[str, int, float, float | None]]:
        """The live agents: node, cores and GB offered, the owner's load they last measured."""
        return [(a.name, a.cpus, a.memory_gb, a.owner_load) for a in self._agents.values()]

    async def heartbeat(self, beat: AgentBeat) -> AgentOrders:
        """An agent's heartbeat: its offer and its pilots' exits in, its orders out."""
        if any(n.name == beat.node for n in self.inner.nodes()):
            raise NodeNameTaken(
                f"node: {beat.node!r} is a node of the service's own runtime: "
                "give the agent another --node-name"
            )
        now = self._clock()
        agent = self._agents.get(beat.node)
        if agent is None:
            agent = self._agents[beat.node] = _Agent(beat.node, beat.cpus, beat.memory_gb, now)
            log.info("node agent %s joined: %d cores, %g GB", beat.node, beat.cpus, beat.memory_gb)
        agent.cpus, agent.memory_gb, agent.seen = beat.cpus, beat.memory_gb, now
        agent.owner_load = beat.owner_load
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="dacirco-node-agents")
        ended = {e.worker_id for e in beat.exits}
        for exit in beat.exits:
            if self._where.get(exit.worker_id) == agent.name:
                await self._ended(agent, exit.worker_id, CAUSES[exit.cause], exit.reason)
        # A pilot handed out at an earlier beat that the agent no longer runs, unreported
        # (the agent restarted): it is gone.
        running = set(beat.running)
        for worker_id in sorted(agent.sent - running - ended):
            why = f"not running on node {agent.name} (its agent restarted?)"
            await self._ended(agent, worker_id, ExitCause.CRASHED, why)
        orders = AgentOrders(
            start=[_order(spec) for spec in agent.starts], stop=list(dict.fromkeys(agent.stops))
        )
        agent.sent.update(spec.worker_id for spec in agent.starts)
        agent.starts, agent.stops = [], []
        return orders

    async def _ended(self, agent: _Agent, worker_id: str, cause: ExitCause, reason: str) -> None:
        agent.sent.discard(worker_id)
        self._where.pop(worker_id, None)
        if self._on_exit is not None:
            try:
                await self._on_exit(WorkerExit(worker_id, cause, reason))
            except Exception:
                log.exception("exit handler failed for pilot %s", worker_id)

    async def _watch(self) -> None:
        """Agents that fell silent are lost nodes; their pilots, lost workers."""
        while self._agents:
            await asyncio.sleep(min(1.0, self.agent_timeout / 4))
            now = self._clock()
            for agent in list(self._agents.values()):
                silent = now - agent.seen
                if silent <= self.agent_timeout:
                    continue
                del self._agents[agent.name]
                log.warning("node agent %s lost: silent for %.0f s", agent.name, silent)
                pilots = [w for w, node in self._where.items() if node == agent.name]
                why = f"node agent {agent.name} lost: silent for {silent:.0f} s"
                for worker_id in pilots:
                    await self._ended(agent, worker_id, ExitCause.CRASHED, why)


def _order(spec: WorkerSpec) -> PilotStart:
    return PilotStart(
        worker_id=spec.worker_id,
        name=spec.name,
        cpus=spec.flavor.cpus,
        memory_gb=spec.flavor.memory_gb,
        token=spec.token,
        controller_url=spec.controller_url,
    )
