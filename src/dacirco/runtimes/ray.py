"""Ray runtime (``--runtime ray --ray-address auto|host:port``): each worker is a Ray actor
that runs ``python -m dacirco.worker`` on the node Ray placed it on.

- The actor reserves the flavor's ``num_cpus`` and ``memory``, and is pinned to the node the
  controller chose (``WorkerSpec.node``, a hard ``NodeAffinitySchedulingStrategy``): placement
  decisions are honoured or the worker does not start. A spec with no node goes where
  ``core.placement.place`` puts it among the room this runtime's own actors leave.
- Nodes and their capacity come from the cluster (``ray.nodes()``, refreshed in a thread every
  few seconds); nodes with no CPU (a head node started with ``--num-cpus 0``) hold no worker.
  A node's name is the custom resource only it has (``ray start --resources '{"compute1": 1}'``),
  else ``ray-<node id prefix>``; the worker announces the name of the node it really runs on.
- Actors are named ``dacirco-<worker id>`` in namespace ``dacirco``; they are not detached, so
  a controller that dies takes its actors with it (Ray's fate sharing), and an actor that dies
  takes its worker process with it (parent-death signal).
- A flavor that can never fit the chosen node (or a node not in the cluster) is refused at
  once (``RuntimeError_`` naming the missing resource); a node that is only full for now
  leaves the actor pending: the controller's ``boot_timeout`` stops it if it never registers.
- A worker that ends unasked (its process exits, its actor or node dies) goes to the exit
  handler (``ExitCause.CRASHED``, with the reason), and its actor is killed so that its
  resources are freed.

Every blocking Ray call runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from dacirco.core.placement import place
from dacirco.domain import ExitCause, Flavor, Node
from dacirco.policies.base import NodeView
from dacirco.protocol import NODE_ENV
from dacirco.runtimes.base import (
    ExitHandler,
    RuntimeError_,
    WorkerExit,
    WorkerSpec,
    worker_command,
    worker_env,
)
from dacirco.runtimes.factory import RuntimeUnavailable
from dacirco.runtimes.local import log_tail

log = logging.getLogger(__name__)

NAMESPACE = "dacirco"
ACTOR_PREFIX = "dacirco-"
GIB = 2**30
_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}
_BUILTIN_PREFIXES = ("node:", "accelerator_type:", "TPU")
# Runs before the worker: the parent-death signal (the actor dies -> its worker gets SIGTERM),
# then exec of the real worker. No preexec_fn in a process as threaded as a Ray worker.
_SHIM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(os.environ.pop('DACIRCO_PARENT_PID')): sys.exit(1)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'dacirco.worker', *sys.argv[1:]])\n"
)


def _custom(resources: dict[str, float]) -> list[str]:
    return sorted(r for r in resources if r not in _BUILTIN and not r.startswith(_BUILTIN_PREFIXES))


def read_nodes() -> tuple[list[Node], dict[str, str]]:
    """The alive nodes with CPUs, and every alive node's id -> name (a blocking GCS call)."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    counts: dict[str, int] = {}
    for n in alive:
        for r in _custom(n.get("Resources", {})):
            counts[r] = counts.get(r, 0) + 1
    names: dict[str, str] = {}
    nodes: list[Node] = []
    for n in alive:
        res = n.get("Resources", {})
        own = [r for r in _custom(res) if counts[r] == 1]
        name = own[0] if own else f"ray-{n['NodeID'][:12]}"
        names[n["NodeID"]] = name
        if res.get("CPU", 0) >= 1:
            memory = round(res.get("memory", 0) / GIB, 1)
            nodes.append(Node(name=name, cpus=int(res["CPU"]), memory_gb=memory))
    nodes.sort(key=lambda n: n.name)
    return nodes, names


class _WorkerActor:
    """One worker process on the node Ray placed this actor on (an async actor)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: Path | None = None
        self._launched = asyncio.Event()

    async def launch(self, args: list[str], token: str, names: dict[str, str]) -> str:
        node_id = ray.get_runtime_context().get_node_id()
        node = names.get(node_id, f"ray-{node_id[:12]}")
        self._dir = Path(tempfile.mkdtemp(prefix="dacirco-ray-"))
        env = worker_env(os.environ, token, **{NODE_ENV: node})
        env["DACIRCO_PARENT_PID"] = str(os.getpid())
        try:
            with (self._dir / "worker.log").open("ab") as out:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _SHIM, *args, "--work-dir", str(self._dir / "work"),
                    env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
        finally:
            self._launched.set()
        return node

    async def wait(self) -> tuple[int, str]:
        """Ends when the worker process does: its exit code and the last lines it wrote."""
        await self._launched.wait()
        if self._proc is None or self._dir is None:
            return -1, "the worker process could not be started"
        code = await self._proc.wait()
        tail = log_tail(self._dir / "worker.log")
        shutil.rmtree(self._dir, ignore_errors=True)
        return code, tail

    async def terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


_Actor = ray.remote(max_restarts=0, max_task_retries=0)(_WorkerActor)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine runs, or
    ``RAY_ADDRESS``). True when this call connected (the runtime then disconnects on close).
    Never starts a Ray of its own; a cluster that does not answer is one line."""
    address = address or "auto"
    where = f"--ray-address {address}"
    if address == "local" or not (address == "auto" or ":" in address):
        raise RuntimeUnavailable(f"{where}: give auto, host:port or ray://host:port")
    if address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
                pass
        except (OSError, ValueError) as exc:
            raise RuntimeUnavailable(f"{where}: no Ray cluster answers there ({exc})") from None
    if ray.is_initialized():
        return False
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError… from ray.init
        raise RuntimeUnavailable(f"{where}: cannot join the cluster: {_one_line(exc)}") from None
    finally:
        if main:  # ray.init makes SIGTERM a sys.exit(15): the service keeps its own handling
            signal.signal(signal.SIGTERM, sigterm)
    return True


@dataclass
class _Worker:
    handle: Any
    node: str
    flavor: Flavor
    launched: Any  # concurrent.futures.Future of launch(): done once the process runs
    watcher: asyncio.Task[None] | None = None


class RayRuntime:
    """Workers as Ray actors on the cluster at ``address``."""

    name = "ray"

    def __init__(
        self,
        address: str | None = "auto",
        *,
        stop_grace: float = 10.0,
        refresh_interval: float = 5.0,
    ) -> None:
        self._owns = connect(address)
        self._stop_grace = stop_grace
        self._nodes, self._names = read_nodes()
        if not self._nodes:
            self._disconnect()
            raise RuntimeUnavailable(f"--ray-address {address}: the cluster has no node with CPUs")
        self._workers: dict[str, _Worker] = {}
        self._stopping: set[str] = set()
        self._on_exit: ExitHandler | None = None
        self._closed = threading.Event()
        self._refresher = threading.Thread(
            target=self._refresh_loop, args=(refresh_interval,), name="ray-nodes", daemon=True
        )
        self._refresher.start()

    # ---- capacity ------------------------------------------------------------------------
    def _refresh_loop(self, interval: float) -> None:
        while not self._closed.wait(interval):
            try:
                self._nodes, self._names = read_nodes()
            except Exception as exc:  # the GCS briefly away: keep the last known nodes
                log.warning("cannot read the Ray nodes: %s", _one_line(exc))

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def _fallback_node(self, flavor: Flavor) -> str | None:
        """Where a spec naming no node goes: the placement rule over the room this runtime's
        own actors leave on each node."""
        views = []
        for n in self._nodes:
            mine = [w.flavor for w in self._workers.values() if w.node == n.name]
            free_cpus = n.cpus - sum(f.cpus for f in mine)
            free_memory = n.memory_gb - sum(f.memory_gb for f in mine)
            views.append(NodeView(n.name, n.cpus, n.memory_gb, free_cpus, free_memory))
        return place(views, flavor)

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    # ---- workers -------------------------------------------------------------------------
    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._workers:
            return
        flavor = spec.flavor
        name = spec.node or self._fallback_node(flavor)
        if name is None:
            raise RuntimeError_(
                f"no Ray node has {flavor.cpus} CPU and {flavor.memory_gb:g} GB free"
            )
        if name not in self._names.values():
            self._nodes, self._names = await asyncio.to_thread(read_nodes)
        node = next((n for n in self._nodes if n.name == name), None)
        node_id = next((i for i, n in self._names.items() if n == name), None)
        if node is None or node_id is None:
            known = ", ".join(n.name for n in self._nodes) or "none"
            raise RuntimeError_(f"Ray node {name!r} is not in the cluster (nodes: {known})")
        if flavor.cpus > node.cpus:
            raise RuntimeError_(
                f"Ray node {name} has {node.cpus} CPU in all; flavor {flavor.name} needs "
                f"{flavor.cpus} CPU: it can never start there"
            )
        if flavor.memory_gb > node.memory_gb:
            raise RuntimeError_(
                f"Ray node {name} has {node.memory_gb:g} GB of memory in all; flavor "
                f"{flavor.name} needs {flavor.memory_gb:g} GB: it can never start there"
            )
        try:
            handle, launched, done = await asyncio.to_thread(
                self._create, spec, node_id, worker_command(spec), dict(self._names)
            )
        except Exception as exc:  # refused by Ray (a name taken, the GCS away…)
            raise RuntimeError_(f"Ray refused the actor: {_one_line(exc)}") from exc
        worker = _Worker(handle, name, flavor, launched)
        self._workers[spec.worker_id] = worker
        worker.watcher = asyncio.create_task(self._watch(spec.worker_id, worker, done))

    def _create(
        self, spec: WorkerSpec, node_id: str, args: list[str], names: dict[str, str]
    ) -> tuple[Any, Any, Any]:
        handle = _Actor.options(
            name=f"{ACTOR_PREFIX}{spec.worker_id}",
            namespace=NAMESPACE,
            num_cpus=spec.flavor.cpus,
            memory=int(spec.flavor.memory_gb * GIB),
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote()
        launched = handle.launch.remote(args, spec.token, names).future()
        return handle, launched, handle.wait.remote().future()

    async def _watch(self, worker_id: str, worker: _Worker, done: Any) -> None:
        try:
            code, tail = await asyncio.wrap_future(done)
            reason = f"worker process exited with code {code}"
            if code < 0:
                reason = f"worker process killed by signal {-code}"
            if tail:
                reason = f"{reason}: {tail}"
        except Exception as exc:  # the actor died, was killed, or could not be placed
            reason = f"Ray actor on {worker.node} ended: {_one_line(exc)}"
        with contextlib.suppress(Exception):  # the process is gone: free its CPUs and memory
            await asyncio.to_thread(ray.kill, worker.handle, no_restart=True)
        self._workers.pop(worker_id, None)
        expected = worker_id in self._stopping
        self._stopping.discard(worker_id)
        if not expected and self._on_exit is not None:
            try:
                await self._on_exit(WorkerExit(worker_id, ExitCause.CRASHED, reason))
            except Exception:
                log.exception("exit handler failed for worker %s", worker_id)

    async def stop(self, worker_id: str) -> None:
        worker = self._workers.get(worker_id)
        if worker is None:
            return
        self._stopping.add(worker_id)
        if worker.launched.done() and worker.launched.exception() is None:
            # The process runs: SIGTERM first, so that it leaves its task cleanly.
            ref = worker.handle.terminate.remote(self._stop_grace)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(ref.future()), self._stop_grace + 5)
        # Pending (no node free yet) or done: the actor goes, its resources with it.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(ray.kill, worker.handle, no_restart=True)
        if worker.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.watcher

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(w) for w in list(self._workers)), return_exceptions=True)
        self._closed.set()
        if self._owns:
            await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        if self._owns:
            self._owns = False
            ray.shutdown()


def dacirco_actors() -> list[str]:
    """The names of the DaCirco actors alive in the cluster (any namespace)."""
    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a.get("namespace") == NAMESPACE and a["name"].startswith(ACTOR_PREFIX)
    )
