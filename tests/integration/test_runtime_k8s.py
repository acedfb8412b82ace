"""The Kubernetes runtime (``-r pod``) against the fake API server (tests/fakes/k8s_api.py):
what a pod carries, where it goes, what the cluster refuses, and what is left after."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from functools import partial
from pathlib import Path

import pytest

from dacirco.domain import Codec, ExitCause, JobState, Speed, WorkerState
from dacirco.runtimes.base import CapacityRefused, RuntimeError_, WorkerExit, worker_command
from dacirco.runtimes.factory import RuntimeOptions, RuntimeUnavailable, make_runtime
from dacirco.runtimes.kubernetes import KubernetesOptions, pod_manifest
from tests.fakes import Clock, free_port, make_controller
from tests.fakes.k8s_api import TOKEN, FakeNode, fake_runtime, write_kubeconfig
from tests.integration.runtime_contract import Sink, wait_for, worker_spec

pytestmark = pytest.mark.slow


spec = partial(worker_spec, prefix="k8s")


def test_the_pod_carries_the_controller_url_and_its_token_only() -> None:
    s = spec("http://10.0.0.5:8000", "small", "compute2")
    pod = pod_manifest(s, KubernetesOptions(namespace="ns", image="img:1"), "run1")
    text = json.dumps(pod)
    assert text.count(s.token) == 1
    (container,) = pod["spec"]["containers"]
    assert container["env"] == [{"name": "DACIRCO_WORKER_TOKEN", "value": s.token}]
    assert container["args"][:2] == ["--controller", "http://10.0.0.5:8000"]
    assert container["args"] == worker_command(s)  # the image's entrypoint is dacirco worker
    for secret in ("pass4minio", "minio", TOKEN, "password", "kubeconfig"):
        assert secret not in text
    assert pod["spec"]["automountServiceAccountToken"] is False  # no cluster credential either
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4096Mi"}
    assert container["resources"]["limits"] == container["resources"]["requests"]
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["compute2"]
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dacirco"


async def test_pods_go_to_the_chosen_nodes_and_none_is_left(
    sink: Sink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with fake_runtime(tmp_path) as (runtime, cluster):
        assert sorted(n.name for n in runtime.nodes()) == ["compute1", "compute2", "compute3"]
        assert all(n.cpus == 6 and n.memory_gb == 16.0 for n in runtime.nodes())
        specs = [spec(sink.url, "small", "compute3"), spec(sink.url, "tiny", "compute2")]
        for s in specs:
            await runtime.start(s)
        for s in specs:
            await asyncio.to_thread(sink.wait_registered, s.worker_id, 60)
        assert [cluster.bound[p["metadata"]["name"]] for p in cluster.created] == [
            "compute3",
            "compute2",
        ]
        await runtime.close()
        assert cluster.pods == {} and cluster.running() == []
    assert all(s.token not in caplog.text for s in specs)


async def test_a_quota_refusal_is_capacity_refused(sink: Sink, tmp_path: Path) -> None:
    async with fake_runtime(tmp_path, quota_cpu=1) as (runtime, cluster):
        s = spec(sink.url, "small")
        with pytest.raises(CapacityRefused, match="quota exceeded") as info:
            await runtime.start(s)
        assert s.token not in str(info.value)
        assert cluster.pods == {}


async def test_an_unknown_namespace_is_a_runtime_error(sink: Sink, tmp_path: Path) -> None:
    async with fake_runtime(tmp_path, namespace="nope") as (runtime, _):
        with pytest.raises(RuntimeError_, match="404"):
            await runtime.start(spec(sink.url))


async def test_an_unschedulable_pod_is_reported_and_deleted(sink: Sink, tmp_path: Path) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    nodes = [FakeNode("small1", cpus=2, memory_gb=4)]
    async with fake_runtime(tmp_path, nodes=nodes) as (runtime, cluster):
        runtime.set_exit_handler(on_exit)
        s = spec(sink.url, "medium", "small1")
        await runtime.start(s)
        await wait_for(lambda: exits)
        assert exits[0].worker_id == s.worker_id
        assert exits[0].cause is ExitCause.NO_CAPACITY and "unschedulable" in exits[0].reason
        await wait_for(lambda: not cluster.pods)


async def test_an_unknown_image_is_reported(sink: Sink, tmp_path: Path) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    async with fake_runtime(tmp_path, images={}) as (runtime, _):
        runtime.set_exit_handler(on_exit)
        await runtime.start(spec(sink.url))
        await wait_for(lambda: exits)
        assert exits[0].cause is ExitCause.CRASHED and "ErrImagePull" in exits[0].reason


def test_an_unreachable_cluster_is_one_line_at_start(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match="cluster unreachable") as info:
        make_runtime(RuntimeOptions(kind="pod", kubeconfig=config))
    assert "\n" not in str(info.value) and time.monotonic() - t0 < 15
    with pytest.raises(RuntimeUnavailable, match="kubeconfig"):
        make_runtime(RuntimeOptions(kind="pod", kubeconfig=tmp_path / "missing"))


async def test_with_the_controller_a_refused_quota_leaves_the_job_waiting(tmp_path: Path) -> None:
    clock = Clock()
    async with fake_runtime(tmp_path, quota_cpu=0, hold=True) as (runtime, cluster):
        controller, _ = make_controller(runtime, tmp_path / "ctl", clock)
        try:
            job = await controller.submit("bbb_1.mp4", 1000, Speed.ULTRAFAST, Codec.H264)
            await controller.reconcile()
            (lost,) = controller.workers.values()
            assert lost.state == WorkerState.STOPPED and "quota" in (lost.stop_reason or "")
            assert job.state == JobState.WAITING and cluster.refused
            for _ in range(7):  # refused again and again, past max_boot_failures
                clock.now += 10.5  # past the wait after a refusal
                await controller.reconcile()
                assert job.state == JobState.WAITING  # waits, never failed
            cluster.quota_cpu = None  # the quota is raised
            clock.now += 10.5  # past the wait after a refusal
            await controller.reconcile()
            assert len(cluster.pods) == 1 and job.state == JobState.WAITING
            booting = [w for w in controller.workers.values() if w.state == WorkerState.BOOTING]
            assert len(booting) == 1
        finally:
            await controller.close()
        assert cluster.pods == {}
