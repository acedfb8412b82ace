"""The ``dacirco`` command and its classic aliases (``dacirco_controller``, ``dacirco_rest_api``,
``dacirco_tc_worker`` ...).

Each command lives in its own module, imported only when that command runs (or when
``dacirco --help`` lists them all): ``dacirco simulate`` pays neither for FastAPI and the
controller nor for matplotlib, the S3 SDK or PyAV.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dacirco import __version__

# Every command by name, as "module:attribute": a command function, or a Typer for a group of
# commands; `dacirco --help` lists them in this order.
COMMANDS = {
    "serve": "dacirco.service_cli:serve",
    "controller": "dacirco.service_cli:controller",
    "rest-api": "dacirco.service_cli:rest_api",
    "worker": "dacirco.worker.cli:worker",
    "node-agent": "dacirco.nodeagent.cli:node_agent",
    "scenario": "dacirco.scenario.cli:scenario",
    "wait-scenario": "dacirco.scenario.cli:wait_scenario",
    "process-logs": "dacirco.analytics.cli:process_logs",
    "report": "dacirco.analytics.report_cli:report_command",
    "node-stats": "dacirco.analytics.report_cli:node_stats_command",
    "simulate": "dacirco.sim.cli:simulate",
    "compare": "dacirco.sim.cli:compare_command",
    "calibrate": "dacirco.calibration:calibrate",
    "monitor": "dacirco.monitor:monitor",
    "catalog": "dacirco.catalog.cli:catalog_app",
    "storage": "dacirco.storage.cli:storage_app",
    "jobs": "dacirco.client.cli:jobs_app",
    "presets": "dacirco.client.presets_cli:presets_app",
}


def command(name: str) -> Any:
    """The command function (or the Typer of a group) ``name`` stands for."""
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


class Commands(TyperGroup):
    """The commands of ``COMMANDS``, each built when it is first asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *super().list_commands(ctx)]))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            target = command(cmd_name)
            if isinstance(target, typer.Typer):
                built = typer.main.get_group(target)
            else:
                single = typer.Typer(add_completion=False)
                single.command(cmd_name)(target)
                built = typer.main.get_command(single)
            built.name = cmd_name
            self.add_command(built, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=Commands,
    help="DaCirco: transcoding on demand. Start with `dacirco serve`.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dacirco {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print version")
    ] = False,
) -> None:
    """DaCirco: transcoding on demand."""


def _alias(name: str, prog_name: str) -> None:
    single = typer.Typer(add_completion=False)
    single.command()(command(name))
    single(prog_name=prog_name)


def controller_alias() -> None:
    _alias("controller", "dacirco_controller")


def rest_api_alias() -> None:
    _alias("rest-api", "dacirco_rest_api")


def worker_alias() -> None:
    _alias("worker", "dacirco_tc_worker")


def monitor_alias() -> None:
    _alias("monitor", "dacirco_rest_monitor")


def scenario_alias() -> None:
    _alias("scenario", "dacirco_scenario")


def wait_scenario_alias() -> None:
    _alias("wait-scenario", "dacirco_wait_scenario")


def process_logs_alias() -> None:
    _alias("process-logs", "dacirco_process_logs")


def node_stats_alias() -> None:
    _alias("node-stats", "dacirco_get_node_stats")


if __name__ == "__main__":
    app()
