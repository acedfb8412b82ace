"""The ``dacirco worker`` command (classic name ``dacirco_tc_worker``), also run by
``python -m dacirco.worker``; the bearer token comes from the environment only."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from dacirco.protocol import TOKEN_ENV


def worker(
    controller: Annotated[
        str, typer.Option(help="URL of the controller, e.g. http://127.0.0.1:8001.")
    ],
    worker_id: Annotated[str, typer.Option(help="The id the controller gave this worker.")],
    name: Annotated[
        str | None, typer.Option(help="Name shown in tables and logs (default: the id).")
    ] = None,
    cpus: Annotated[
        int | None, typer.Option(min=1, help="CPUs to announce (default: this machine's).")
    ] = None,
    memory_gb: Annotated[
        float | None,
        typer.Option(min=0.01, help="Memory in GB to announce (default: this machine's)."),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="Where per-task temporary files go (default: the system's)."
        ),
    ] = None,
    give_up_after: Annotated[
        float,
        typer.Option(min=0.0, help="Exit (code 1) after the controller is unreachable this long."),
    ] = 60.0,
    storage_attempts: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="DACIRCO_STORAGE_ATTEMPTS",
            help="Tries of each download and upload, 0.5 s apart doubling to 4 s: 8 ride out "
            "about 20 s of storage outage (env DACIRCO_STORAGE_ATTEMPTS).",
        ),
    ] = 8,
    idle_exit: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Exit (code 0) after this many seconds without a task; 0: never (a node "
            "agent's pilots leave when idle).",
        ),
    ] = 0.0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run a transcoding worker: register with the controller, then take tasks one at a time
    (download, ffmpeg, upload) until the controller dismisses it or SIGTERM/SIGINT arrives.

    The bearer token is read from the DACIRCO_WORKER_TOKEN environment variable.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        typer.echo(f"error: the worker token is missing: set {TOKEN_ENV}", err=True)
        raise typer.Exit(2)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    _configure_logging(worker_id, log_level)

    from dacirco.worker.agent import AgentConfig, run_agent  # keeps --help quick

    config = AgentConfig(
        controller=controller,
        worker_id=worker_id,
        name=name or worker_id,
        cpus=cpus or os.cpu_count() or 1,
        memory_gb=memory_gb if memory_gb is not None else _memory_gb(),
        token=token,
        work_dir=work_dir,
        give_up_after=give_up_after,
        storage_attempts=storage_attempts,
        idle_exit=idle_exit,
    )
    raise typer.Exit(asyncio.run(run_agent(config)))


def _memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def _configure_logging(worker_id: str, level: str) -> None:
    from dacirco.redact import install, register
    from dacirco.worker.logfile import output_handler

    register(os.environ.get(TOKEN_ENV))
    handler = install(output_handler(os.environ) or logging.StreamHandler(sys.stderr))
    # The id is in every line because the controller may merge the logs of many workers.
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s worker={worker_id} %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request at INFO: one line per progress report is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(worker)
    app(prog_name="python -m dacirco.worker")
