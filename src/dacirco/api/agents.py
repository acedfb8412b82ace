"""The node agents' route (``dacirco node-agent``): a heartbeat with the node's offer and its
pilots' exits, answered with the pilots to start and to stop. A client API token, like the
public routes, when tokens are on."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from dacirco.api.deps import ControllerDep
from dacirco.nodeagent.protocol import AgentBeat, AgentOrders, AgentPublic
from dacirco.runtimes.pilots import NodeNameTaken, PilotRuntime

router = APIRouter(prefix="/agents", tags=["node agents"])


def _pilots(c: ControllerDep) -> PilotRuntime:
    runtime = c.runtime
    if not isinstance(runtime, PilotRuntime):
        raise HTTPException(404, "this service takes no node agents")
    return runtime


@router.get("", response_model=list[AgentPublic], summary="The live node agents and their offer")
async def list_agents(c: ControllerDep) -> list[AgentPublic]:
    return [
        AgentPublic(node=node, cpus=cpus, memory_gb=mem, owner_load=load)
        for node, cpus, mem, load in _pilots(c).agents()
    ]


@router.post(
    "/heartbeat",
    response_model=AgentOrders,
    summary="A node agent's offer and its pilots' exits; the pilots to start and stop",
    responses={409: {"description": "the node's name is one of the service's own nodes"}},
)
async def heartbeat(body: AgentBeat, c: ControllerDep) -> AgentOrders:
    runtime = _pilots(c)
    if c.draining:
        raise HTTPException(503, "the controller is shutting down")
    try:
        return await runtime.heartbeat(body)
    except NodeNameTaken as exc:
        raise HTTPException(409, str(exc)) from None
