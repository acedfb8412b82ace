"""Assembles a running service from its config (``service_config``): storage, policy,
runtime, store, event log, controller and app."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from dacirco import __version__
from dacirco.analytics.samples import samples_path
from dacirco.api.app import create_controller_app
from dacirco.api.auth import check_auth
from dacirco.config import STORAGES, database_path, open_storage
from dacirco.controller.core import Controller
from dacirco.controller.events import EventLog, next_free_path
from dacirco.controller.store import Store
from dacirco.controller.usage import Usage
from dacirco.domain import FLAVORS
from dacirco.policies.base import Policy, PolicyParams, make_policy
from dacirco.policies.knobs import apply as apply_knobs
from dacirco.policies.knobs import parse as parse_knobs
from dacirco.runtimes.factory import RUNTIMES, RuntimeUnavailable, make_runtime
from dacirco.runtimes.pilots import PilotRuntime
from dacirco.service_config import ControllerOptions, ServiceConfig, controller_config
from dacirco.storage.base import Storage, StorageError
from dacirco.storage.local import LocalStorage
from dacirco.webhooks import Deliverer, load_or_create_secret

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


def controller_url(config: ServiceConfig) -> str:
    server = config.server
    if server.public_url:
        return server.public_url.rstrip("/")
    host = server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def check(config: ServiceConfig) -> None:
    server, scheduling, runtime = config.server, config.controller, config.runtime
    if runtime.kind not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime.kind!r}: choose one of {', '.join(RUNTIMES)}")
    if runtime.ray_address is not None and runtime.kind != "ray":
        raise ConfigError("--ray-address goes with --runtime ray")
    slurm = (runtime.slurm_partition, runtime.slurm_account, runtime.slurm_time_limit)
    if runtime.kind != "slurm" and any(v is not None for v in slurm):
        raise ConfigError(
            "--slurm-partition, --slurm-account and --slurm-time-limit go with --runtime slurm"
        )
    if runtime.slurm_time_limit is not None and not runtime.slurm_time_limit > 0:
        raise ConfigError("--slurm-time-limit must be more than 0")
    if scheduling.flavor not in FLAVORS:
        raise ConfigError(f"--flavor {scheduling.flavor!r}: choose one of {', '.join(FLAVORS)}")
    if (storage := config.storage.kind) not in STORAGES:
        raise ConfigError(f"--storage {storage!r}: choose one of {', '.join(STORAGES)}")
    if scheduling.boot_timeout <= 0:
        raise ConfigError("--boot-timeout must be positive")
    if scheduling.max_workers < 1:
        raise ConfigError("--max-workers must be at least 1")
    if scheduling.call_interval <= 0:
        raise ConfigError("--call-interval must be positive")
    if scheduling.max_idle_time < 0:
        raise ConfigError("--max-idle-time must not be negative")
    if scheduling.max_queue < 0:
        raise ConfigError("--max-queue must not be negative (0: no limit)")
    if problem := check_auth(server.host, server.api_tokens, server.insecure_no_auth):
        raise ConfigError(problem)
    if scheduling.sample_interval < 0:
        raise ConfigError("--sample-interval must not be negative (0 turns sampling off)")
    if not server.max_output_gb > 0:
        raise ConfigError("--max-output-gb must be positive")
    if not server.event_log_max_mb >= 0:
        raise ConfigError("--event-log-max-mb must not be negative (0: never cut)")
    if scheduling.retention is not None and not scheduling.retention > 0:
        raise ConfigError("--retention must be more than 0 (off: keep everything)")


def validate(config: ServiceConfig) -> Policy:
    """Check the options and make the policy; touches nothing (no file, no port)."""
    check(config)
    scheduling = config.controller
    try:
        knobs = parse_knobs(scheduling.policy_knob)
    except ValueError as exc:
        raise ConfigError(f"--policy-knob {exc}") from exc
    params = PolicyParams(scheduling.max_idle_time, scheduling.flavor)
    try:
        policy = make_policy(scheduling.algorithm, params)
    except ValueError as exc:
        raise ConfigError(f"--algorithm: {exc}") from exc
    try:
        return apply_knobs(policy, knobs, scheduling.algorithm)
    except ValueError as exc:
        raise ConfigError(f"--policy-knob {exc}") from exc


def unread_options(config: ServiceConfig, policy: Policy) -> list[str]:
    """Options set away from their defaults that ``policy`` does not read (adaptive runs its own
    flavor and idle times): one warning each, so a changed default policy is not silent. What
    the policy reads is told by the policy as the options alone make it (a knob of the same
    name, ``--policy-knob max_idle_time=...``, is not the option)."""
    scheduling, defaults = config.controller, ControllerOptions()
    if scheduling.policy_knob:
        policy = make_policy(
            scheduling.algorithm, PolicyParams(scheduling.max_idle_time, scheduling.flavor)
        )
    return [
        f"{option} {getattr(scheduling, name)} is not read by the {scheduling.algorithm} "
        "policy: it chooses its own (docs/policies.md; --algorithm names another)"
        for option, name in (("--flavor", "flavor"), ("--max-idle-time", "max_idle_time"))
        if getattr(scheduling, name) != getattr(defaults, name)
        and getattr(policy, name, None) != getattr(scheduling, name)
    ]


def build(config: ServiceConfig, policy: Policy | None = None) -> tuple[FastAPI, Controller]:
    """The app and its controller; the data dir is locked for as long as the app lives.
    ``policy``: what ``validate(config)`` already returned, if the caller validated first."""
    policy = policy or validate(config)
    data_dir = Path(config.server.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # S3 is checked before the lock (a refusal leaves no trace); the local folder after it.
    storage = connect_storage(config, data_dir) if config.storage.kind == "s3" else None
    lock = lock_data_dir(data_dir)  # before anything is read or written
    try:
        app, controller = _assemble(
            config, data_dir, policy, storage or connect_storage(config, data_dir)
        )
    except BaseException:
        lock.close()
        raise
    app.state.data_dir_lock = lock  # held as long as the app lives
    return app, controller


def connect_storage(config: ServiceConfig, data_dir: Path) -> Storage:
    """The storage, reached once before anything starts: S3 down or refusing our credentials
    stops the start with one line (a ``ConfigError``)."""
    storage = config.storage
    try:
        return open_storage(storage.kind, data_dir, storage.s3, base_url=controller_url(config))
    except StorageError as exc:
        raise ConfigError(str(exc)) from None


def recorded_options(config: ServiceConfig) -> dict[str, Any]:
    """The options as the event log's ``.config.txt`` records them: by their flat names, the
    S3 ones by their classic names; neither a token nor the S3 secret key."""
    options = {k: str(v) if isinstance(v, Path) else v for k, v in config.flat().items()}
    # The knobs as the policy took them (``validate`` checked them before the log is written).
    options["policy_knob"] = dict(parse_knobs(config.controller.policy_knob))
    s3 = options.pop("s3")
    options["api_tokens"] = f"{len(config.server.api_tokens)} redacted"
    hooks = config.webhooks.model_dump(exclude={"secret"})
    options |= {f"webhook_{k}" if k != "url" else "webhook": v for k, v in hooks.items()}
    return options | {
        "minio_server": s3.host,
        "minio_port": s3.port,
        "minio_access_key": s3.access_key,
        "s3_secure": s3.secure,
    }


def _assemble(
    config: ServiceConfig, data_dir: Path, policy: Policy, storage: Storage
) -> tuple[FastAPI, Controller]:
    url = controller_url(config)
    work_root = data_dir / "work"
    # Ours alone (the lock): what is there is left by workers of a run that crashed.
    shutil.rmtree(work_root, ignore_errors=True)
    try:
        # The node agents' machines beside it (``dacirco node-agent``): pilots on idle cycles.
        runtime = PilotRuntime(
            make_runtime(
                config.runtime, data_dir / "logs", work_root, config.controller.boot_timeout
            )
        )
    except RuntimeUnavailable as exc:
        raise ConfigError(str(exc)) from None
    store = Store(database_path(data_dir))
    log_path = config.server.event_log_file or next_free_path(Path.cwd())
    max_bytes = int(config.server.event_log_max_mb * 10**6)
    events = EventLog(log_path, time.time, max_bytes)
    events.write_config(
        {
            "version": __version__,
            "started": time.time(),
            "controller_url": url,
            **recorded_options(config),
            "event_log_file": str(log_path),
            "nodes": [asdict(n) for n in runtime.nodes()],
        }
    )
    hooks = config.webhooks
    controller_cfg = replace(
        controller_config(config.controller, url),
        webhook_allow_private=hooks.allow_private,
        webhook_progress_interval=hooks.progress_interval,
    )
    controller = Controller(controller_cfg, policy, runtime, storage, store, events)
    controller.webhook = hooks.url
    controller.deliverer = Deliverer(
        database_path(data_dir),
        load_or_create_secret(data_dir, hooks.secret),
        give_up_after=hooks.give_up_after,
        timeout=hooks.timeout,
        allow_private=hooks.allow_private,
    )
    if controller.retention is not None:
        controller.retention.log_dir = data_dir / "logs"
    controller.usage = Usage(samples_path(log_path), config.controller.sample_interval, max_bytes)
    log.info("event log: %s", log_path)
    # Local storage is served by the API (signed /files URLs); S3 presigns its own.
    local = storage if isinstance(storage, LocalStorage) else None
    if local is not None and (swept := local.sweep_partial()):
        log.warning("deleted %d partial upload(s) left by a previous run", swept)
    app = create_controller_app(
        controller, local, config.server.api_tokens, max_upload=config.server.max_upload
    )
    return app, controller
