"""The OpenStack runtime (``-r vm``) against the fake cloud (tests/fakes/compute_api.py),
through the real openstacksdk: the user data, placement, refusals, cleanup."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

from dacirco.domain import Codec, ExitCause, JobState, Speed, WorkerState
from dacirco.runtimes.base import CapacityRefused, WorkerExit, worker_command
from dacirco.runtimes.factory import RuntimeOptions, RuntimeUnavailable, make_runtime
from dacirco.runtimes.openstack import user_data
from tests.fakes import Clock, free_port, make_controller
from tests.fakes.compute_api import PASSWORD, fake_runtime, write_clouds_yaml
from tests.integration.runtime_contract import Sink, wait_for, worker_spec

pytestmark = pytest.mark.slow


spec = partial(worker_spec, prefix="vm")


def test_the_user_data_carries_the_controller_url_and_its_token_only() -> None:
    s = spec("http://10.0.0.5:8000", "small")
    text = user_data(s)
    assert text.startswith("#cloud-config\n") and text.count(s.token) == 1
    config = yaml.safe_load(text)
    (env_file,) = config["write_files"]
    assert env_file["permissions"] == "0600"
    assert env_file["content"] == f"DACIRCO_WORKER_TOKEN={s.token}\n"
    (command,) = config["runcmd"]
    assert command[0] == "systemd-run" and s.token not in " ".join(command)  # not in argv
    i = command.index("dacirco")
    assert command[i : i + 4] == ["dacirco", "worker", "--controller", "http://10.0.0.5:8000"]
    assert command[i + 2 :] == worker_command(s)
    for secret in ("pass4minio", "minio", PASSWORD, "clouds.yaml", "OS_"):
        assert secret not in text


async def test_servers_go_to_the_chosen_hosts_and_none_is_left(
    sink: Sink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with fake_runtime(tmp_path) as (runtime, cloud):
        assert sorted(n.name for n in runtime.nodes()) == ["compute1", "compute2", "compute3"]
        specs = [spec(sink.url, "small", "compute3"), spec(sink.url, "tiny", "compute1")]
        for s in specs:
            await runtime.start(s)
        for s in specs:
            body = await asyncio.to_thread(sink.wait_registered, s.worker_id, 60)
            assert body["cpus"] == s.flavor.cpus
        assert [s.host for s in cloud.created] == ["compute3", "compute1"]
        req = cloud.requests[0]["server"]
        assert req["availability_zone"] == "nova:compute3" and req["flavorRef"] == "s10.small"
        assert req["networks"] == [{"uuid": cloud.network_id}]
        decoded = base64.b64decode(req["user_data"]).decode()
        assert PASSWORD not in decoded and "pass4minio" not in decoded
        await runtime.close()
        assert cloud.servers == {} and cloud.running() == []
    assert all(s.token not in caplog.text for s in specs)
    assert PASSWORD not in caplog.text


async def test_without_admin_rights_one_node_the_quota(sink: Sink, tmp_path: Path) -> None:
    async with fake_runtime(tmp_path, admin=False, quota_cores=8) as (runtime, cloud):
        (node,) = runtime.nodes()
        assert node.cpus == 8 and node.memory_gb == 50.0
        s = spec(sink.url, "tiny", node.name)
        await runtime.start(s)
        await asyncio.to_thread(sink.wait_registered, s.worker_id, 60)
        assert "availability_zone" not in cloud.requests[0]["server"]


async def test_a_quota_refusal_is_capacity_refused(sink: Sink, tmp_path: Path) -> None:
    async with fake_runtime(tmp_path, quota_cores=1) as (runtime, cloud):
        s = spec(sink.url, "small")
        with pytest.raises(CapacityRefused, match="quota exceeded") as info:
            await runtime.start(s)
        assert s.token not in str(info.value) and cloud.servers == {}


async def test_no_valid_host_is_reported_and_deleted(sink: Sink, tmp_path: Path) -> None:
    exits: list[WorkerExit] = []

    async def on_exit(exit: WorkerExit) -> None:
        exits.append(exit)

    hosts = {"compute1": (2, 4096)}
    async with fake_runtime(tmp_path, hosts=hosts) as (runtime, cloud):
        runtime.set_exit_handler(on_exit)
        s = spec(sink.url, "medium", "compute1")
        await runtime.start(s)
        await wait_for(lambda: exits)
        assert exits[0].worker_id == s.worker_id
        assert exits[0].cause is ExitCause.NO_CAPACITY and "No valid host" in exits[0].reason
        await wait_for(lambda: not cloud.servers)


def test_an_unreachable_cloud_is_one_line_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clouds = write_clouds_yaml(tmp_path / "clouds.yaml", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    t0 = time.monotonic()
    with pytest.raises(RuntimeUnavailable, match="--runtime vm") as info:
        make_runtime(RuntimeOptions(kind="vm", os_cloud="fake"))
    assert "\n" not in str(info.value) and time.monotonic() - t0 < 30


async def test_with_the_controller_a_refused_quota_leaves_the_job_waiting(tmp_path: Path) -> None:
    clock = Clock()
    async with fake_runtime(tmp_path, quota_cores=0, hold=True) as (runtime, cloud):
        controller, _ = make_controller(runtime, tmp_path / "ctl", clock)
        try:
            job = await controller.submit("bbb_1.mp4", 1000, Speed.ULTRAFAST, Codec.H264)
            await controller.reconcile()
            (lost,) = controller.workers.values()
            assert lost.state == WorkerState.STOPPED and "quota" in (lost.stop_reason or "")
            assert job.state == JobState.WAITING and cloud.refused
            for _ in range(7):  # refused again and again, past max_boot_failures
                clock.now += 10.5  # past the wait after a refusal
                await controller.reconcile()
                assert job.state == JobState.WAITING  # waits, never failed
            cloud.quota_cores = 18
            clock.now += 10.5  # past the wait after a refusal
            await controller.reconcile()
            assert len(cloud.servers) == 1 and job.state == JobState.WAITING
        finally:
            await controller.close()
        assert cloud.servers == {}
