"""Assembles a running service from options: storage, policy, runtime, store, event log,
controller and app."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fastapi import FastAPI

from dacirco import __version__
from dacirco.analytics.samples import samples_path
from dacirco.api.app import create_controller_app
from dacirco.api.auth import check_auth
from dacirco.config import STORAGES, database_path, open_storage
from dacirco.controller.core import Controller, ControllerConfig
from dacirco.controller.events import EventLog, next_free_path
from dacirco.controller.store import Store
from dacirco.controller.usage import Usage
from dacirco.domain import FLAVORS
from dacirco.policies.base import Policy, PolicyParams, make_policy
from dacirco.runtimes.factory import RUNTIMES, RuntimeOptions, RuntimeUnavailable, make_runtime
from dacirco.storage.base import Storage, StorageError
from dacirco.storage.local import LocalStorage
from dacirco.storage.s3 import S3Config

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """An option that cannot work; said in one line, before anything starts."""


class DataDirInUse(ConfigError):
    """Another DaCirco runs on this data dir: starting would rewrite its state."""


LOCK_NAME = ".lock"


def lock_data_dir(data_dir: Path):  # -> the open lock file; keep it for the process lifetime
    """Take ``<data_dir>/.lock`` (an exclusive ``flock``) and write this pid into it.

    The lock goes with the process, however it ends; a second DaCirco on the same data dir
    fails here, before it has touched the first one's SQLite, event log or workers.
    """
    path = data_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    lock = os.fdopen(fd, "r+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = lock.read().strip() or "unknown"
        lock.close()
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise DataDirInUse(
            f"data dir {data_dir} is in use by another DaCirco (pid {holder})"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    algorithm: str = "grace-period"
    max_workers: int = 2
    max_idle_time: float = 60.0
    call_interval: float = 1.0
    runtime: str = "local"
    flavor: str = "small"
    event_log_file: Path | None = None
    public_url: str | None = None
    local_cpus: int | None = None
    local_memory_gb: float | None = None
    heartbeat_timeout: float = 90.0
    max_attempts: int = 3
    storage: str = "local"
    s3: S3Config = field(default_factory=S3Config)  # used when storage is s3
    max_queue: int = 1000  # waiting jobs past which POST /jobs answers 429; 0: no limit
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # clients' bearer tokens
    insecure_no_auth: bool = False  # off the loopback without tokens, on purpose
    sample_interval: float = 1.0  # resource samples, seconds; 0: none
    ray_address: str | None = None  # --runtime ray: the cluster (None: auto)
    k8s_namespace: str = "default"  # --runtime pod
    k8s_image: str = "dacirco-worker:latest"
    kubeconfig: Path | None = None
    os_cloud: str | None = None  # --runtime vm
    os_image: str = "dacirco-worker"
    os_network: str | None = None
    boot_timeout: float = 120.0  # seconds a new worker has to register


def controller_url(options: ServeOptions) -> str:
    if options.public_url:
        return options.public_url.rstrip("/")
    host = options.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{options.port}"


def check(options: ServeOptions) -> None:
    if options.runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {options.runtime!r}: choose one of {', '.join(RUNTIMES)}")
    if options.ray_address is not None and options.runtime != "ray":
        raise ConfigError("--ray-address goes with --runtime ray")
    if options.flavor not in FLAVORS:
        raise ConfigError(f"--flavor {options.flavor!r}: choose one of {', '.join(FLAVORS)}")
    if options.storage not in STORAGES:
        raise ConfigError(f"--storage {options.storage!r}: choose one of {', '.join(STORAGES)}")
    if options.boot_timeout <= 0:
        raise ConfigError("--boot-timeout must be positive")
    if options.max_workers < 1:
        raise ConfigError("--max-workers must be at least 1")
    if options.call_interval <= 0:
        raise ConfigError("--call-interval must be positive")
    if options.max_idle_time < 0:
        raise ConfigError("--max-idle-time must not be negative")
    if options.max_queue < 0:
        raise ConfigError("--max-queue must not be negative (0: no limit)")
    if problem := check_auth(options.host, options.api_tokens, options.insecure_no_auth):
        raise ConfigError(problem)
    if options.sample_interval < 0:
        raise ConfigError("--sample-interval must not be negative (0 turns sampling off)")


def validate(options: ServeOptions) -> Policy:
    """Check the options and make the policy; touches nothing (no file, no port)."""
    check(options)
    try:
        return make_policy(
            options.algorithm,
            PolicyParams(max_idle_time=options.max_idle_time, flavor=options.flavor),
        )
    except ValueError as exc:
        raise ConfigError(f"--algorithm: {exc}") from exc


def build(options: ServeOptions, policy: Policy | None = None) -> tuple[FastAPI, Controller]:
    """The app and its controller; the data dir is locked for as long as the app lives.
    ``policy``: what ``validate(options)`` already returned, if the caller validated first."""
    policy = policy or validate(options)
    data_dir = Path(options.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # S3 is checked before the lock (a refusal leaves no trace); the local folder after it.
    storage = connect_storage(options, data_dir) if options.storage == "s3" else None
    lock = lock_data_dir(data_dir)  # before anything is read or written
    try:
        app, controller = _assemble(
            options, data_dir, policy, storage or connect_storage(options, data_dir)
        )
    except BaseException:
        lock.close()
        raise
    app.state.data_dir_lock = lock  # held as long as the app lives
    return app, controller


def connect_storage(options: ServeOptions, data_dir: Path) -> Storage:
    """The storage, reached once before anything starts: S3 down or refusing our credentials
    stops the start with one line (a ``ConfigError``)."""
    try:
        return open_storage(options.storage, data_dir, options.s3, base_url=controller_url(options))
    except StorageError as exc:
        raise ConfigError(str(exc)) from None


def _assemble(
    options: ServeOptions, data_dir: Path, policy: Policy, storage: Storage
) -> tuple[FastAPI, Controller]:
    url = controller_url(options)
    work_root = data_dir / "work"
    # Ours alone (the lock): what is there is left by workers of a run that crashed.
    shutil.rmtree(work_root, ignore_errors=True)
    try:
        runtime = make_runtime(
            RuntimeOptions(
                kind=options.runtime,
                log_dir=data_dir / "logs",
                work_root=work_root,
                local_cpus=options.local_cpus,
                local_memory_gb=options.local_memory_gb,
                ray_address=options.ray_address,
                k8s_namespace=options.k8s_namespace,
                k8s_image=options.k8s_image,
                kubeconfig=options.kubeconfig,
                os_cloud=options.os_cloud,
                os_image=options.os_image,
                os_network=options.os_network,
            )
        )
    except RuntimeUnavailable as exc:
        raise ConfigError(str(exc)) from None
    store = Store(database_path(data_dir))
    log_path = options.event_log_file or next_free_path(Path.cwd())
    events = EventLog(log_path, time.time)
    params = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    s3 = options.s3  # the classic option names; the event log is shared, the secret is not
    del params["s3"]
    params["api_tokens"] = f"{len(options.api_tokens)} redacted"  # never a token in the log
    params |= {
        "minio_server": s3.host,
        "minio_port": s3.port,
        "minio_access_key": s3.access_key,
        "s3_secure": s3.secure,
    }
    events.write_config(
        {
            "version": __version__,
            "started": time.time(),
            "controller_url": url,
            "event_log_file": str(log_path),
            **params,
            "nodes": [asdict(n) for n in runtime.nodes()],
        }
    )
    config = ControllerConfig(
        algorithm=options.algorithm,
        max_workers=options.max_workers,
        max_idle_time=options.max_idle_time,
        call_interval=options.call_interval,
        flavor=options.flavor,
        controller_url=url,
        heartbeat_timeout=options.heartbeat_timeout,
        boot_timeout=options.boot_timeout,
        sample_interval=options.sample_interval,
        max_attempts=options.max_attempts,
        max_queue=options.max_queue,
    )
    controller = Controller(config, policy, runtime, storage, store, events)
    controller.usage = Usage(samples_path(log_path), options.sample_interval)
    log.info("event log: %s", log_path)
    # Local storage is served by the API (signed /files URLs); S3 presigns its own.
    local = storage if isinstance(storage, LocalStorage) else None
    return create_controller_app(controller, local, options.api_tokens), controller
