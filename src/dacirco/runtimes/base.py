"""The Runtime contract: where workers live (local processes, Ray, Kubernetes, OpenStack).

Every call is idempotent and returns quickly: ``start`` launches and returns at once (the
worker registers itself over HTTP when booted); ``stop`` of an unknown or already stopped
worker is a no-op. A worker that exits on its own is reported through the exit handler, as
data, never as an exception in the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from dacirco.domain import Flavor, Node

ExitHandler = Callable[[str, str], Awaitable[None]]  # (worker_id, reason)


@dataclass(frozen=True)
class WorkerSpec:
    worker_id: str
    name: str
    flavor: Flavor
    controller_url: str
    token: str
    node: str | None = None


class RuntimeError_(Exception):
    """A runtime could not start a worker (reported as data by the controller)."""


NO_CAPACITY = "no capacity:"  # how a runtime's exit reason says the cloud had no room


class CapacityRefused(RuntimeError_):
    """The cluster or cloud has no room now (a quota, no host with the resources): not the
    worker's fault. The controller waits and tries again; the jobs wait, they do not fail."""


class Runtime(Protocol):
    name: str

    def nodes(self) -> list[Node]: ...
    def place(self, flavor: Flavor) -> str | None: ...
    def set_exit_handler(self, handler: ExitHandler) -> None: ...
    async def start(self, spec: WorkerSpec) -> None: ...
    async def stop(self, worker_id: str) -> None: ...
    async def close(self) -> None: ...
