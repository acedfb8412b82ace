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

RUNTIMES = ("local", "pod", "vm", "ray", "slurm")


class RuntimeUnavailable(ValueError):
    """The runtime cannot be used here (a missing package, an unreachable cluster)."""


@dataclass(frozen=True)
class RuntimeOptions:
    """The runtime section of a service's options (``--runtime`` and what each kind needs)."""

    kind: str = "local"
    local_cpus: int | None = None  # local: cores workers may reserve (None: all)
    local_memory_gb: float | None = None  # local: GB workers may reserve (None: all)
    ray_address: str | None = None  # ray: auto (this machine's cluster, RAY_ADDRESS), host:port
    k8s_namespace: str = "default"  # pod: where the worker pods go
    k8s_image: str = "dacirco-worker:latest"  # pod: the worker image (Dockerfile)
    kubeconfig: Path | None = None  # pod: None = in-cluster, else ~/.kube/config
    os_cloud: str | None = None  # vm: the clouds.yaml entry (None: env OS_CLOUD)
    os_image: str = "dacirco-worker"  # vm: the worker image (name or id)
    os_network: str | None = None  # vm: the network of the servers (name or id)
    slurm_partition: str | None = None  # slurm: the partition (None: the cluster's default)
    slurm_account: str | None = None  # slurm: the account jobs are charged to
    slurm_time_limit: float | None = None  # slurm: seconds a worker's job may live (--time)


def make_runtime(
    options: RuntimeOptions,
    log_dir: Path | None = None,
    work_root: Path | None = None,
    boot_timeout: float | None = None,
) -> Runtime:
    """The runtime ``options`` name; ``log_dir`` and ``work_root``: where local workers write
    their logs and keep their task folders (the service puts them in its data dir);
    ``boot_timeout``: the controller's (a SLURM job queued half of it is given back)."""
    if options.kind == "local":
        return LocalRuntime(
            cpus=options.local_cpus,
            memory_gb=options.local_memory_gb,
            log_dir=log_dir,
            work_root=work_root,
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
    if options.kind == "slurm":
        slurm = importlib.import_module("dacirco.runtimes.slurm")
        slurm_options = slurm.SlurmOptions(
            options.slurm_partition, options.slurm_account, options.slurm_time_limit
        )
        pending = {"pending_limit": boot_timeout / 2} if boot_timeout else {}
        return slurm.SlurmRuntime(slurm_options, log_dir=log_dir, **pending)
    raise RuntimeUnavailable(f"--runtime {options.kind!r}: choose one of {', '.join(RUNTIMES)}")


def _optional(kind: str, module: str, what: str, extra: str) -> ModuleType:
    """``dacirco.runtimes.<module>``, imported only when chosen: its packages are an extra."""
    try:
        return importlib.import_module(f"dacirco.runtimes.{module}")
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"--runtime {kind} needs {what} ({exc.name} is missing): pip install 'dacirco[{extra}]'"
        ) from None
