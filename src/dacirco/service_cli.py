"""``dacirco serve``, ``dacirco controller`` and ``dacirco rest-api``: the commands that run a
service.

The options of ``serve`` and ``controller`` are written once (``service_options``): one option
per field of ``ServiceConfig``, with that field's default, grouped by section in ``--help``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from dacirco.auth_options import (
    CLIENT_TOKEN_ENV,
    ApiTokenFile,
    ApiTokens,
    InsecureNoAuth,
    TokenError,
    service_tokens,
)
from dacirco.cli_options import (
    Algorithm,
    BootTimeout,
    CallInterval,
    DataDir,
    EventLog,
    EventLogMaxMb,
    Flavor,
    Host,
    K8sImage,
    K8sNamespace,
    Kubeconfig,
    LocalCpus,
    LocalMemory,
    LogLevel,
    MaxIdle,
    MaxOutputGb,
    MaxQueue,
    MaxWorkers,
    OsCloud,
    OsImage,
    OsNetwork,
    Parameter,
    PolicyKnob,
    Port,
    PublicUrl,
    RayAddress,
    Retention,
    Reuse,
    RuntimeOpt,
    SampleInterval,
    SlurmAccount,
    SlurmPartition,
    SlurmTimeLimit,
    configure_logging,
    option,
    option_for,
    secret_warning,
    shared_options,
)
from dacirco.config import DEFAULT_CONTROLLER_PORT
from dacirco.service_config import FLAT_NAMES, SECTIONS, ServerOptions, ServiceConfig
from dacirco.storage.cli import storage_from, storage_parameters
from dacirco.webhook_cli import WEBHOOK_NAMES, webhook_from, webhook_parameters

log = logging.getLogger(__name__)

# The options that fill the sections' fields, by the fields' flat names (service_config), in
# the order of --help; each defaults to its field's default. A field not here is no option.
SERVER_OPTIONS = {
    "host": Host,
    "port": Port,
    "data_dir": DataDir,
    "public_url": PublicUrl,
    "event_log_file": EventLog,
    "event_log_max_mb": EventLogMaxMb,
    "insecure_no_auth": InsecureNoAuth,
    "max_output_gb": MaxOutputGb,
}
CONTROLLER_OPTIONS = {
    "algorithm": Algorithm,
    "policy_knob": PolicyKnob,
    "max_workers": MaxWorkers,
    "max_idle_time": MaxIdle,
    "call_interval": CallInterval,
    "flavor": Flavor,
    "boot_timeout": BootTimeout,
    "max_queue": MaxQueue,
    "sample_interval": SampleInterval,
    "reuse": Reuse,
    "retention": Retention,
}
RUNTIME_OPTIONS = {
    "runtime": RuntimeOpt,
    "local_cpus": LocalCpus,
    "local_memory_gb": LocalMemory,
    "ray_address": RayAddress,
    "k8s_namespace": K8sNamespace,
    "k8s_image": K8sImage,
    "kubeconfig": Kubeconfig,
    "os_cloud": OsCloud,
    "os_image": OsImage,
    "os_network": OsNetwork,
    "slurm_partition": SlurmPartition,
    "slurm_account": SlurmAccount,
    "slurm_time_limit": SlurmTimeLimit,
}


def _fields(section: str, options: dict[str, Any]) -> list[Parameter]:
    config = SECTIONS[section]
    return [option_for(config, FLAT_NAMES[name][1], t, name) for name, t in options.items()]


def server_parameters(names: Iterable[str] = tuple(SERVER_OPTIONS)) -> list[Parameter]:
    """The server options ``names`` and the client tokens (``--api-token``,
    ``--api-token-file``)."""
    return [
        *_fields("server", {name: SERVER_OPTIONS[name] for name in names}),
        option("api_token", ApiTokens, None),
        option("api_token_file", ApiTokenFile, None),
    ]


def server_options(
    api_token: list[str] | None, api_token_file: Path | None, **values: Any
) -> ServerOptions:
    """The server section from the values of ``server_parameters``; a token file that cannot
    be read or a malformed token ends the command in one line."""
    try:
        tokens = service_tokens(api_token, api_token_file)
    except TokenError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    return ServerOptions(**values, api_tokens=tokens)


def service_parameters() -> list[Parameter]:
    """Every option of ``serve`` and ``controller``, by section (a panel each in --help)."""
    sections = {
        "Server": server_parameters(),
        "Scheduling": _fields("controller", CONTROLLER_OPTIONS),
        "Workers": _fields("runtime", RUNTIME_OPTIONS),
        "Storage": storage_parameters(),
        "Webhooks": webhook_parameters(),
    }
    return [
        option(p.name, p.annotation, p.default, rich_help_panel=panel)
        for panel, params in sections.items()
        for p in params
    ]


SERVER_NAMES = [p.name for p in server_parameters()]
STORAGE_NAMES = [p.name for p in storage_parameters()]


def service_config(**values: Any) -> ServiceConfig:
    """The config from the values of ``service_parameters``."""
    server = server_options(**{name: values.pop(name) for name in SERVER_NAMES})
    storage = storage_from(**{name: values.pop(name) for name in STORAGE_NAMES})
    webhooks = webhook_from(**{name: values.pop(name) for name in WEBHOOK_NAMES})
    values["policy_knob"] = tuple(values.get("policy_knob") or ())
    return replace(ServiceConfig.of(**values), server=server, storage=storage, webhooks=webhooks)


def service_options(port_default: Callable[[], int] | None = None, port_help: str | None = None):
    """Decorator: the command's ``config: ServiceConfig`` parameter becomes every option of a
    service; ``port_default`` and ``port_help``: its port's, if not the server section's."""
    params = service_parameters()
    if port_default is not None:
        params = [
            option(p.name, p.annotation, default_factory=port_default, help=port_help)
            if p.name == "port"
            else p
            for p in params
        ]
    return shared_options(params, service_config, "config")


@service_options()
def serve(config: ServiceConfig, log_level: LogLevel = "info") -> None:
    """Run the whole service in one process tree: API, controller and its workers."""
    run_service(config, log_level)


@service_options(
    lambda: DEFAULT_CONTROLLER_PORT, f"port to listen on (default {DEFAULT_CONTROLLER_PORT})"
)
def controller(config: ServiceConfig, log_level: LogLevel = "info") -> None:
    """Run the controller apart (scheduler, worker manager, worker protocol and files); pair it
    with `dacirco rest-api --controller-url`."""
    run_service(config, log_level)


def run_service(config: ServiceConfig, log_level: str) -> None:
    import uvicorn

    from dacirco.controller.gc_pauses import GcPauses
    from dacirco.redact import register, uvicorn_log_config
    from dacirco.service import ConfigError, build, unread_options, validate

    configure_logging(log_level)
    register(*config.server.api_tokens, config.webhooks.secret, config.storage.s3.secret_key)
    try:
        policy = validate(config)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    for warning in unread_options(config, policy):
        log.warning(warning)
    if knobs := config.controller.policy_knob:
        log.info("policy %s, knobs set: %s", config.controller.algorithm, ", ".join(knobs))
    # The port first, then the data dir (in build): a second instance must fail before the
    # controller's start (recovery) rewrites the state of the one already running.
    host, port = config.server.host, config.server.port
    sockets = _listen_or_exit(host, port)
    try:
        fastapi_app, controller = build(config, policy)
    except (ConfigError, FileExistsError, OSError) as exc:
        for sock in sockets:
            sock.close()
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc

    pauses = GcPauses()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            pauses.install()  # after recovery: the jobs it loaded are start-up's objects
            # The whole-heap collections, on the loop (canceled with it when it ends).
            self.collections = asyncio.get_running_loop().create_task(pauses.run())

        def handle_exit(self, sig: int, frame: object) -> None:
            # Workers' long-polls would hold the shutdown for up to their wait: end them now.
            # A signal handler may interrupt the loop anywhere: schedule, don't touch state.
            try:
                asyncio.get_running_loop().call_soon_threadsafe(controller.drain)
            except RuntimeError:
                controller.drain()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    server = uvicorn.Config(
        fastapi_app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=uvicorn_log_config(),
        # Its access lines are info: above that level, not even made (a request each).
        access_log=log_level.lower() in ("trace", "debug", "info"),
        timeout_graceful_shutdown=10,
    )
    log.info("listening on %s", ", ".join(_address(s) for s in sockets))
    log.info("dashboard: %s/ui", _address(sockets[0]))
    try:
        Server(server).run(sockets=sockets)
    finally:
        pauses.close()


@shared_options(server_parameters(["port", "host", "insecure_no_auth"]), server_options, "server")
def rest_api(
    server: ServerOptions,
    controller_url: Annotated[
        str, typer.Option(help="URL of a `dacirco controller`")
    ] = f"http://127.0.0.1:{DEFAULT_CONTROLLER_PORT}",
    controller_token: Annotated[
        str | None,
        typer.Option(
            envvar=CLIENT_TOKEN_ENV,
            help="the API token sent to the controller (env DACIRCO_API_TOKEN; default: the "
            "first --api-token)",
            show_default=False,
            show_envvar=False,
            callback=secret_warning(CLIENT_TOKEN_ENV),
        ),
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the public REST job API apart, forwarding to a controller."""
    import uvicorn

    from dacirco.api.app import create_api_app
    from dacirco.api.auth import check_auth
    from dacirco.redact import register, uvicorn_log_config

    configure_logging(log_level)
    tokens = server.api_tokens
    register(*tokens, controller_token)
    if problem := check_auth(server.host, tokens, server.insecure_no_auth):
        typer.secho(f"error: {problem}", err=True, fg="red")
        raise typer.Exit(2)
    api = create_api_app(
        controller_url,
        api_tokens=tokens,
        controller_token=controller_token or (tokens[0] if tokens else None),
    )
    uvicorn.run(
        api,
        host=server.host,
        port=server.port,
        log_level=log_level,
        log_config=uvicorn_log_config(),
    )


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host:port`` (every address ``host`` resolves to), as uvicorn
    would open them; an ``OSError`` if any cannot be had."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, addr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL or len(infos) == 1:
                    raise
                socks.pop().close()  # that family is not enabled here (as asyncio does)
                continue
            sock.listen(2048)  # listening at once: no second process can take the port now
        if not socks:
            raise OSError(errno.EADDRNOTAVAIL, f"no address of {host} can be used")
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def _listen_or_exit(host: str, port: int) -> list[socket.socket]:
    try:
        return listen(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is already in use"
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        typer.secho(f"error: {message}", err=True, fg="red")
        raise typer.Exit(2) from None


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
