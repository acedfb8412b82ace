"""The ``dacirco`` command and its classic aliases (``dacirco_controller``, ``dacirco_rest_api``,
``dacirco_tc_worker``)."""

import asyncio
import errno
import logging
import socket
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from dacirco import __version__
from dacirco.analytics.cli import process_logs as process_logs_command
from dacirco.analytics.report_cli import node_stats_command, report_command
from dacirco.auth_options import (
    CLIENT_TOKEN_ENV,
    ApiTokenFile,
    ApiTokens,
    InsecureNoAuth,
    TokenError,
    service_tokens,
)
from dacirco.calibration import calibrate as calibrate_command
from dacirco.catalog.cli import catalog_app
from dacirco.cli_options import (
    Algorithm,
    BootTimeout,
    CallInterval,
    DataDir,
    EventLog,
    Flavor,
    Host,
    K8sImage,
    K8sNamespace,
    Kubeconfig,
    LocalCpus,
    LocalMemory,
    LogLevel,
    MaxIdle,
    MaxQueue,
    MaxWorkers,
    OsCloud,
    OsImage,
    OsNetwork,
    PublicUrl,
    RayAddress,
    RuntimeOpt,
    SampleInterval,
)
from dacirco.config import DEFAULT_CONTROLLER_PORT, default_port
from dacirco.monitor import monitor as monitor_command
from dacirco.scenario.cli import scenario as scenario_command
from dacirco.scenario.cli import wait_scenario as wait_scenario_command
from dacirco.sim.cli import compare_command, simulate
from dacirco.storage.cli import (
    MinioAccessKey,
    MinioPort,
    MinioSecretKey,
    MinioServer,
    S3Secure,
    StorageKind,
    s3_config,
    storage_app,
)
from dacirco.worker.cli import worker as worker_command

log = logging.getLogger(__name__)

app = typer.Typer(
    help="DaCirco: transcoding on demand. Start with `dacirco serve`.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(catalog_app, name="catalog", help="Generate, add and list the movies of the catalog.")
app.add_typer(storage_app, name="storage", help="Object storage: run a local S3 server.")
app.command("worker")(worker_command)
app.command("monitor")(monitor_command)
app.command("scenario")(scenario_command)
app.command("wait-scenario")(wait_scenario_command)
app.command("process-logs")(process_logs_command)
app.command("simulate")(simulate)
app.command("compare")(compare_command)
app.command("calibrate")(calibrate_command)
app.command("report")(report_command)
app.command("node-stats")(node_stats_command)


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


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
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


def _serve(port: int, host: str, log_level: str, **kwargs: object) -> None:
    import uvicorn

    from dacirco.service import ConfigError, ServeOptions, build, validate

    _logging(log_level)
    given, file = kwargs.pop("api_token"), kwargs.pop("api_token_file")
    try:
        kwargs["api_tokens"] = service_tokens(given, file)  # type: ignore[arg-type]
    except TokenError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    options = ServeOptions(host=host, port=port, **kwargs)  # type: ignore[arg-type]
    try:
        policy = validate(options)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc
    # The port first, then the data dir (in build): a second instance must fail before the
    # controller's start (recovery) rewrites the state of the one already running.
    sockets = _listen_or_exit(host, port)
    try:
        fastapi_app, controller = build(options, policy)
    except (ConfigError, FileExistsError, OSError) as exc:
        for sock in sockets:
            sock.close()
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from exc

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            # Workers' long-polls would hold the shutdown for up to their wait: end them now.
            # A signal handler may interrupt the loop anywhere: schedule, don't touch state.
            try:
                asyncio.get_running_loop().call_soon_threadsafe(controller.drain)
            except RuntimeError:
                controller.drain()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    config = uvicorn.Config(
        fastapi_app, host=host, port=port, log_level=log_level.lower(), timeout_graceful_shutdown=10
    )
    log.info("listening on %s", ", ".join(_address(s) for s in sockets))
    Server(config).run(sockets=sockets)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _service_command(port_default: Callable[[], int], port_help: str, doc: str) -> Callable:
    """`serve` and `controller` take the same options; only the default port differs."""

    def command(
        data_dir: DataDir,
        port: Annotated[
            int,
            typer.Option(
                "--port", "-p", default_factory=port_default, show_default=False, help=port_help
            ),
        ],
        host: Host = "127.0.0.1",
        algorithm: Algorithm = "grace-period",
        max_workers: MaxWorkers = 2,
        max_idle_time: MaxIdle = 60.0,
        call_interval: CallInterval = 1.0,
        runtime: RuntimeOpt = "local",
        ray_address: RayAddress = None,
        k8s_namespace: K8sNamespace = "default",
        k8s_image: K8sImage = "dacirco-worker:latest",
        kubeconfig: Kubeconfig = None,
        os_cloud: OsCloud = None,
        os_image: OsImage = "dacirco-worker",
        os_network: OsNetwork = None,
        boot_timeout: BootTimeout = 120.0,
        flavor: Flavor = "small",
        event_log_file: EventLog = None,
        public_url: PublicUrl = None,
        local_cpus: LocalCpus = None,
        local_memory_gb: LocalMemory = None,
        storage: StorageKind = "local",
        minio_server: MinioServer = None,
        minio_port: MinioPort = None,
        minio_access_key: MinioAccessKey = "minio",
        minio_secret_key: MinioSecretKey = "pass4minio",
        s3_secure: S3Secure = False,
        max_queue: MaxQueue = 1000,
        api_token: ApiTokens = None,
        api_token_file: ApiTokenFile = None,
        insecure_no_auth: InsecureNoAuth = False,
        sample_interval: SampleInterval = 1.0,
        log_level: LogLevel = "info",
    ) -> None:
        _serve(
            port, host, log_level, data_dir=data_dir, algorithm=algorithm,
            max_workers=max_workers, max_idle_time=max_idle_time, call_interval=call_interval,
            runtime=runtime, ray_address=ray_address, flavor=flavor,
            k8s_namespace=k8s_namespace, k8s_image=k8s_image, kubeconfig=kubeconfig,
            os_cloud=os_cloud, os_image=os_image, os_network=os_network,
            boot_timeout=boot_timeout,
            event_log_file=event_log_file,
            public_url=public_url, local_cpus=local_cpus, local_memory_gb=local_memory_gb,
            storage=storage, sample_interval=sample_interval,
            max_queue=max_queue, api_token=api_token, api_token_file=api_token_file,
            insecure_no_auth=insecure_no_auth,
            s3=s3_config(minio_server, minio_port, minio_access_key, minio_secret_key, s3_secure),
        )  # fmt: skip

    command.__doc__ = doc
    return command


serve = app.command("serve")(
    _service_command(
        default_port,
        "port to listen on (env PORT; default 8000)",
        "Run the whole service in one process tree: API, controller and its workers.",
    )
)
controller = app.command("controller")(
    _service_command(
        lambda: DEFAULT_CONTROLLER_PORT,
        f"port to listen on (default {DEFAULT_CONTROLLER_PORT})",
        "Run the controller apart (scheduler, worker manager, worker protocol and files); "
        "pair it with `dacirco rest-api --controller-url`.",
    )
)


@app.command("rest-api")
def rest_api(
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            default_factory=default_port,
            show_default=False,
            help="port to listen on (env PORT; default 8000)",
        ),
    ],
    host: Host = "127.0.0.1",
    controller_url: Annotated[
        str, typer.Option(help="URL of a `dacirco controller`")
    ] = f"http://127.0.0.1:{DEFAULT_CONTROLLER_PORT}",
    api_token: ApiTokens = None,
    api_token_file: ApiTokenFile = None,
    insecure_no_auth: InsecureNoAuth = False,
    controller_token: Annotated[
        str | None,
        typer.Option(
            envvar=CLIENT_TOKEN_ENV,
            help="the API token sent to the controller (env DACIRCO_API_TOKEN; default: the "
            "first --api-token)",
            show_default=False,
            show_envvar=False,
        ),
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Run the public REST job API apart, forwarding to a controller."""
    import uvicorn

    from dacirco.api.app import create_api_app
    from dacirco.api.auth import check_auth

    _logging(log_level)
    try:
        tokens = service_tokens(api_token, api_token_file)
    except TokenError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    if problem := check_auth(host, tokens, insecure_no_auth):
        typer.secho(f"error: {problem}", err=True, fg="red")
        raise typer.Exit(2)
    api = create_api_app(
        controller_url,
        api_tokens=tokens,
        controller_token=controller_token or (tokens[0] if tokens else None),
    )
    uvicorn.run(api, host=host, port=port, log_level=log_level)


def _alias(command: object, prog_name: str) -> None:
    single = typer.Typer(add_completion=False)
    single.command()(command)  # type: ignore[arg-type]
    single(prog_name=prog_name)


def controller_alias() -> None:
    _alias(controller, "dacirco_controller")


def rest_api_alias() -> None:
    _alias(rest_api, "dacirco_rest_api")


def worker_alias() -> None:
    _alias(worker_command, "dacirco_tc_worker")


def monitor_alias() -> None:
    _alias(monitor_command, "dacirco_rest_monitor")


def scenario_alias() -> None:
    _alias(scenario_command, "dacirco_scenario")


def wait_scenario_alias() -> None:
    _alias(wait_scenario_command, "dacirco_wait_scenario")


def process_logs_alias() -> None:
    _alias(process_logs_command, "dacirco_process_logs")


def node_stats_alias() -> None:
    _alias(node_stats_command, "dacirco_get_node_stats")


if __name__ == "__main__":
    app()
