"""The SLURM runtime on a real single-node cluster (the session's ``slurm_cluster``: Debian's
munged, slurmctld and slurmd on 127.0.0.1), beyond the contract suite: the job SLURM runs for a
worker (flavor, time limit, partition, no token in sight), the time from ``sbatch`` to the
worker's registration, refused submissions (a clear message; "not now" makes jobs wait), a
job with no room that waits rather than fails, and ``close`` leaving no job in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from dacirco.domain import FLAVORS, ExitCause
from dacirco.runtimes.base import CapacityRefused, RuntimeError_, WorkerExit, WorkerSpec
from dacirco.runtimes.factory import RuntimeOptions, RuntimeUnavailable, make_runtime
from dacirco.runtimes.slurm import SlurmOptions, SlurmRuntime
from dacirco.runtimes.slurm_cluster import CLOSED_PARTITION, PARTITION, LocalSlurmCluster
from tests.integration.runtime_contract import Sink, wait_for

pytestmark = pytest.mark.slow

REGISTERS_WITHIN = 60.0


def spec(sink: Sink, flavor: str = "tiny", node: str | None = None) -> WorkerSpec:
    wid = str(uuid.uuid4())
    return WorkerSpec(
        wid, f"slurm-{wid[:8]}", FLAVORS[flavor], sink.url, f"tok-{uuid.uuid4()}", node
    )


@asynccontextmanager
async def runtime_on(
    cluster: LocalSlurmCluster, tmp: Path, options: SlurmOptions | None = None, **kw: float
) -> AsyncIterator[SlurmRuntime]:
    runtime = SlurmRuntime(
        options, conf=cluster.conf, log_dir=tmp / "logs", poll_interval=0.5, **kw
    )
    try:
        yield runtime
    finally:
        await runtime.close()


def job_line(cluster: LocalSlurmCluster, job_id: str) -> str:
    return cluster.run("scontrol", "show", "job", "--oneliner", job_id)


def state_of(cluster: LocalSlurmCluster, job_id: str) -> str:
    out = cluster.run("squeue", "--noheader", "--states=all", "--format=%i %T", check=False)
    return dict(line.split() for line in out.splitlines() if line.strip()).get(job_id, "")


async def test_a_worker_is_a_job_of_its_flavor_and_registers_soon(
    slurm_cluster: LocalSlurmCluster, sink: Sink, tmp_path: Path
) -> None:
    options = SlurmOptions(partition=PARTITION, time_limit=600)
    async with runtime_on(slurm_cluster, tmp_path, options) as runtime:
        [node] = runtime.nodes()
        assert node.name == slurm_cluster.node and node.cpus >= 1 and node.memory_gb > 2
        timings = []
        for _ in range(3):
            s = spec(sink, "tiny", node.name)
            t0 = time.monotonic()
            await runtime.start(s)
            body = await asyncio.to_thread(sink.wait_registered, s.worker_id, REGISTERS_WITHIN)
            timings.append(time.monotonic() - t0)
            assert body["node"] == node.name and body["cpus"] == 1 and body["memory_gb"] == 2.0
            assert sink.tokens[s.worker_id] == f"Bearer {s.token}"
            job_id = runtime.job_id(s.worker_id)
            assert job_id is not None
            line = job_line(slurm_cluster, job_id)
            for part in ("NumCPUs=1", "mem=2G", "TimeLimit=00:10:00", f"Partition={PARTITION}"):
                assert part in line, line
            assert f"NodeList={node.name}" in line and "JobState=RUNNING" in line
            assert s.token not in line  # the token went by the environment only
            await runtime.stop(s.worker_id)
            assert state_of(slurm_cluster, job_id) in ("CANCELLED", "")
        print(
            f"\nsbatch -> registration over {len(timings)} starts: median "
            f"{statistics.median(timings):.2f} s, max {max(timings):.2f} s"
        )


async def test_a_partition_that_does_not_exist_is_refused_before_anything_starts(
    slurm_cluster: LocalSlurmCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    with pytest.raises(RuntimeUnavailable) as refused:
        make_runtime(RuntimeOptions(kind="slurm", slurm_partition="nope"))
    message = str(refused.value)
    assert message.startswith("--slurm-partition nope: no such partition") and "\n" not in message
    assert PARTITION in message  # the partitions there are


async def test_refused_submissions_name_their_cause_and_leave_no_job(
    slurm_cluster: LocalSlurmCluster, sink: Sink, tmp_path: Path
) -> None:
    before = slurm_cluster.jobs()
    # A drained partition takes no job for now: no room, the jobs wait.
    async with runtime_on(slurm_cluster, tmp_path, SlurmOptions(CLOSED_PARTITION)) as runtime:
        with pytest.raises(CapacityRefused) as refused:
            await runtime.start(spec(sink))
    assert f"on partition {CLOSED_PARTITION}: " in str(refused.value)
    assert "Required partition not available (inactive or drain)" in str(refused.value)
    # A partition removed under a running service: a configuration to fix, said as sbatch says it.
    slurm_cluster.run("scontrol", "create", "PartitionName=gone", "Nodes=ALL")
    try:
        async with runtime_on(slurm_cluster, tmp_path, SlurmOptions("gone")) as runtime:
            slurm_cluster.run("scontrol", "delete", "PartitionName=gone")
            with pytest.raises(RuntimeError_) as failed:
                await runtime.start(spec(sink))
    finally:
        slurm_cluster.run("scontrol", "delete", "PartitionName=gone", check=False)
    assert not isinstance(failed.value, CapacityRefused)
    assert "on partition gone: " in str(failed.value)
    assert "Invalid partition name specified" in str(failed.value)
    assert slurm_cluster.jobs() == before


async def test_a_job_with_no_room_waits_then_runs_or_is_given_back(
    slurm_cluster: LocalSlurmCluster, sink: Sink, tmp_path: Path
) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    async with runtime_on(slurm_cluster, tmp_path, pending_limit=60.0) as runtime:
        runtime.set_exit_handler(on_exit)
        [node] = runtime.nodes()
        # Every core taken (tiny: one each), then one more: SLURM queues it (Resources).
        busy = [spec(sink, "tiny", node.name) for _ in range(node.cpus)]
        for s in busy:
            await runtime.start(s)
        for s in busy:
            await asyncio.to_thread(sink.wait_registered, s.worker_id, REGISTERS_WITHIN)
        extra = spec(sink, "tiny", node.name)
        await runtime.start(extra)
        job_id = runtime.job_id(extra.worker_id)
        assert job_id is not None
        await asyncio.sleep(3)
        assert state_of(slurm_cluster, job_id) == "PENDING" and exits == []
        await runtime.stop(busy[0].worker_id)  # a core frees: the queued worker starts
        await asyncio.to_thread(sink.wait_registered, extra.worker_id, REGISTERS_WITHIN)
        assert exits == []

    # More cores than the node has: pending for good. Past pending_limit it is cancelled and
    # given back as "no capacity" (the controller's jobs wait; no attempt counted).
    async with runtime_on(slurm_cluster, tmp_path, pending_limit=2.0) as runtime:
        runtime.set_exit_handler(on_exit)
        big = spec(sink, "medium")  # 4 cores
        await runtime.start(big)
        big_job = runtime.job_id(big.worker_id)
        assert big_job is not None
        await wait_for(lambda: exits, timeout=60)
        assert [e.worker_id for e in exits] == [big.worker_id]
        assert exits[0].cause is ExitCause.NO_CAPACITY
        assert f"SLURM job {big_job} pending for more than 2 s" in exits[0].reason
        assert "no room" in exits[0].reason
        await wait_for(lambda: state_of(slurm_cluster, big_job) in ("CANCELLED", ""), 60)
        assert big.worker_id not in sink.registered


async def test_close_leaves_no_job_in_the_queue(
    slurm_cluster: LocalSlurmCluster, sink: Sink, tmp_path: Path
) -> None:
    before = set(slurm_cluster.jobs())
    async with runtime_on(slurm_cluster, tmp_path) as runtime:
        running, pending = spec(sink), spec(sink, "medium")  # medium: never fits, stays queued
        await runtime.start(running)
        await runtime.start(pending)
        ids = {runtime.job_id(running.worker_id), runtime.job_id(pending.worker_id)}
        await asyncio.to_thread(sink.wait_registered, running.worker_id, REGISTERS_WITHIN)
        assert ids <= set(slurm_cluster.jobs())
        await runtime.close()
        assert not ids & set(slurm_cluster.jobs())
    assert set(slurm_cluster.jobs()) <= before


def test_the_test_cluster_stops_everything_it_started(tmp_path: Path) -> None:
    """A cluster of its own beside the session's: stopped with a job running, its daemons,
    the job's processes and its folder are gone."""
    import psutil

    from dacirco.runtimes.slurm_cluster import ClusterUnavailable, missing_programs

    if missing := missing_programs():
        pytest.skip(f"SLURM is not installed ({', '.join(missing)}): `make slurm` installs it")
    cluster = LocalSlurmCluster(root=tmp_path / "cluster")
    try:
        cluster.start()
    except ClusterUnavailable as exc:
        pytest.fail(f"the cluster did not start: {exc}")
    daemons = [psutil.Process(p.pid) for p in cluster._procs]
    marker = f"dacirco-test-{uuid.uuid4().hex[:8]}"  # in the job's environment
    cluster.run(
        "sbatch", "--output=/dev/null", f"--chdir={tmp_path}",
        f"--export=ALL,DACIRCO_TEST_MARKER={marker}", "--wrap=sleep 600",
    )  # fmt: skip

    def job_processes() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("DACIRCO_TEST_MARKER") == marker:
                    found.append(proc)
        return found

    deadline = time.monotonic() + 60
    while not job_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_processes(), "the job did not start"
    cluster.stop()
    _, alive = psutil.wait_procs(daemons + job_processes(), timeout=30)
    assert alive == [] and job_processes() == []
    assert not cluster.root.exists()
