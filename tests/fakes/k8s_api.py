"""A fake Kubernetes API server: the few core/v1 endpoints the pod runtime uses.

``GET /api/v1/nodes``, ``GET|POST /api/v1/namespaces/{ns}/pods`` (``labelSelector``),
``GET|DELETE /api/v1/namespaces/{ns}/pods/{name}``. It checks the bearer token, validates a
pod as the API server would (names, labels, containers, quantities: 422 ``Invalid``; 409
``AlreadyExists``; 404 for an unknown namespace), enforces a ResourceQuota on requested CPU
(403 ``Forbidden: exceeded quota``), schedules by requests and required node affinity
(``Unschedulable`` when nothing fits) and binds ``nodeName``. A bound pod of a known image
runs its entrypoint + args as a local process with only the pod's env; its phase follows the
process; deleting the pod terminates it. ``hold`` keeps new pods in ``ContainerCreating``
forever (a worker that never registers).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kubernetes.utils import parse_quantity

from tests.fakes import WORKER_ENTRYPOINT, Container, image_env, serve_in_thread

TOKEN = "fake-cluster-admin-token"  # the cluster credential: only the controller has it
IMAGE = "dacirco-worker:test"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str) -> JSONResponse:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    return JSONResponse(body, status_code=code)


@dataclass
class FakeNode:
    name: str
    cpus: int = 6
    memory_gb: int = 16


@dataclass
class FakeCluster:
    """The fake's state; tests change ``quota_cpu`` and ``hold`` while it runs."""

    root: Path
    nodes: list[FakeNode] = field(
        default_factory=lambda: [FakeNode("compute1"), FakeNode("compute2"), FakeNode("compute3")]
    )
    namespaces: set[str] = field(default_factory=lambda: {"default", "dacirco"})
    images: dict[str, list[str]] = field(default_factory=lambda: {IMAGE: WORKER_ENTRYPOINT})
    quota_cpu: float | None = None  # ResourceQuota requests.cpu of every namespace
    hold: bool = False  # new pods never start their container
    url: str = ""
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)  # every accepted manifest
    bound: dict[str, str] = field(default_factory=dict)  # pod name -> node, ever bound
    refused: list[str] = field(default_factory=list)  # the messages of refused creations
    containers: dict[str, Container] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def running(self) -> list[str]:
        return [n for n, c in self.containers.items() if c.running()]

    # ---- scheduling ------------------------------------------------------------------------
    def _requests(self, pod: dict[str, Any]) -> tuple[float, float]:
        cpu = mem = 0.0
        for c in pod["spec"]["containers"]:
            req = (c.get("resources") or {}).get("requests") or {}
            cpu += float(parse_quantity(req.get("cpu", "0")))
            mem += float(parse_quantity(req.get("memory", "0")))
        return cpu, mem

    def _active(self) -> list[dict[str, Any]]:
        return [p for p in self.pods.values() if p["status"]["phase"] in ("Pending", "Running")]

    def _schedule(self, pod: dict[str, Any]) -> str | None:
        cpu, mem = self._requests(pod)
        wanted = None
        terms = (
            pod["spec"]
            .get("affinity", {})
            .get("nodeAffinity", {})
            .get("requiredDuringSchedulingIgnoredDuringExecution", {})
            .get("nodeSelectorTerms", [])
        )
        for term in terms:
            for f in term.get("matchFields", []):
                if f["key"] == "metadata.name" and f["operator"] == "In":
                    wanted = set(f["values"])
        best = None
        for node in self.nodes:
            if wanted is not None and node.name not in wanted:
                continue
            used = [
                self._requests(p) for p in self._active() if p["spec"].get("nodeName") == node.name
            ]
            free_cpu = node.cpus - sum(u[0] for u in used)
            free_mem = node.memory_gb * 2**30 - sum(u[1] for u in used)
            if free_cpu >= cpu and free_mem >= mem and (best is None or free_cpu > best[0]):
                best = (free_cpu, node.name)
        return best[1] if best else None

    def admit(self, ns: str, pod: dict[str, Any]) -> None:
        """Bind the new pod and start its container (the scheduler and the kubelet)."""
        name = pod["metadata"]["name"]
        node = self._schedule(pod)
        st = pod["status"]
        if node is None:
            st["conditions"] = [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": f"0/{len(self.nodes)} nodes are available: Insufficient cpu."}
            ]  # fmt: skip
            return
        pod["spec"]["nodeName"] = node
        self.bound[name] = node
        st["conditions"] = [{"type": "PodScheduled", "status": "True"}]
        container = pod["spec"]["containers"][0]
        entrypoint = self.images.get(container["image"])
        if entrypoint is None:
            missing = f"image {container['image']!r} not found"
            waiting = {"reason": "ErrImagePull", "message": missing}
            st["containerStatuses"] = [_cstatus(waiting=waiting)]
            return
        if self.hold:
            st["containerStatuses"] = [_cstatus(waiting={"reason": "ContainerCreating"})]
            return
        env = image_env(self.root / name / "home")
        env |= {e["name"]: e.get("value", "") for e in container.get("env") or []}
        cmd = [*(container.get("command") or entrypoint), *(container.get("args") or [])]
        self.containers[name] = Container(
            cmd, env, self.root / name, lambda code: self._exited(ns, name, code)
        )
        st["phase"] = "Running"
        st["containerStatuses"] = [_cstatus(running={"startedAt": _now()})]

    def _exited(self, ns: str, name: str, code: int) -> None:
        with self.lock:
            pod = self.pods.get((ns, name))
            if pod is None:
                return
            if pod["metadata"].get("deletionTimestamp"):
                del self.pods[(ns, name)]  # a deleted pod goes once its container ended
                return
            code = code if code >= 0 else 128 - code
            pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
            if code:
                term["message"] = self.containers[name].tail()[-200:]
            pod["status"]["containerStatuses"] = [_cstatus(terminated=term)]

    def delete(self, ns: str, name: str, grace: float) -> dict[str, Any] | None:
        with self.lock:
            pod = self.pods.get((ns, name))
            if pod is None:
                return None
            pod["metadata"]["deletionTimestamp"] = _now()
            container = self.containers.get(name)
            if container is None or not container.running():
                del self.pods[(ns, name)]
                return pod
        threading.Thread(target=container.terminate, args=(grace,), daemon=True).start()
        return pod

    def shutdown(self) -> None:
        for container in list(self.containers.values()):
            container.terminate(2.0)


def _cstatus(**state: Any) -> dict[str, Any]:
    return {"name": "worker", "ready": "running" in state, "restartCount": 0, "state": state}


def validate(pod: Any, ns: str) -> str | None:
    """What the API server would refuse in a new pod (a 422 message), or None."""
    if not isinstance(pod, dict) or pod.get("apiVersion") != "v1" or pod.get("kind") != "Pod":
        return "the object is not a v1 Pod"
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    name = meta.get("name", "")
    if not (isinstance(name, str) and _DNS1123.match(name) and len(name) <= 63):
        return f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 label"
    if meta.get("namespace", ns) != ns:
        return "metadata.namespace: the namespace of the object does not match the request"
    for key, value in (meta.get("labels") or {}).items():
        if not (isinstance(value, str) and len(value) <= 63 and _LABEL_VALUE.match(value)):
            return f"metadata.labels: Invalid value: {value!r} for {key}"
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return "spec.containers: Required value"
    for i, c in enumerate(containers):
        if not c.get("name") or not c.get("image"):
            return f"spec.containers[{i}]: name and image: Required value"
        if not all(isinstance(a, str) for a in c.get("args") or []):
            return f"spec.containers[{i}].args: strings only"
        for e in c.get("env") or []:
            if not e.get("name"):
                return f"spec.containers[{i}].env: name: Required value"
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for key, q in (res.get(kind) or {}).items():
                try:
                    parse_quantity(q)
                except ValueError:
                    return f"spec.containers[{i}].resources.{kind}[{key}]: Invalid value: {q!r}"
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        return "spec.restartPolicy: Unsupported value"
    return None


def _selected(pod: dict[str, Any], selector: str | None) -> bool:
    labels = pod["metadata"].get("labels") or {}
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def create_app(cluster: FakeCluster) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return status(401, "Unauthorized", "Unauthorized")
        return await call_next(request)

    @app.get("/api/v1/nodes")
    def nodes() -> dict[str, Any]:
        items = [
            {
                "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name}},
                "spec": {},
                "status": {
                    "allocatable": {"cpu": str(n.cpus), "memory": f"{n.memory_gb}Gi"},
                    "capacity": {"cpu": str(n.cpus), "memory": f"{n.memory_gb}Gi"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            for n in cluster.nodes
        ]
        return {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}

    @app.get("/api/v1/namespaces/{ns}/pods")
    def list_pods(ns: str, labelSelector: str | None = None) -> dict[str, Any]:
        with cluster.lock:
            items = [
                p for (n, _), p in cluster.pods.items() if n == ns and _selected(p, labelSelector)
            ]
            return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    @app.post("/api/v1/namespaces/{ns}/pods", response_model=None)
    async def create_pod(ns: str, request: Request) -> JSONResponse:
        pod = await request.json()
        if ns not in cluster.namespaces:
            return status(404, "NotFound", f'namespaces "{ns}" not found')
        if problem := validate(pod, ns):
            return status(
                422, "Invalid", f'Pod "{pod.get("metadata", {}).get("name")}" is invalid: {problem}'
            )
        name = pod["metadata"]["name"]
        with cluster.lock:
            if (ns, name) in cluster.pods:
                return status(409, "AlreadyExists", f'pods "{name}" already exists')
            if cluster.quota_cpu is not None:
                used = sum(
                    cluster._requests(p)[0]
                    for p in cluster._active()
                    if p["metadata"]["namespace"] == ns
                )
                cpu = cluster._requests(pod)[0]
                if used + cpu > cluster.quota_cpu:
                    message = (
                        f'pods "{name}" is forbidden: exceeded quota: compute, requested: '
                        f"requests.cpu={cpu:g}, used: requests.cpu={used:g}, "
                        f"limited: requests.cpu={cluster.quota_cpu:g}"
                    )
                    cluster.refused.append(message)
                    return status(403, "Forbidden", message)
            pod["metadata"] |= {"namespace": ns, "uid": name, "creationTimestamp": _now()}
            pod["status"] = {"phase": "Pending"}
            cluster.created.append(pod)
            cluster.pods[(ns, name)] = pod
            cluster.admit(ns, pod)
            return JSONResponse(pod, status_code=201)

    @app.get("/api/v1/namespaces/{ns}/pods/{name}", response_model=None)
    def read_pod(ns: str, name: str) -> dict[str, Any] | JSONResponse:
        with cluster.lock:
            pod = cluster.pods.get((ns, name))
        return pod if pod is not None else status(404, "NotFound", f'pods "{name}" not found')

    @app.delete("/api/v1/namespaces/{ns}/pods/{name}", response_model=None)
    def delete_pod(
        ns: str, name: str, gracePeriodSeconds: int = 30
    ) -> dict[str, Any] | JSONResponse:
        pod = cluster.delete(ns, name, float(gracePeriodSeconds))
        return pod if pod is not None else status(404, "NotFound", f'pods "{name}" not found')

    return app


def write_kubeconfig(path: Path, url: str, token: str = TOKEN) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters:\n- name: fake\n  cluster:\n    server: {url}\n"
        f"users:\n- name: admin\n  user:\n    token: {token}\n"
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: admin\n"
    )
    return path


@contextlib.contextmanager
def fake_cluster(root: Path, **kwargs: Any) -> Iterator[FakeCluster]:
    """A fake cluster serving on a free port; every container it started is ended after."""
    cluster = FakeCluster(root=root, **kwargs)
    try:
        with serve_in_thread(create_app(cluster)) as url:
            cluster.url = url
            yield cluster
    finally:
        cluster.shutdown()


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


@contextlib.asynccontextmanager
async def fake_runtime(
    tmp: Path, namespace: str = "dacirco", **kwargs: Any
) -> AsyncIterator[tuple[Any, FakeCluster]]:
    """A ``KubernetesRuntime`` on a fake cluster (closed, then the cluster stopped, after)."""
    from dacirco.runtimes.kubernetes import KubernetesOptions, KubernetesRuntime

    with fake_cluster(tmp / "cluster", **kwargs) as cluster:
        options = KubernetesOptions(
            namespace=namespace,
            image=IMAGE,
            kubeconfig=write_kubeconfig(tmp / "kubeconfig", cluster.url),
            poll_interval=0.3,
            stop_grace=3,
        )
        runtime = await asyncio.to_thread(KubernetesRuntime, options)
        try:
            yield runtime, cluster
        finally:
            await runtime.close()
