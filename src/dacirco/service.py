"""Assembles a running service from options: storage, policy, runtime, store, event log,
controller and app."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from dacirco import __version__
from dacirco.api.app import create_controller_app
from dacirco.config import database_path, open_local_storage
from dacirco.controller.core import Controller, ControllerConfig
from dacirco.controller.events import EventLog, next_free_path
from dacirco.controller.store import Store
from dacirco.domain import FLAVORS
from dacirco.policies.base import PolicyParams, make_policy
from dacirco.runtimes.local import LocalRuntime

log = logging.getLogger(__name__)

RUNTIMES = ("local",)


class ConfigError(ValueError):
    """An option that cannot work; said in one line, before anything starts."""


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
    if options.flavor not in FLAVORS:
        raise ConfigError(f"--flavor {options.flavor!r}: choose one of {', '.join(FLAVORS)}")
    if options.max_workers < 1:
        raise ConfigError("--max-workers must be at least 1")
    if options.call_interval <= 0:
        raise ConfigError("--call-interval must be positive")
    if options.max_idle_time < 0:
        raise ConfigError("--max-idle-time must not be negative")


def build(options: ServeOptions) -> tuple[FastAPI, Controller]:
    check(options)
    try:
        policy = make_policy(
            options.algorithm,
            PolicyParams(max_idle_time=options.max_idle_time, flavor=options.flavor),
        )
    except ValueError as exc:
        raise ConfigError(f"--algorithm: {exc}") from exc
    data_dir = Path(options.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = controller_url(options)
    storage = open_local_storage(data_dir, base_url=url)
    runtime = LocalRuntime(
        cpus=options.local_cpus, memory_gb=options.local_memory_gb, log_dir=data_dir / "logs"
    )
    store = Store(database_path(data_dir))
    log_path = options.event_log_file or next_free_path(Path.cwd())
    events = EventLog(log_path, time.time)
    params = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
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
        max_attempts=options.max_attempts,
    )
    controller = Controller(config, policy, runtime, storage, store, events)
    log.info("event log: %s", log_path)
    return create_controller_app(controller, storage), controller
