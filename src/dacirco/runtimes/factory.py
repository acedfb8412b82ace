"""The runtime a service runs its workers on, built from its options (``--runtime``).

Each runtime module exposes what it needs as fields of ``RuntimeOptions``; a runtime whose
optional packages are missing is refused here with a one-line ``RuntimeUnavailable`` that
names the extra to install, before anything starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from dacirco.runtimes.base import Runtime
from dacirco.runtimes.local import LocalRuntime

RUNTIMES = ("local", "pod", "vm", "ray")


class RuntimeUnavailable(ValueError):
    """The runtime cannot be used here (a missing package, an unreachable cluster)."""


@dataclass(frozen=True)
class RuntimeOptions:
    kind: str = "local"
    log_dir: Path | None = None  # local: the workers' log files
    work_root: Path | None = None  # local: the workers' task folders
    local_cpus: int | None = None
    local_memory_gb: float | None = None
    k8s_namespace: str = "default"  # pod: where the worker pods go
    k8s_image: str = "dacirco-worker:latest"  # pod: the worker image (Dockerfile)
    kubeconfig: Path | None = None  # pod: None = in-cluster, else ~/.kube/config
    os_cloud: str | None = None  # vm: the clouds.yaml entry (None: env OS_CLOUD)
    os_image: str = "dacirco-worker"  # vm: the worker image (name or id)
    os_network: str | None = None  # vm: the network of the servers (name or id)
    ray_address: str | None = None  # ray: auto (this machine's cluster, RAY_ADDRESS), host:port


def make_runtime(options: RuntimeOptions) -> Runtime:
    if options.kind == "local":
        return LocalRuntime(
            cpus=options.local_cpus,
            memory_gb=options.local_memory_gb,
            log_dir=options.log_dir,
            work_root=options.work_root,
        )
    if options.kind == "pod":
        k8s = _optional("pod", "kubernetes", "the kubernetes client", "kubernetes")
        return k8s.KubernetesRuntime(
            k8s.KubernetesOptions(options.k8s_namespace, options.k8s_image, options.kubeconfig)
        )
    if options.kind == "vm":
        openstack = _optional("vm", "openstack", "openstacksdk", "openstack")
        return openstack.OpenStackRuntime(
            openstack.OpenStackOptions(options.os_cloud, options.os_image, options.os_network)
        )
    if options.kind == "ray":
        return _optional("ray", "ray", "Ray", "ray").RayRuntime(options.ray_address)
    raise RuntimeUnavailable(f"--runtime {options.kind!r}: choose one of {', '.join(RUNTIMES)}")


def _optional(kind: str, module: str, what: str, extra: str) -> ModuleType:
    """``dacirco.runtimes.<module>``, imported only when chosen: its packages are an extra."""
    try:
        return importlib.import_module(f"dacirco.runtimes.{module}")
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"--runtime {kind} needs {what} ({exc.name} is missing): pip install 'dacirco[{extra}]'"
        ) from None
