"""The Runtime contract: where workers live (local processes, Ray, Kubernetes, OpenStack).

Every call is idempotent and returns quickly: ``start`` launches and returns at once (the
worker registers itself over HTTP when booted); ``stop`` of an unknown or already stopped
worker is a no-op. A worker that exits on its own is reported through the exit handler, as
data (``WorkerExit``: which worker, the cause, the reason in words), never as an exception
in the caller. Where a worker goes is the controller's choice (``core.placement``), named in
``WorkerSpec.node``; the command line a worker runs is built once, by ``worker_command``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from dacirco.domain import ExitCause, Flavor, Node
from dacirco.protocol import TOKEN_ENV


@dataclass(frozen=True)
class WorkerExit:
    """A worker that ended without being asked to."""

    worker_id: str
    cause: ExitCause
    reason: str
    code: int | None = None  # a local process's exit status, when the runtime knows it


ExitHandler = Callable[[WorkerExit], Awaitable[None]]


@dataclass(frozen=True)
class WorkerSpec:
    worker_id: str
    name: str
    flavor: Flavor
    controller_url: str
    token: str
    node: str | None = None


def worker_command(spec: WorkerSpec) -> list[str]:
    """The arguments of ``dacirco worker`` for this worker (its token goes by environment)."""
    return [
        "--controller", spec.controller_url,
        "--worker-id", spec.worker_id,
        "--name", spec.name,
        "--cpus", str(spec.flavor.cpus),
        "--memory-gb", f"{spec.flavor.memory_gb:g}",
    ]  # fmt: skip


# The service's own secrets in its environment (client tokens, the webhook secret, S3 keys,
# a cloud's password): a worker holds its token and signed URLs, nothing else.
_SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|^DACIRCO_.*KEY", re.IGNORECASE)


def worker_env(environ: Mapping[str, str], token: str, **extra: str) -> dict[str, str]:
    """A worker process's environment: ``environ`` without the service's secrets, with the
    worker's token (never on its command line, where `ps` shows it) and ``extra``."""
    env = {k: v for k, v in environ.items() if not _SECRET_ENV.search(k)}
    return {**env, TOKEN_ENV: token, **extra}


class RuntimeError_(Exception):
    """A runtime could not start a worker (reported as data by the controller)."""


class CapacityRefused(RuntimeError_):
    """The cluster or cloud has no room now (a quota, no host with the resources): not the
    worker's fault. The controller waits and tries again; the jobs wait, they do not fail."""


class Runtime(Protocol):
    name: str

    def nodes(self) -> list[Node]: ...
    def set_exit_handler(self, handler: ExitHandler) -> None: ...
    async def start(self, spec: WorkerSpec) -> None: ...
    async def stop(self, worker_id: str) -> None: ...
    async def close(self) -> None: ...
