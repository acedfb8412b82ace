"""A service's options: one config in sections, each default once, the command line of
``serve`` and ``controller`` built from it."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dacirco import service_cli
from dacirco.cli import app
from dacirco.controller.core import ControllerConfig
from dacirco.runtimes.factory import RuntimeOptions
from dacirco.service import recorded_options, unread_options, validate
from dacirco.service_config import (
    FLAT_NAMES,
    SECTIONS,
    ControllerOptions,
    ServerOptions,
    ServiceConfig,
    controller_config,
)
from dacirco.sim.run import SimConfig
from dacirco.storage.options import S3Config, StorageOptions

ENV = ("PORT", "DACIRCO_DATA_DIR", "DACIRCO_STORAGE", "DACIRCO_API_TOKENS", "DACIRCO_S3_ENDPOINT",
       "DACIRCO_S3_ACCESS_KEY", "DACIRCO_S3_SECRET_KEY", "DACIRCO_S3_SECURE")  # fmt: skip


@pytest.fixture
def configs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServiceConfig, str]]:
    """The configs the service commands run with (nothing is started)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    seen: list[tuple[ServiceConfig, str]] = []
    monkeypatch.setattr(
        service_cli, "run_service", lambda config, level: seen.append((config, level))
    )
    return seen


def test_the_command_line_defaults_are_the_configs(configs):
    for command in ("serve", "controller"):
        result = CliRunner().invoke(app, [command])
        assert result.exit_code == 0, result.output
    assert configs == [(ServiceConfig(), "info"), (ServiceConfig.of(port=8001), "info")]
    assert ServiceConfig().server == ServerOptions(port=8000, data_dir=Path("data"))


def test_each_option_fills_its_section(configs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("t2\n")
    args = ["serve", "--host", "0.0.0.0", "-p", "9001", "--data-dir", str(tmp_path),
            "--api-token", "t1", "--api-token-file", str(tokens), "--public-url", "http://h:1",
            "--algorithm", "right-size", "--max-workers", "4", "--boot-timeout", "30",
            "--max-queue", "0", "--sample-interval", "0", "--flavor", "tiny",
            "-r", "ray", "--ray-address", "auto", "--local-cpus", "3",
            "--storage", "s3", "--minio-server", "s3.example.org", "--minio-port", "9100",
            "--minio-secret-key", "k", "--s3-secure", "--log-level", "debug"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [(config, level)] = configs
    assert level == "debug"
    assert config.server == ServerOptions(
        host="0.0.0.0", port=9001, data_dir=tmp_path, public_url="http://h:1",
        api_tokens=("t1", "t2"),
    )  # fmt: skip
    assert config.controller == ControllerOptions(
        algorithm="right-size", max_workers=4, boot_timeout=30.0, max_queue=0,
        sample_interval=0.0, flavor="tiny",
    )  # fmt: skip
    assert config.runtime == RuntimeOptions(kind="ray", ray_address="auto", local_cpus=3)
    assert config.storage == StorageOptions(
        "s3", S3Config("s3.example.org", 9100, secret_key="k", secure=True)
    )


def test_the_controller_section_is_the_controllers_config():
    assert controller_config(ControllerOptions(), "http://h:1") == ControllerConfig(
        controller_url="http://h:1"
    )
    options = ControllerOptions(max_workers=7, flavor="tiny", heartbeat_timeout=5.0)
    assert controller_config(options, "u") == ControllerConfig(
        max_workers=7, flavor="tiny", heartbeat_timeout=5.0, controller_url="u"
    )


def test_adaptive_is_the_services_default_policy_and_grace_period_the_simulators(configs):
    assert ControllerConfig().algorithm == ServiceConfig().controller.algorithm == "adaptive"
    assert SimConfig().algorithm == "grace-period"
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert configs[-1][0].controller.algorithm == "adaptive"


def test_options_the_chosen_policy_does_not_read_are_named():
    def unread(**options: object) -> list[str]:
        config = ServiceConfig.of(**options)
        return unread_options(config, validate(config))

    assert unread() == []
    assert unread(flavor="medium", max_idle_time=120.0) == [
        "--flavor medium is not read by the adaptive policy: it chooses its own "
        "(docs/policies.md; --algorithm names another)",
        "--max-idle-time 120.0 is not read by the adaptive policy: it chooses its own "
        "(docs/policies.md; --algorithm names another)",
    ]
    assert unread(algorithm="grace-period", flavor="medium", max_idle_time=120.0) == []
    (line,) = unread(algorithm="right-size", flavor="medium", max_idle_time=120.0)
    assert line.startswith("--flavor medium is not read by the right-size policy")


def test_options_by_their_flat_names():
    config = ServiceConfig.of(host="h", max_workers=3, runtime="ray", storage="s3")
    assert config.server.host == "h" and config.controller.max_workers == 3
    assert config.runtime.kind == "ray" and config.storage.kind == "s3"
    assert config.flat()["runtime"] == "ray" and ServiceConfig.of(**config.flat()) == config
    assert len(FLAT_NAMES) == sum(len(fields(s)) for s in SECTIONS.values())  # none twice
    with pytest.raises(TypeError, match="no option 'kind'"):
        ServiceConfig.of(kind="local")


def test_the_event_logs_config_has_the_classic_names_and_no_secret():
    config = ServiceConfig.of(api_tokens=("a-token",), s3=S3Config(secret_key="a-secret"))
    recorded = recorded_options(config)
    text = json.dumps(recorded)  # written as JSON
    assert "a-token" not in text and "a-secret" not in text
    assert recorded["api_tokens"] == "1 redacted"
    assert recorded["minio_server"] == "127.0.0.1" and recorded["minio_port"] == 9000
    assert {
        "runtime": "local",
        "storage": "local",
        "flavor": "small",
        "max_workers": 2,
    }.items() <= (recorded.items())


def test_the_slurm_options_fill_the_runtime_section_and_go_with_slurm_only(configs):
    from dacirco.service import ConfigError, check

    args = ["serve", "-r", "slurm", "--slurm-partition", "debug", "--slurm-account", "lab",
            "--slurm-time-limit", "90m"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [(config, _)] = configs
    assert config.runtime == RuntimeOptions(
        kind="slurm", slurm_partition="debug", slurm_account="lab", slurm_time_limit=5400.0
    )
    check(config)
    with pytest.raises(ConfigError, match=r"--slurm-partition.* go with --runtime slurm"):
        check(ServiceConfig.of(slurm_partition="debug"))
    result = CliRunner().invoke(app, ["serve", "-r", "slurm", "--slurm-time-limit", "soon"])
    assert result.exit_code == 2 and "'soon' is not a duration" in result.output
