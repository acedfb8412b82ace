"""``dacirco node-agent``: offer this machine's idle cycles to a controller as pilot workers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from dacirco.auth_options import CLIENT_TOKEN_ENV


def node_agent(
    controller: Annotated[
        str, typer.Option(help="URL of the controller, e.g. http://10.0.0.5:8000.")
    ],
    token_file: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="A file holding the API token sent to the controller "
            f"(else env {CLIENT_TOKEN_ENV}).",
        ),
    ] = None,
    node_name: Annotated[
        str | None,
        typer.Option(help="The node's name at the controller (default: idle-<host name>)."),
    ] = None,
    cpus: Annotated[
        int | None,
        typer.Option(
            min=1, help="Cores offered while the owner leaves room (default: the idle ones)."
        ),
    ] = None,
    memory_gb: Annotated[
        float | None,
        typer.Option(min=0.1, help="GB offered to pilots (default: half of this machine's)."),
    ] = None,
    max_owner_load: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="The owner's load, in cores, above which pilots stop (with --baseline: "
            "above the load measured at rest). Default: half of the cores.",
        ),
    ] = None,
    baseline: Annotated[
        float,
        typer.Option(
            min=0.0, help="Seconds to measure the owner's load at rest first (0: no baseline)."
        ),
    ] = 0.0,
    preempt_after: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds the owner's load must stay above the threshold before the pilots "
            "stop (and below it before pilots are offered again).",
        ),
    ] = 3.0,
    window: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds over which the owner's load is averaged."),
    ] = 2.0,
    pilot_ttl: Annotated[
        float, typer.Option(min=1.0, help="Seconds a pilot may live; then it is stopped.")
    ] = 3600.0,
    pilot_idle: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds without a task after which a pilot exits (0: never)."),
    ] = 60.0,
    work_dir: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Where pilots keep their task files and logs."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run pilot workers on this machine while its owner leaves it idle (Plancton's model).

    The agent measures the load of every process but its pilots, offers the idle cores to the
    controller, starts the pilots the controller asks for, and stops them (preempted: their
    tasks wait again, no attempt counted) when the owner's load stays above the threshold.
    """
    parts = urlsplit(controller)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        typer.echo(f"error: --controller {controller!r}: give an http:// or https:// URL", err=True)
        raise typer.Exit(2)
    token = os.environ.get(CLIENT_TOKEN_ENV, "").strip() or None
    if token_file is not None:
        try:
            token = token_file.read_text().strip() or None
        except OSError as exc:
            typer.echo(
                f"error: --token-file {token_file}: cannot be read: {exc.strerror}", err=True
            )
            raise typer.Exit(2) from None
        if token is None:
            typer.echo(f"error: --token-file {token_file}: holds no token", err=True)
            raise typer.Exit(2)
    import psutil

    name = node_name or f"idle-{socket.gethostname()}"
    cores = psutil.cpu_count() or 1
    memory = memory_gb or round(psutil.virtual_memory().total / 2**30 / 2, 1)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s node-agent %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)

    from dacirco.nodeagent.agent import AgentOptions, NodeAgent

    options = AgentOptions(
        controller=controller,
        token=token,
        node=name,
        memory_gb=memory,
        max_owner_load=max_owner_load if max_owner_load is not None else cores / 2,
        cpus=cpus,
        baseline=baseline,
        preempt_after=preempt_after,
        window=window,
        pilot_ttl=pilot_ttl,
        pilot_idle=pilot_idle,
        work_dir=work_dir / "work" if work_dir else None,
        log_dir=work_dir / "logs" if work_dir else None,
    )
    raise typer.Exit(asyncio.run(_run(NodeAgent(options))))


async def _run(agent: object) -> int:
    from dacirco.nodeagent.agent import NodeAgent

    assert isinstance(agent, NodeAgent)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)  # type: ignore[union-attr]
    return await agent.run()
