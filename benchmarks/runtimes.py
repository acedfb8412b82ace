"""How long a worker takes from the start decision to its registration, per runtime.

In one run, alternately: a local process (``LocalRuntime``), a Ray actor (``RayRuntime``
on a local multi-node Ray cluster started here, or on ``--ray-address``) and a SLURM job
(``SlurmRuntime`` on a single-node SLURM cluster started here, where SLURM is installed:
``make slurm``; ``--no-slurm`` leaves it out), ``--repeats`` times each (20 by default). Each
sample is the time from the call to ``runtime.start`` to the worker's ``POST /worker/register``
arriving at a stand-in controller in this process (one clock); the worker is then stopped
before the next one starts. Prints a table of medians.

    python benchmarks/runtimes.py [--repeats 20] [--ray-address host:port] [--flavor tiny]
                                  [--no-slurm]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from fastapi import FastAPI, Request, Response
from rich.console import Console
from rich.table import Table

from dacirco.api.thread_server import serve_in_thread
from dacirco.core.placement import place
from dacirco.domain import FLAVORS
from dacirco.policies.base import NodeView
from dacirco.runtimes.base import Runtime, WorkerSpec
from dacirco.runtimes.local import LocalRuntime


class Sink:
    """A stand-in controller: notes when each worker registers; gives it no task."""

    def __init__(self) -> None:
        self.url = ""
        self.registered: dict[str, float] = {}
        self.cond = threading.Condition()

    def wait(self, worker_id: str, timeout: float = 120.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: worker_id in self.registered, timeout):
                raise TimeoutError(f"worker {worker_id} did not register within {timeout} s")
            return self.registered[worker_id]


@contextlib.contextmanager
def sink_server() -> Iterator[Sink]:
    sink = Sink()
    app = FastAPI()

    @app.post("/worker/register")
    async def register(request: Request) -> dict:
        now = time.monotonic()
        body = await request.json()
        with sink.cond:
            sink.registered[body["worker_id"]] = now
            sink.cond.notify_all()
        return {"worker_id": body["worker_id"], "poll_wait": 1.0, "sample_interval": 0.0}

    @app.get("/worker/task")
    async def task() -> Response:
        return Response(status_code=204)

    with serve_in_thread(app) as url:
        sink.url = url
        yield sink


async def one_start(runtime: Runtime, sink: Sink, flavor: str) -> float:
    wid = str(uuid.uuid4())
    # Each worker is stopped before the next starts: every node is free.
    views = [NodeView(n.name, n.cpus, n.memory_gb, n.cpus, n.memory_gb) for n in runtime.nodes()]
    node = place(views, FLAVORS[flavor])
    spec = WorkerSpec(wid, f"bench-{wid[:8]}", FLAVORS[flavor], sink.url, f"t-{wid}", node)
    t0 = time.monotonic()
    await runtime.start(spec)
    registered = await asyncio.to_thread(sink.wait, wid)
    await runtime.stop(wid)
    return registered - t0


async def measure(
    runtimes: dict[str, Runtime], sink: Sink, repeats: int, flavor: str
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in runtimes}
    for i in range(repeats):
        for name, runtime in runtimes.items():  # alternately: the same machine state for both
            samples[name].append(await one_start(runtime, sink, flavor))
        print(
            f"  {i + 1}/{repeats}: " + ", ".join(f"{n} {s[-1]:.2f} s" for n, s in samples.items())
        )
    for runtime in runtimes.values():
        await runtime.close()
    return samples


def main(
    repeats: Annotated[int, typer.Option(min=1, help="starts per runtime")] = 20,
    ray_address: Annotated[
        str | None,
        typer.Option(help="an existing Ray cluster (default: a local one, started here)"),
    ] = None,
    flavor: Annotated[str, typer.Option(help="worker flavor")] = "tiny",
    slurm: Annotated[
        bool, typer.Option(help="also a SLURM job, on a one-node SLURM cluster started here")
    ] = True,
) -> None:
    from dacirco.runtimes.ray import RayRuntime
    from dacirco.runtimes.ray_cluster import LocalRayCluster
    from dacirco.runtimes.slurm import SlurmRuntime
    from dacirco.runtimes.slurm_cluster import LocalSlurmCluster, missing_programs

    slurm_cluster = None
    if slurm and (missing := missing_programs()):
        print(f"no SLURM here ({', '.join(missing)} missing: make slurm): SLURM left out")
    elif slurm:
        print("starting a one-node SLURM cluster…")
        slurm_cluster = LocalSlurmCluster().start()

    cluster = None
    if ray_address is None:
        print("starting a local Ray cluster (head + compute1..3)…")
        cluster = LocalRayCluster()
        ray_address = cluster.start()
    try:
        with tempfile.TemporaryDirectory() as tmp, sink_server() as sink:
            runtimes: dict[str, Runtime] = {
                "local process": LocalRuntime(log_dir=Path(tmp) / "logs", work_root=Path(tmp)),
                "Ray actor": RayRuntime(ray_address),
            }
            if slurm_cluster is not None:
                runtimes["SLURM job"] = SlurmRuntime(conf=slurm_cluster.conf, log_dir=Path(tmp))
            samples = asyncio.run(measure(runtimes, sink, repeats, flavor))
    finally:
        if cluster is not None:
            cluster.stop()
        if slurm_cluster is not None:
            slurm_cluster.stop()
    table = Table(title=f"start decision → registration, {repeats} starts each ({flavor} worker)")
    for column in ("runtime", "median s", "min s", "max s", "first s"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for name, values in samples.items():
        table.add_row(
            name,
            f"{statistics.median(values):.2f}",
            f"{min(values):.2f}",
            f"{max(values):.2f}",
            f"{values[0]:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
