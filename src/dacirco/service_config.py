"""A service's options, in one config of four sections: where it listens (``server``), how it
schedules (``controller``), where its workers run (``runtime``) and where its movies are
(``storage``).

Each default is written once, in its section; the options of ``dacirco serve`` and
``dacirco controller`` are built from these fields (``service_cli``). Every option has a flat
name, the one of its command-line option: its field's name, but the section's name for a
section's ``kind`` (``--runtime``, ``--storage``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dacirco.config import DEFAULT_HOST, default_data_dir, default_port
from dacirco.controller.core import ControllerConfig
from dacirco.runtimes.factory import RuntimeOptions
from dacirco.storage.options import StorageOptions
from dacirco.webhooks import WebhookOptions


@dataclass(frozen=True)
class ServerOptions:
    host: str = DEFAULT_HOST
    port: int = field(default_factory=default_port)  # env PORT, else 8000
    data_dir: Path = field(default_factory=default_data_dir)  # env DACIRCO_DATA_DIR, else ./data
    event_log_file: Path | None = None  # None: the first free ./tc-events-NN.txt
    public_url: str | None = None  # the URL workers call back; None: from host and port
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # clients' bearer tokens
    insecure_no_auth: bool = False  # off the loopback without tokens, on purpose
    # The largest output a worker may upload through the local storage's signed URLs (20 GB:
    # 5 h at the highest bitrate, 8000 kbit/s, with its audio); S3 applies its own limits.
    max_output_gb: float = 20.0
    # The event log continues in a new piece past this size (0: one file, never cut).
    event_log_max_mb: float = 100.0

    @property
    def max_upload(self) -> int:
        """``max_output_gb`` in bytes."""
        return int(self.max_output_gb * 10**9)


_CONTROLLER = {f.name: f.default for f in fields(ControllerConfig)}  # the controller's defaults


@dataclass(frozen=True)
class ControllerOptions:
    """The scheduling knobs of ``ControllerConfig`` that a service's options set; their
    defaults are the controller's own."""

    algorithm: str = _CONTROLLER["algorithm"]
    # NAME=VALUE each: the policy's knobs. Not the controller's: the policy is made from them
    # (``service.validate``), and the controller is given the policy.
    policy_knob: tuple[str, ...] = ()
    max_workers: int = _CONTROLLER["max_workers"]
    max_idle_time: float = _CONTROLLER["max_idle_time"]
    call_interval: float = _CONTROLLER["call_interval"]
    flavor: str = _CONTROLLER["flavor"]
    heartbeat_timeout: float = _CONTROLLER["heartbeat_timeout"]
    boot_timeout: float = _CONTROLLER["boot_timeout"]  # seconds a new worker has to register
    max_attempts: int = _CONTROLLER["max_attempts"]
    max_queue: int = _CONTROLLER["max_queue"]  # waiting jobs past which POST /jobs gets 429
    sample_interval: float = _CONTROLLER["sample_interval"]  # resource samples; 0: none
    reuse: bool = _CONTROLLER["reuse"]  # identical requests share one output
    retention: float | None = _CONTROLLER["retention"]  # seconds finished jobs are kept


def controller_config(options: ControllerOptions, url: str) -> ControllerConfig:
    """The controller's config: the controller section, and the URL its workers call back."""
    values = asdict(options)
    del values["policy_knob"]  # made into the policy, not read by the controller
    return ControllerConfig(controller_url=url, **values)


@dataclass(frozen=True)
class ServiceConfig:
    server: ServerOptions = field(default_factory=ServerOptions)
    controller: ControllerOptions = field(default_factory=ControllerOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    storage: StorageOptions = field(default_factory=StorageOptions)
    # Not a section of flat names: its options are built from the pydantic model (webhook_cli).
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)

    @classmethod
    def of(cls, **values: Any) -> ServiceConfig:
        """The config from options by their flat names, each put in its section
        (``ServiceConfig.of(host="0.0.0.0", max_workers=4, runtime="ray")``)."""
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for key, value in values.items():
            if key not in FLAT_NAMES:
                raise TypeError(f"ServiceConfig has no option {key!r}")
            section, name = FLAT_NAMES[key]
            sections[section][name] = value
        return cls(**{name: SECTIONS[name](**kw) for name, kw in sections.items()})

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name."""
        return {
            key: getattr(getattr(self, section), name)
            for key, (section, name) in FLAT_NAMES.items()
        }


SECTIONS: dict[str, type] = {
    "server": ServerOptions,
    "controller": ControllerOptions,
    "runtime": RuntimeOptions,
    "storage": StorageOptions,
}
FLAT_NAMES: dict[str, tuple[str, str]] = {  # flat name -> (section, field)
    (section if f.name == "kind" else f.name): (section, f.name)
    for section, options in SECTIONS.items()
    for f in fields(options)
}
