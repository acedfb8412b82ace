"""What a node agent and the controller say to each other: ``POST /agents/heartbeat``.

The agent sends what it offers now and what happened to its pilots; the controller answers
with the pilots to start (each with its worker token) and those to stop. Every call is a
heartbeat: an agent silent for ``AGENT_TIMEOUT`` seconds is a lost node.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

NAME = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
AGENT_TIMEOUT = 15.0  # seconds without a heartbeat before the node and its pilots are lost
HEARTBEAT_INTERVAL = 1.0  # seconds between two heartbeats (the controller's answer says it)


class PilotExit(BaseModel):
    """A pilot that ended without the controller asking: ``preempted`` (the owner's load came
    back, or its time to live ran out: not its job's fault), ``exited`` (it left on its own,
    idle), ``crashed`` (its process died)."""

    worker_id: str = Field(min_length=1, max_length=255)
    cause: Literal["preempted", "exited", "crashed"]
    reason: str = Field(default="", max_length=2000)


class AgentBeat(BaseModel):
    node: str = NAME
    cpus: int = Field(ge=0, le=4096, description="cores offered to pilots now (0: none)")
    memory_gb: float = Field(ge=0, le=1e6, description="GB offered to pilots now")
    owner_load: float | None = Field(
        default=None, ge=0, le=1e6, description="the owner's load in cores (for the logs)"
    )
    running: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=4096
    )
    exits: list[PilotExit] = Field(default_factory=list, max_length=4096)


class PilotStart(BaseModel):
    worker_id: str
    name: str
    cpus: int
    memory_gb: float
    token: str
    controller_url: str


class AgentOrders(BaseModel):
    start: list[PilotStart] = Field(default_factory=list)
    stop: list[str] = Field(default_factory=list)
    interval: float = HEARTBEAT_INTERVAL


class AgentPublic(BaseModel):
    """``GET /agents``: a live agent's node and what it offers now."""

    node: str
    cpus: int = Field(description="cores offered to pilots now (0: the owner needs them)")
    memory_gb: float
    owner_load: float | None = Field(description="the owner's load, in cores, last measured")
