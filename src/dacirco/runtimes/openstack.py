"""OpenStack runtime (``-r vm``): each worker is a server (a VM) booted from the worker image.

A server per worker, named ``dacirco-<worker id>``, of flavor ``s10.tiny|small|medium``. Its
cloud-init user data writes the worker's token to a root-only env file and starts
``dacirco worker`` with the controller URL as a systemd service that powers the VM off when
the worker ends: the user data holds the controller URL and that token, never a cloud or S3
credential (only the controller holds those, in ``clouds.yaml``).

Nodes are the hypervisors when the account may list them (an admin), a server then going to
the one the controller chose (``WorkerSpec.node``) through ``availability_zone=<zone>:<host>``;
otherwise one node with the project's quota as capacity, the cloud's scheduler placing
servers. openstacksdk is synchronous: every call runs in a thread. A watcher reads each server
every ``poll_interval``; a server in ERROR, SHUTOFF (its worker ended) or gone is reported to
the exit handler and deleted: "No valid host was found" as ``ExitCause.NO_CAPACITY``, the rest
as ``ExitCause.CRASHED``. A quota refusal (403) is a ``CapacityRefused`` and any other refused
creation a ``RuntimeError_`` from ``start``. ``close`` deletes every server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import openstack
from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as os_exc

from dacirco.domain import FLAVORS, ExitCause, Node
from dacirco.protocol import TOKEN_ENV
from dacirco.runtimes.base import (
    CapacityRefused,
    ExitHandler,
    RuntimeError_,
    WorkerExit,
    WorkerSpec,
    worker_command,
)
from dacirco.runtimes.factory import RuntimeUnavailable

log = logging.getLogger(__name__)
# keystoneauth logs request bodies at DEBUG; a server's create request holds its user data.
logging.getLogger("keystoneauth").setLevel(logging.INFO)

ENV_FILE = "/etc/dacirco/worker.env"
FLAVOR_PREFIX = "s10."
_ERRORS = (os_exc.SDKException, ks_exc.ClientException, OSError)


@dataclass(frozen=True)
class OpenStackOptions:
    cloud: str | None = None  # the clouds.yaml entry; None: OS_CLOUD or the only one
    image: str = "dacirco-worker"
    network: str | None = None  # None: the cloud allocates one ("auto")
    zone: str = "nova"  # the availability zone of "<zone>:<host>" placement
    poll_interval: float = 2.0
    api_timeout: float = 30.0
    stop_wait: float = 30.0  # how long stop waits for a deleted server to go


def server_name(worker_id: str) -> str:
    return f"dacirco-{worker_id}"


def user_data(spec: WorkerSpec) -> str:
    """The cloud-init user data of a worker's server (JSON is YAML: a valid cloud-config)."""
    command = [
        "systemd-run", "--unit=dacirco-worker", "--property=Restart=no",
        f"--property=EnvironmentFile={ENV_FILE}",
        "--property=ExecStopPost=/bin/systemctl poweroff",
        "dacirco", "worker", *worker_command(spec),
    ]  # fmt: skip
    config = {
        "write_files": [
            {"path": ENV_FILE, "permissions": "0600", "content": f"{TOKEN_ENV}={spec.token}\n"}
        ],
        "runcmd": [command],
    }
    return "#cloud-config\n" + json.dumps(config, indent=2) + "\n"


def _message(exc: BaseException) -> str:
    text = getattr(exc, "details", None) or str(exc)
    return " ".join(str(text).split())[:300]


@dataclass
class _Server:
    id: str
    name: str


class OpenStackRuntime:
    """Workers as servers; the cloud, flavors, image and network are checked here."""

    name = "vm"

    def __init__(self, options: OpenStackOptions, conn: Any = None) -> None:
        self.options = options
        self.run = uuid.uuid4().hex[:12]
        try:
            self._conn = conn or openstack.connect(
                cloud=options.cloud, api_timeout=options.api_timeout
            )
            self._conn.authorize()
            self._flavors = {
                f.name: self._conn.compute.find_flavor(
                    FLAVOR_PREFIX + f.name, ignore_missing=False
                ).id
                for f in FLAVORS.values()
            }
            self._image = self._conn.image.find_image(options.image, ignore_missing=False).id
            self._network = (
                self._conn.network.find_network(options.network, ignore_missing=False).id
                if options.network
                else None
            )
            self._nodes, self._hosts = self._discover()
        except os_exc.ResourceNotFound as exc:
            raise RuntimeUnavailable(f"--runtime vm: not found: {_message(exc)}") from None
        except _ERRORS as exc:
            raise RuntimeUnavailable(
                f"--runtime vm: cloud unreachable or refusing: {_message(exc)}"
            ) from None
        self._servers: dict[str, _Server] = {}
        self._on_exit: ExitHandler | None = None
        self._watcher: asyncio.Task[None] | None = None

    def _discover(self) -> tuple[list[Node], bool]:
        """The hypervisors (hosts), when visible; else one node: the project's quota."""
        try:
            hosts = [
                Node(h.name, int(h.vcpus), round(h.memory_size / 1024, 1))
                for h in self._conn.compute.hypervisors(details=True)
                if h.vcpus and h.memory_size and h.state != "down" and h.status != "disabled"
            ]
        except (os_exc.ForbiddenException, os_exc.NotFoundException):
            hosts = []
        if hosts:
            return hosts, True
        limits = self._conn.compute.get_limits().absolute
        cores, ram = limits.total_cores, limits.total_ram
        if not cores or cores < 0 or not ram or ram < 0:  # -1: unlimited
            cores, ram = 64, 256 * 1024
        return [Node(self.options.cloud or "openstack", int(cores), round(ram / 1024, 1))], False

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    def _create(self, spec: WorkerSpec) -> str:
        attrs: dict[str, Any] = {
            "name": server_name(spec.worker_id),
            "flavor_id": self._flavors[spec.flavor.name],
            "image_id": self._image,
            "networks": [{"uuid": self._network}] if self._network else "auto",
            "user_data": base64.b64encode(user_data(spec).encode()).decode(),
            "metadata": {"dacirco_run": self.run, "dacirco_worker": spec.name[:255]},
        }
        if self._hosts and spec.node:
            attrs["availability_zone"] = f"{self.options.zone}:{spec.node}"
        return self._conn.compute.create_server(**attrs).id

    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._servers:
            return
        if spec.flavor.name not in self._flavors:
            raise RuntimeError_(f"no OpenStack flavor for {spec.flavor.name}")
        try:
            server_id = await asyncio.to_thread(self._create, spec)
        except _ERRORS as exc:
            message = _message(exc).replace(spec.token, "***")
            if "quota" in message.lower():
                raise CapacityRefused(f"openstack quota exceeded: {message}") from None
            raise RuntimeError_(f"openstack server refused: {message}") from None
        self._servers[spec.worker_id] = _Server(server_id, server_name(spec.worker_id))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    def _state(self, server_id: str) -> tuple[str, str] | None:
        """(status, fault message) of a server; None once it is gone."""
        try:
            server = self._conn.compute.get_server(server_id)
        except os_exc.NotFoundException:
            return None
        fault = server.fault or {}
        return str(server.status), str(fault.get("message", "")) if isinstance(fault, dict) else ""

    async def _watch(self) -> None:
        failing = False
        while self._servers:
            await asyncio.sleep(self.options.poll_interval)
            for worker_id, server in list(self._servers.items()):
                try:
                    state = await asyncio.to_thread(self._state, server.id)
                except _ERRORS as exc:
                    if not failing:
                        log.warning("cannot read server %s (will retry): %s", server.name, exc)
                    failing = True
                    continue
                failing = False
                cause = ExitCause.CRASHED
                if state is None:
                    reason = f"server {server.name} disappeared"
                elif state[0] == "ERROR":
                    fault = state[1] or "no fault given"
                    if "no valid host" in fault.lower():
                        cause = ExitCause.NO_CAPACITY
                        reason = f"no capacity: server in ERROR: {fault}"
                    else:
                        reason = f"server in ERROR: {fault}"
                elif state[0] in ("SHUTOFF", "DELETED", "SOFT_DELETED"):
                    reason = f"server {state[0].lower()}: the worker ended"
                else:
                    continue
                if self._servers.get(worker_id) is not server:
                    continue  # stopped meanwhile
                del self._servers[worker_id]
                asyncio.create_task(self._delete(server.id))  # noqa: RUF006
                if self._on_exit is not None:
                    try:
                        await self._on_exit(WorkerExit(worker_id, cause, reason))
                    except Exception:
                        log.exception("exit handler failed for worker %s", worker_id)

    def _delete_now(self, server_id: str, wait: float) -> None:
        self._conn.compute.delete_server(server_id, ignore_missing=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and self._state(server_id) is not None:
            time.sleep(0.5)

    async def _delete(self, server_id: str, wait: float = 0.0) -> None:
        try:
            await asyncio.to_thread(self._delete_now, server_id, wait)
        except _ERRORS as exc:
            log.warning("cannot delete server %s: %s", server_id, _message(exc))

    def _find(self, worker_id: str) -> str | None:
        found = list(self._conn.compute.servers(name=f"^{server_name(worker_id)}$"))
        return found[0].id if found else None

    async def stop(self, worker_id: str) -> None:
        """Deletes the server (also one of an earlier run, found by its name) and waits,
        up to ``stop_wait``, until it is gone."""
        server = self._servers.pop(worker_id, None)
        server_id = server.id if server is not None else None
        if server_id is None:
            try:
                server_id = await asyncio.to_thread(self._find, worker_id)
            except _ERRORS as exc:
                log.warning("cannot look for the server of %s: %s", worker_id, _message(exc))
            if server_id is None:
                return
        await self._delete(server_id, wait=self.options.stop_wait)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(w) for w in list(self._servers)), return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        with contextlib.suppress(Exception):
            self._conn.close()
