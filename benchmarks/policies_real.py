"""The policies on a real run: the same scaled-down scenario played against the real service
(local runtime, real ffmpeg) under each policy, and simulated; is the ordering of the policies
on delay and on reserved core-seconds the same for real as in the simulator?

Each real run lasts until the policy has stopped its last worker (``--settle``), so that the
idle core-seconds after the last job count for real as they count in the simulator. The
simulator is calibrated on this machine just before (``dacirco.calibration.measure``: ffmpeg,
a worker's boot to its registration, a split). Where the two orders differ, each pair of
policies they rank differently is checked against the real run's own noise: the 95 %
bootstrap interval of the pair's difference, the requests drawn again in pairs; a pair whose
interval holds 0 is one the real run cannot order. With ``--repeats N`` every policy plays the
scenario N times (in turns: each round plays every policy once), its figures are the means,
and a pair whose real figures overlap from one round to the next (the ranges of the two
policies over the rounds meet) is one the machine's own drift from run to run cannot order
either: on a shared machine the same run's average delay moves by 10 % or more.

    .venv/bin/python benchmarks/policies_real.py [--requests 16] [--gap 2.5] [--seed 3]
        [--repeats 2]
"""

from __future__ import annotations

import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated

import httpx
import psutil
import typer
from rich.console import Console
from rich.table import Table

from dacirco.analytics.figures import Figures, figures, percentile
from dacirco.analytics.run import RunData, from_log
from dacirco.calibration import catalog_movies, measure
from dacirco.catalog.service import seed as seed_catalog
from dacirco.config import open_local_storage
from dacirco.domain import Node
from dacirco.policies.base import PolicyParams, make_policy
from dacirco.scenario.generate import generate
from dacirco.scenario.model import Request
from dacirco.sim.calibrate import Calibration
from dacirco.sim.cluster import DataCenter
from dacirco.sim.models import Models
from dacirco.sim.run import SimConfig, Simulation
from dacirco.sim.workload import CatalogShape, make_jobs
from harness import free_port, start_service

console = Console(width=140)
POLICIES = ("minimize-workers", "grace-period", "right-size", "adaptive")


def play(port: int, requests: list[Request], timeout: float, settle: float) -> bool:
    """Send the requests at their times, wait until every job has ended, then until the
    policy has stopped every worker (at most ``settle`` seconds): a worker it keeps idle after
    the last job costs core-seconds, as the simulator counts them. False if some worker was
    still alive after ``settle`` seconds."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        t0, at, ids = time.monotonic(), 0.0, []
        for r in requests:
            at += r.delay
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            body = {"id_video": r.movie, "bitrate": r.bitrate, "speed": r.speed}
            ids.append(client.post("/jobs", json=body).raise_for_status().json())
        deadline = time.monotonic() + timeout
        for job_id in ids:
            while client.get(f"/jobs/{job_id}/state").json() not in ("Completed", "Error"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"job {job_id} did not end within {timeout:.0f} s")
                time.sleep(0.25)
        return all_stopped(client, time.monotonic() + settle)


def all_stopped(client: httpx.Client, deadline: float) -> bool:
    """Wait until every worker the service started is Stopped, or until ``deadline``."""
    stopped: set[str] = set()
    while True:
        ids, after = [], None
        while True:
            page = client.get("/workers", params={"after": after} if after else {}).json()
            ids += page["items"]
            if not page["has_more"] or not page["items"]:
                break
            after = page["items"][-1]
        for worker_id in ids:
            if worker_id not in stopped:
                if client.get(f"/workers/{worker_id}/state").json() != "Stopped":
                    break
                stopped.add(worker_id)
        else:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def real_run(
    policy: str,
    catalog: Path,
    work: Path,
    requests: list[Request],
    args: list[str],
    settle: float = 300.0,
) -> RunData:
    data = work / policy / "data"
    shutil.copytree(catalog, data)
    port = free_port()
    proc = start_service(data, port, data.parent, args, policy=("--algorithm", policy))
    try:
        if not play(port, requests, timeout=600, settle=settle):
            console.print(
                f"[yellow]{policy}: workers still alive {settle:g} s after the last job; its "
                "reserved core-seconds stop there, the simulator's do not[/yellow]"
            )
    finally:
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        psutil.wait_procs(children, timeout=10)
    return from_log(data.parent / f"tc-events-{port}.txt")


def reads_grace(policy: str, seconds: float) -> bool:
    """Whether ``policy`` keeps idle workers ``--max-idle-time`` (the others choose their own
    and the service warns when it is given)."""
    return (
        getattr(make_policy(policy, PolicyParams(max_idle_time=seconds)), "max_idle_time", None)
        == seconds
    )


def order(results: dict[str, Figures], key) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(results, key=lambda p: key(results[p]))


def delays(run: RunData) -> list[float]:
    """Each completed request's delay, in the order the requests were sent."""
    jobs = sorted(run.jobs, key=lambda j: j.received)
    return [j.uploaded - j.received for j in jobs if j.uploaded is not None]


def mean_delays(runs: list[RunData]) -> list[float]:
    """Each request's delay averaged over the rounds (empty if a round lost one)."""
    each = [delays(run) for run in runs]
    if len({len(d) for d in each}) != 1:
        return []
    return [statistics.fmean(values) for values in zip(*each, strict=True)]


@dataclass(frozen=True)
class Real:
    """A policy's real runs (one per round): its figures are their means, ``spans`` each
    figure's range over the rounds."""

    runs: list[RunData]

    @cached_property
    def each(self) -> list[Figures]:
        return [figures(run) for run in self.runs]

    def mean(self, key: Callable[[Figures], float]) -> float:
        return statistics.fmean(key(f) for f in self.each)

    def span(self, key: Callable[[Figures], float]) -> tuple[float, float]:
        values = [key(f) for f in self.each]
        return min(values), max(values)


def interval(
    a: list[float], b: list[float], stat: Callable[[list[float]], float], draws: int = 2000
) -> tuple[float, float] | None:
    """The 95 % bootstrap interval of ``stat(a) - stat(b)``, the requests drawn again in
    pairs (both policies served the same requests); None when they completed different ones."""
    if len(a) != len(b) or not a:
        return None
    rng, n = random.Random(0), len(a)
    diffs = []
    for _ in range(draws):
        pick = [rng.randrange(n) for _ in range(n)]
        diffs.append(stat([a[i] for i in pick]) - stat([b[i] for i in pick]))
    return percentile(diffs, 2.5), percentile(diffs, 97.5)


def verdict(  # type: ignore[no-untyped-def]
    real: list[str],
    simulated: list[str],
    runs: dict[str, Real],
    key: Callable[[Figures], float],
    stat=None,
) -> str:
    """``same``, or for each pair of policies the two orders rank differently, whether the
    real runs can tell them apart at all: a pair whose real figures overlap over the rounds
    (their ranges meet), or, for delays (``stat``), whose difference over the same requests
    has a 95 % bootstrap interval holding 0, is within the real runs' noise, where any order
    agrees with them."""
    if real == simulated:
        return "same"
    swapped = [
        (p, q)
        for i, p in enumerate(real)
        for q in real[i + 1 :]
        if simulated.index(p) > simulated.index(q)
    ]
    ties = []
    for p, q in swapped:
        (lo_p, hi_p), (lo_q, hi_q) = runs[p].span(key), runs[q].span(key)
        if len(runs[p].runs) > 1 and lo_q <= hi_p and lo_p <= hi_q:
            ties.append(f"{p} {lo_p:.2f}-{hi_p:.2f}, {q} {lo_q:.2f}-{hi_q:.2f} over the rounds")
            continue
        span = None
        if stat is not None:
            span = interval(mean_delays(runs[p].runs), mean_delays(runs[q].runs), stat)
        if span is None or span[0] > 0 or span[1] < 0:
            return "different"
        ties.append(f"{p} - {q}: {span[0]:+.2f} to {span[1]:+.2f} s (95 % interval)")
    return "same where the real runs tell them apart; within their noise: " + "; ".join(ties)


def main(
    requests: Annotated[int, typer.Option(min=1, help="requests in the scenario")] = 16,
    gap: Annotated[float, typer.Option(help="mean seconds between requests (Poisson)")] = 2.5,
    seed: Annotated[int, typer.Option(help="scenario seed")] = 3,
    duration_scale: Annotated[float, typer.Option(help="catalog duration scale")] = 0.2,
    max_height: Annotated[int, typer.Option(help="catalog resolution cap")] = 360,
    cores: Annotated[
        int | None,
        typer.Option(
            help="cores the local runtime may reserve (default: this machine's; more would "
            "share them, which the simulator does not model)",
            show_default=False,
        ),
    ] = None,
    max_idle_time: Annotated[
        float, typer.Option(help="the grace of the policies that read --max-idle-time")
    ] = 10.0,
    settle: Annotated[
        float,
        typer.Option(
            min=0, help="seconds to wait after the last job for the policy to stop its workers"
        ),
    ] = 300.0,
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="rounds: each plays every policy once; pairs whose real figures overlap over "
            "the rounds are ties (the machine's drift from run to run)",
        ),
    ] = 1,
) -> None:
    """Play one scenario for real under each policy and in the simulator; compare orderings."""
    cores = cores or psutil.cpu_count(logical=True) or 1
    scenario = generate("poisson", requests, random.Random(seed), rate=1.0 / gap)
    with tempfile.TemporaryDirectory(prefix="dacirco-policies-") as tmp:
        work = Path(tmp)
        catalog = work / "catalog"
        console.print(f"generating the catalog (scale {duration_scale}, <= {max_height}p) ...")
        seed_catalog(
            open_local_storage(catalog), duration_scale=duration_scale, max_height=max_height
        )
        args = ["--max-workers", str(cores), "--local-cpus", str(cores), "--call-interval", "0.5"]
        console.print("calibrating the simulator on this machine ...")
        movies = sorted({r.movie for r in scenario})
        calibration = measure(catalog_movies(catalog, movies), threads=(1, 2), repeats=1)
        console.print(summary(calibration))
        played: dict[str, list[RunData]] = {p: [] for p in POLICIES}
        for round_ in range(1, repeats + 1):
            for policy in POLICIES:
                of = f", round {round_} of {repeats}" if repeats > 1 else ""
                console.print(f"real run: {policy} ({requests} requests{of}) ...")
                grace = (
                    ["--max-idle-time", str(max_idle_time)]
                    if reads_grace(policy, max_idle_time)
                    else []
                )
                args_p = [*args, *grace]
                played[policy].append(
                    real_run(policy, catalog, work / f"{round_}", scenario, args_p, settle)
                )
    node = Node("local", cores, psutil.virtual_memory().total / 2**30)
    models = Models.build("local", calibration)
    jobs = make_jobs(scenario, models, seed, CatalogShape(duration_scale, max_height))
    sim = {}
    for policy in POLICIES:
        config = SimConfig(
            algorithm=policy,
            max_workers=cores,
            max_idle_time=max_idle_time,
            call_interval=0.5,
            runtime="local",
        )
        sim[policy] = figures(Simulation(config, DataCenter((node,)), models, jobs, seed).run().run)
    runs = {p: Real(played[p]) for p in POLICIES}
    rounds = f", {repeats} rounds (real: their means)" if repeats > 1 else ""
    title = f"{requests} requests, one every {gap:g} s on average, {cores} cores{rounds}"
    table = Table(title=title)
    for col in ("policy", "real delay avg / p95 (s)", "real reserved core·s", "real boots",
                "simulated delay avg / p95 (s)", "simulated reserved core·s",
                "simulated boots"):  # fmt: skip
        table.add_column(col, justify="left" if col == "policy" else "right")
    for p in POLICIES:
        r, s = runs[p], sim[p]
        table.add_row(
            p, f"{r.mean(avg):.2f} / {r.mean(p95):.2f}", f"{r.mean(reserved):.1f}",
            real_boots(r), f"{s.delay.avg:.2f} / {s.delay.p95:.2f}",
            f"{s.reserved_core_seconds:.1f}", boots(s),
        )  # fmt: skip
    console.print(table)
    if repeats > 1:
        for p in POLICIES:
            spans = [runs[p].span(k) for k in (avg, p95, reserved)]
            console.print(
                f"{p}, real over the rounds: average delay {spans[0][0]:.2f}-{spans[0][1]:.2f} s, "
                f"p95 {spans[1][0]:.2f}-{spans[1][1]:.2f} s, "
                f"reserved {spans[2][0]:.1f}-{spans[2][1]:.1f} core·s"
            )
    for label, key, stat in (
        ("average delay", avg, statistics.fmean),
        ("p95 delay", p95, lambda d: percentile(d, 95)),
        ("reserved core-seconds", reserved, None),
    ):
        a = sorted(POLICIES, key=lambda p: runs[p].mean(key))
        b = order(sim, key)
        console.print(
            f"{label}: real {' < '.join(a)}; simulated {' < '.join(b)} "
            f"({verdict(a, b, runs, key, stat)})"
        )


def avg(f: Figures) -> float:
    return f.delay.avg


def p95(f: Figures) -> float:
    return f.delay.p95


def reserved(f: Figures) -> float:
    return f.reserved_core_seconds


def real_boots(r: Real) -> str:
    """How many workers booted in a round, and their mean boot (means over the rounds)."""
    each = [f for f in r.each if f.workers]
    if not each:
        return "none"
    n = statistics.fmean(f.workers for f in r.each)
    return f"{n:g} x {statistics.fmean(f.boot.avg for f in each):.2f} s"


def summary(cal: Calibration) -> str:
    """The calibration in one line: what a second of 360p25 video takes per preset on one
    thread, the boot, the split's costs."""
    rate = 640 * 360 * 25
    lines = ", ".join(
        f"{k.split('/')[1]} {line.seconds(1.0, rate):.3f} s"
        for k, line in sorted(cal.transcode.items())
        if k.endswith("/1")
    )
    return (
        f"calibrated: a second of 360p25 on one thread: {lines}; boot {cal.boot_s:.2f} s; "
        f"a chunk {cal.chunk_overhead_s:.2f} s more, a merge {cal.merge_s:.2f} s"
    )


def boots(f: Figures) -> str:
    """How many workers booted, and their mean boot in seconds."""
    return f"{f.workers} x {f.boot.avg:.2f} s" if f.workers else "none"


if __name__ == "__main__":
    typer.run(main)
