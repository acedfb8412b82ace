"""Kubernetes runtime (``-r pod``): each worker is a pod of the worker image (``Dockerfile``).

A pod per worker, named ``dacirco-<worker id>``: the image's entrypoint is ``dacirco worker``,
the pod's args give the controller URL, the worker's id, name and flavor; its only secret is
the worker's own token (env ``DACIRCO_WORKER_TOKEN``). No service-account token is mounted:
the cluster credentials stay with the controller. Requests and limits are the flavor's cores
and memory; the node the controller chose (``WorkerSpec.node``) is a required node affinity
on ``metadata.name`` (no node named: the cluster's scheduler places the pod).
Labels (``app.kubernetes.io/managed-by=dacirco``, ``dacirco.io/run``, ``dacirco.io/worker-id``)
find every pod of this run for cleanup.

The official ``kubernetes`` client is synchronous: every call runs in a thread
(``asyncio.to_thread``). One watcher lists this run's pods every ``poll_interval`` seconds and
reports to the exit handler a pod that ended, vanished or whose image cannot be pulled
(``ExitCause.CRASHED``: the controller counts the worker lost) or that cannot be scheduled
(``ExitCause.NO_CAPACITY``: no room, the job waits for another worker). A quota refusal (403)
is a ``CapacityRefused`` and any other refused creation a ``RuntimeError_`` from ``start``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.utils import parse_quantity

from dacirco.domain import ExitCause, Node
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
# At DEBUG the client logs response bodies, and a created pod's body holds the worker token.
logging.getLogger("kubernetes.client.rest").setLevel(logging.INFO)

MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "dacirco.io/run"
WORKER_LABEL = "dacirco.io/worker-id"
CONTAINER = "worker"
# Waiting reasons that will not fix themselves: the worker is reported lost at once.
_STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str = "default"
    image: str = "dacirco-worker:latest"
    kubeconfig: Path | None = None  # None: in-cluster config, else ~/.kube/config
    context: str | None = None
    poll_interval: float = 1.0
    request_timeout: float = 10.0
    stop_grace: int = 10  # the pod's terminationGracePeriodSeconds


def pod_name(worker_id: str) -> str:
    return ("dacirco-" + re.sub(r"[^a-z0-9-]", "-", worker_id.lower()))[:63].rstrip("-")


def _label_value(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("-._") or "worker"


def pod_manifest(spec: WorkerSpec, options: KubernetesOptions, run: str) -> dict[str, Any]:
    """The pod of one worker: the controller URL and the worker's token, no other secret."""
    flavor = spec.flavor
    amount = {"cpu": str(flavor.cpus), "memory": f"{round(flavor.memory_gb * 1024)}Mi"}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": options.stop_grace,
        "containers": [
            {
                "name": CONTAINER,
                "image": options.image,
                "imagePullPolicy": "IfNotPresent",
                "args": worker_command(spec),
                "env": [{"name": TOKEN_ENV, "value": spec.token}],
                "resources": {"requests": dict(amount), "limits": dict(amount)},
            }
        ],
    }
    if spec.node:
        term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [spec.node]}]}
        pod_spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.worker_id),
            "namespace": options.namespace,
            "labels": {
                MANAGED_BY: "dacirco",
                RUN_LABEL: run,
                WORKER_LABEL: _label_value(spec.worker_id),
                "dacirco.io/flavor": flavor.name,
            },
            "annotations": {"dacirco.io/worker-name": spec.name},
        },
        "spec": pod_spec,
    }


def _schedulable(item: dict[str, Any]) -> bool:
    spec, status = item.get("spec") or {}, item.get("status") or {}
    if spec.get("unschedulable"):
        return False
    if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or []):
        return False
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return not ready or ready[0].get("status") == "True"


def _node(item: dict[str, Any]) -> Node:
    alloc = (item.get("status") or {}).get("allocatable") or {}
    cpus = int(parse_quantity(alloc.get("cpu", "0")))
    memory = float(parse_quantity(alloc.get("memory", "0"))) / 2**30
    return Node(name=item["metadata"]["name"], cpus=cpus, memory_gb=round(memory, 1))


def _api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


def ended(pod: dict[str, Any]) -> tuple[ExitCause, str] | None:
    """Why this pod will never (or no longer) run a worker (the cause and the reason in
    words); None while it may still."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    containers = status.get("containerStatuses") or []
    state = (containers[0].get("state") or {}) if containers else {}
    if phase in ("Succeeded", "Failed"):
        term = state.get("terminated") or {}
        code = term.get("exitCode")
        text = f"pod {phase.lower()}" + (f": worker exited with code {code}" if code else "")
        detail = term.get("message") or term.get("reason") or status.get("reason")
        return ExitCause.CRASHED, f"{text} ({detail})" if detail else text
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in _STUCK:
        why = f"pod cannot start: {waiting['reason']}: {waiting.get('message', '')}"
        return ExitCause.CRASHED, why.strip()
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            why = f"no capacity: pod unschedulable: {cond.get('message', '')}"
            return ExitCause.NO_CAPACITY, why.strip()
    return None


@dataclass
class _Pod:
    name: str


class KubernetesRuntime:
    """Workers as pods; reaching the cluster is checked here (one line if it cannot be)."""

    name = "pod"

    def __init__(self, options: KubernetesOptions, api: client.CoreV1Api | None = None) -> None:
        self.options = options
        self.run = uuid.uuid4().hex[:12]
        self._api = api or _connect(options)
        self._timeout = options.request_timeout
        try:
            body = self._api.list_node(_preload_content=False, _request_timeout=self._timeout)
            items = json.loads(body.data).get("items") or []
        except ApiException as exc:
            raise RuntimeUnavailable(
                f"--runtime pod: the cluster refused to list nodes: {exc.status} "
                f"{_api_message(exc)}"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RuntimeUnavailable(f"--runtime pod: cluster unreachable: {exc}") from None
        self._nodes = [_node(i) for i in items if _schedulable(i)]
        if not self._nodes:
            raise RuntimeUnavailable("--runtime pod: the cluster has no schedulable node")
        self._pods: dict[str, _Pod] = {}
        self._on_exit: ExitHandler | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._warned_loopback = False

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def set_exit_handler(self, handler: ExitHandler) -> None:
        self._on_exit = handler

    async def start(self, spec: WorkerSpec) -> None:
        if spec.worker_id in self._pods:
            return
        if not self._warned_loopback and re.match(
            r"https?://(127\.|localhost|\[::1\])", spec.controller_url
        ):
            self._warned_loopback = True
            log.warning("workers in pods get a loopback controller URL (%s): set --public-url "
                        "to an address the pods can reach", spec.controller_url)  # fmt: skip
        body = pod_manifest(spec, self.options, self.run)
        try:
            await asyncio.to_thread(
                self._api.create_namespaced_pod,
                self.options.namespace,
                body,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            message = _api_message(exc).replace(spec.token, "***")
            if "quota" in message.lower():
                why = f"kubernetes quota exceeded ({exc.status}): {message}"
                raise CapacityRefused(why) from None
            raise RuntimeError_(f"kubernetes pod refused ({exc.status}): {message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RuntimeError_(f"kubernetes unreachable: {type(exc).__name__}") from None
        self._pods[spec.worker_id] = _Pod(body["metadata"]["name"])
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    async def _list(self) -> dict[str, dict[str, Any]]:
        resp = await asyncio.to_thread(
            self._api.list_namespaced_pod,
            self.options.namespace,
            label_selector=f"{MANAGED_BY}=dacirco,{RUN_LABEL}={self.run}",
            _preload_content=False,
            _request_timeout=self._timeout,
        )
        items = json.loads(resp.data).get("items") or []
        return {i["metadata"]["name"]: i for i in items}

    async def _watch(self) -> None:
        failing = False
        while self._pods:
            await asyncio.sleep(self.options.poll_interval)
            try:
                pods = await self._list()
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if not failing:
                    log.warning("cannot list the worker pods (will retry): %s", exc)
                failing = True
                continue
            failing = False
            for worker_id, pod in list(self._pods.items()):
                seen = pods.get(pod.name)
                if seen is None:
                    why = ExitCause.CRASHED, f"pod {pod.name} disappeared"
                else:
                    why = ended(seen)
                if why is None or self._pods.get(worker_id) is not pod:
                    continue
                del self._pods[worker_id]  # ours no more: the stop below is not an exit
                asyncio.create_task(self._delete(pod.name))  # noqa: RUF006
                if self._on_exit is not None:
                    try:
                        await self._on_exit(WorkerExit(worker_id, *why))
                    except Exception:
                        log.exception("exit handler failed for worker %s", worker_id)

    async def _delete(self, name: str, wait: float = 0.0) -> None:
        try:
            await asyncio.to_thread(
                self._api.delete_namespaced_pod,
                name,
                self.options.namespace,
                grace_period_seconds=self.options.stop_grace,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("cannot delete pod %s: %s %s", name, exc.status, _api_message(exc))
            return
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("cannot delete pod %s: %s", name, exc)
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:  # until it is really gone (its process ended)
            try:
                await asyncio.to_thread(
                    self._api.read_namespaced_pod,
                    name,
                    self.options.namespace,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return
            except (urllib3.exceptions.HTTPError, OSError):
                return
            await asyncio.sleep(0.25)

    async def stop(self, worker_id: str) -> None:
        """Deletes the pod (also one of an earlier run: its name comes from the id) and waits
        until it is gone, up to its grace period and a few seconds."""
        pod = self._pods.pop(worker_id, None)
        name = pod.name if pod is not None else pod_name(worker_id)
        await self._delete(name, wait=self.options.stop_grace + 5.0)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(w) for w in list(self._pods)), return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        with contextlib.suppress(Exception):
            self._api.api_client.close()


def _connect(options: KubernetesOptions) -> client.CoreV1Api:
    cfg = client.Configuration()
    cfg.retries = 1  # an unreachable cluster fails the start in seconds, not minutes
    try:
        in_cluster = config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ
        if options.kubeconfig is None and in_cluster:
            config.load_incluster_config(client_configuration=cfg)
        else:
            path = str(options.kubeconfig) if options.kubeconfig else None
            config.load_kube_config(path, options.context, client_configuration=cfg)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        raise RuntimeUnavailable(f"--runtime pod: no usable kubeconfig: {exc}") from None
    return client.CoreV1Api(client.ApiClient(cfg))
