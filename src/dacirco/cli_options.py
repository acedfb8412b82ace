"""The options of `dacirco serve` and `dacirco controller`, as Typer annotations."""

from pathlib import Path
from typing import Annotated

import typer

from dacirco.config import default_data_dir

Host = Annotated[str, typer.Option(help="address to listen on")]
DataDir = Annotated[
    Path,
    typer.Option(
        default_factory=default_data_dir,
        show_default=False,
        help="catalog, outputs, state and logs (env DACIRCO_DATA_DIR; default ./data)",
    ),
]
Algorithm = Annotated[
    str, typer.Option(help="scheduling policy: minimize-workers, grace-period, right-size")
]
MaxWorkers = Annotated[int, typer.Option(help="most workers alive at once")]
MaxIdle = Annotated[
    float, typer.Option(help="grace-period: seconds an idle worker is kept for reuse")
]
CallInterval = Annotated[float, typer.Option(help="seconds between two policy ticks")]
RuntimeOpt = Annotated[
    str,
    typer.Option("--runtime", "-r", "--runner-type", help="where workers run: local, pod, vm, ray"),
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
LogLevel = Annotated[str, typer.Option(help="debug, info, warning, error")]
MaxQueue = Annotated[
    int,
    typer.Option(
        help="most jobs waiting at once; past it POST /jobs answers 429 with Retry-After "
        "(0: no limit)"
    ),
]
SampleInterval = Annotated[
    float,
    typer.Option(
        help="seconds between resource samples of the node and each worker "
        "(tc-events-NN.samples.jsonl); 0 turns sampling off"
    ),
]
