"""Options written once and shared by several commands, as Typer annotations; and
``shared_options``, which gives a command a list of options as one object (in the manner of
rq's ``shared_options`` + config object).

An option's default is not written here: it is the default of the field it fills
(``option_for``), so that the config dataclass is the one place that holds it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from copy import copy
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import typer

Host = Annotated[str, typer.Option(help="address to listen on")]
Port = Annotated[
    int,
    typer.Option(
        "--port", "-p", show_default=False, help="port to listen on (env PORT; default 8000)"
    ),
]
DataDir = Annotated[
    Path,
    typer.Option(
        show_default=False,
        help="catalog, outputs, state and logs (env DACIRCO_DATA_DIR; default ./data)",
    ),
]
Algorithm = Annotated[
    str,
    typer.Option(
        help="scheduling policy: adaptive, grace-period, minimize-workers, right-size or a "
        "peer (docs/policies.md)"
    ),
]
MaxWorkers = Annotated[int, typer.Option(help="most workers alive at once")]
PolicyKnob = Annotated[
    list[str],
    typer.Option(
        metavar="NAME=VALUE",
        show_default=False,
        help="set one of the policy's knobs away from its default (repeatable; adaptive's: "
        "wait_share, linger_boots, max_chunks ...; docs/policies.md)",
    ),
]
MaxIdle = Annotated[
    float, typer.Option(help="grace-period: seconds an idle worker is kept for reuse")
]
CallInterval = Annotated[float, typer.Option(help="seconds between two policy ticks")]
RuntimeOpt = Annotated[
    str,
    typer.Option(
        "--runtime", "-r", "--runner-type", help="where workers run: local, pod, vm, ray, slurm"
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="--runtime ray: the Ray cluster, auto (this machine's or RAY_ADDRESS) or host:port",
        show_default=False,
    ),
]
K8sNamespace = Annotated[str, typer.Option(help="--runtime pod: the namespace of the worker pods")]
K8sImage = Annotated[str, typer.Option(help="--runtime pod: the worker image (see Dockerfile)")]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(help="--runtime pod: kubeconfig file (default: in-cluster, else ~/.kube/config)"),
]
OsCloud = Annotated[
    str | None, typer.Option(help="--runtime vm: the clouds.yaml entry (default: env OS_CLOUD)")
]
OsImage = Annotated[str, typer.Option(help="--runtime vm: the worker image, name or id")]
OsNetwork = Annotated[
    str | None, typer.Option(help="--runtime vm: the servers' network, name or id (default: auto)")
]
SlurmPartition = Annotated[
    str | None,
    typer.Option(help="--runtime slurm: the partition (default: the cluster's default)"),
]
SlurmAccount = Annotated[
    str | None, typer.Option(help="--runtime slurm: the account the jobs are charged to")
]
BootTimeout = Annotated[
    float, typer.Option(help="seconds a new worker has to register before it is counted lost")
]
Flavor = Annotated[str, typer.Option(help="worker flavor: tiny (1 cpu), small (2), medium (4)")]
EventLog = Annotated[
    Path | None,
    typer.Option(help="event log path (default: first free ./tc-events-NN.txt)"),
]
PublicUrl = Annotated[
    str | None,
    typer.Option(help="URL workers use to reach this service (default: from host and port)"),
]
LocalCpus = Annotated[
    int | None, typer.Option(help="local runtime: cores workers may reserve (default: all)")
]
LocalMemory = Annotated[
    float | None, typer.Option(help="local runtime: GB workers may reserve (default: all)")
]
MaxOutputGb = Annotated[
    float,
    typer.Option(
        help="local storage: the largest output (GB) a worker may upload through its signed "
        "URL; larger uploads get 413"
    ),
]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning, error")]
MaxQueue = Annotated[
    int,
    typer.Option(
        help="most jobs waiting at once; past it POST /jobs answers 429 with Retry-After "
        "(0: no limit)"
    ),
]
Reuse = Annotated[
    bool,
    typer.Option(
        "--reuse/--no-reuse",
        help="serve a request identical to a completed job with its output, and attach one "
        'identical to a job in progress to it (a request may still opt out: "reuse": false)',
    ),
]


def _duration(value: Any) -> float | None:
    from dacirco.durations import parse_duration

    if value is None or isinstance(value, float | int):
        return value
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


Retention = Annotated[
    str | None,
    typer.Option(
        callback=_duration,
        metavar="DURATION",
        show_default=False,
        help="delete finished jobs (their rows and outputs) and stopped workers this long after "
        "they ended: 30d, 12h, 90m, 3600s (default: off, keep everything)",
    ),
]
SlurmTimeLimit = Annotated[
    str | None,
    typer.Option(
        callback=_duration,
        metavar="DURATION",
        show_default=False,
        help="--runtime slurm: how long a worker's job may live (sbatch --time): 12h, 90m "
        "(default: the partition's)",
    ),
]
EventLogMaxMb = Annotated[
    float,
    typer.Option(
        help="the event log continues in a new piece (tc-events-NN.txt.002 …) past this size, "
        "and so does the samples file (0: never cut)"
    ),
]
SampleInterval = Annotated[
    float,
    typer.Option(
        help="seconds between resource samples of the node and each worker "
        "(tc-events-NN.samples.jsonl); 0 turns sampling off"
    ),
]


def configure_logging(level: str) -> None:
    """What ``--log-level`` sets: the root logger, on stderr, with no secret in any line."""
    from dacirco.redact import install

    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        install(handler)


# ---- sharing options between commands --------------------------------------------------------
Parameter = inspect.Parameter
Command = TypeVar("Command", bound=Callable[..., Any])


def option(name: str, annotated: Any, default: Any = Parameter.empty, **changes: Any) -> Parameter:
    """The command parameter ``name``, an option of type ``annotated`` (``Annotated[T,
    typer.Option(...)]``) defaulting to ``default``; ``changes`` set attributes of that
    ``typer.Option`` for this use only (``default_factory``, ``help``, ``rich_help_panel``)."""
    if changes:
        kind, info = get_args(annotated)
        info = copy(info)
        for key, value in changes.items():
            setattr(info, key, value)
        annotated = Annotated[kind, info]
    return Parameter(name, Parameter.KEYWORD_ONLY, default=default, annotation=annotated)


def option_for(
    config: type, field: str, annotated: Any, name: str | None = None, **changes: Any
) -> Parameter:
    """The option ``annotated`` that fills ``field`` of the dataclass ``config``, with that
    field's default (its ``default_factory`` runs when the command runs)."""
    spec = next(f for f in dataclasses.fields(config) if f.name == field)
    if spec.default_factory is not dataclasses.MISSING:
        changes.setdefault("default_factory", spec.default_factory)
        return option(name or field, annotated, **changes)
    return option(name or field, annotated, spec.default, **changes)


def shared_options(
    params: Sequence[Parameter], build: Callable[..., Any], into: str
) -> Callable[[Command], Command]:
    """Give a command the options ``params`` as one argument: the command declares a parameter
    ``into``; its command line shows ``params`` in its place, and it is called with
    ``into=build(**their values)``."""
    names = [p.name for p in params]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own: list[Parameter] = []
        for p in signature.parameters.values():
            own.extend(params if p.name == into else [p.replace(kind=Parameter.KEYWORD_ONLY)])
        if into not in signature.parameters or len({p.name for p in own}) < len(own):
            raise TypeError(f"{command.__name__}: no parameter {into!r}, or a name taken twice")

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            shared = {name: values.pop(name) for name in names}
            return command(**values, **{into: build(**shared)})

        wrapper.__signature__ = signature.replace(parameters=own)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def comma_list(text: str, option_name: str, *, required: bool = True) -> list[str]:
    """``a, b,a`` as ``["a", "b"]``: stripped, each once, in order. Empty with ``required``:
    a one-line error naming ``option_name``."""
    items = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if required and not items:
        raise typer.BadParameter("give at least one, comma-separated", param_hint=option_name)
    return items


def secret_warning(alternative: str) -> Callable[..., Any]:
    """The callback of a secret option: given on the command line, the secret still works, but
    a one-line warning says that it shows in `ps` and names ``alternative`` (an environment
    variable or a file option); the secret itself is never printed."""

    def warn(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        source = ctx.get_parameter_source(param.name or "")
        # By name: Typer may carry its own copy of click, with its own enum.
        if value and getattr(source, "name", None) == "COMMANDLINE":
            typer.secho(
                f"warning: {param.opts[0]} on the command line shows in `ps` to every user of "
                f"this machine; use {alternative} instead",
                err=True,
                fg="yellow",
            )
        return value

    return warn
