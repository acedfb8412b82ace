"""The real ``dacirco serve -r pod`` and ``-r vm`` against the fake cloud APIs: jobs complete on
workers in pods and servers placed where the controller chose, nothing is left after the
service stops; a refused quota and a worker that never registers cost a delay, not a job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Service
from tests.fakes.compute_api import IMAGE_NAME, NETWORK_NAME, FakeCloud, fake_cloud
from tests.fakes.compute_api import write_clouds_yaml as clouds_yaml
from tests.fakes.k8s_api import IMAGE, FakeCluster, fake_cluster, write_kubeconfig

pytestmark = pytest.mark.slow

MakeService = Callable[..., Service]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with fake_cluster(tmp_path / "cluster") as c:
        yield c


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloud]:
    with fake_cloud(tmp_path / "cloud") as c:
        monkeypatch.setenv(
            "OS_CLIENT_CONFIG_FILE", str(clouds_yaml(tmp_path / "clouds.yaml", c.url))
        )
        yield c


def pod_args(cluster: FakeCluster, tmp: Path, *extra: str) -> list[str]:
    config = write_kubeconfig(tmp / "kubeconfig", cluster.url)
    return [
        "-r", "pod", "--kubeconfig", str(config), "--k8s-namespace", "dacirco",
        "--k8s-image", IMAGE, "--flavor", "tiny", *extra,
    ]  # fmt: skip


def vm_args(*extra: str) -> list[str]:
    return [
        "-r", "vm", "--os-cloud", "fake", "--os-image", IMAGE_NAME,
        "--os-network", NETWORK_NAME, "--flavor", "tiny", *extra,
    ]  # fmt: skip


def nodes_of_workers(svc: Service) -> dict[str, str]:
    ids = svc.client.get("/workers").json()["items"]
    return {w: svc.client.get(f"/workers/{w}").json()["node"] for w in ids}


def test_pod_jobs_complete_on_the_chosen_nodes_and_no_pod_is_left(
    service_factory: MakeService, cluster: FakeCluster, tmp_path: Path
) -> None:
    svc = service_factory(*pod_args(cluster, tmp_path, "--max-workers", "2"))
    jobs = [svc.submit(id_video=f"bbb_{i}.mp4") for i in range(3)]
    for job in jobs:
        assert svc.wait_state(job, {"Completed", "Error"}, timeout=90) == "Completed"
    chosen = nodes_of_workers(svc)
    assert chosen and set(chosen.values()) <= {"compute1", "compute2", "compute3"}
    assert all(cluster.bound[f"dacirco-{w}"] == node for w, node in chosen.items())
    for pod in cluster.created:
        assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1"
    svc.stop()  # SIGTERM: the service deletes its pods or servers on the way out
    assert cluster.pods == {} and cluster.running() == []


def test_pod_that_never_registers_is_stopped_and_the_job_still_completes(
    service_factory: MakeService, cluster: FakeCluster, tmp_path: Path
) -> None:
    cluster.hold = True  # pods stay in ContainerCreating: the worker never registers
    svc = service_factory(*pod_args(cluster, tmp_path, "--boot-timeout", "3"))
    job = svc.submit()
    svc.wait_for(
        lambda: any(
            e["code"] == "EV12" and "did not register" in e["reason"] for e in svc.events()
        ),
        timeout=30,
        what="the silent worker counted lost",
    )
    first = cluster.created[0]["metadata"]["name"]
    svc.wait_for(lambda: all(k[1] != first for k in cluster.pods), what="its pod deleted")
    assert svc.client.get(f"/jobs/{job}/state").json() == "Waiting"
    cluster.hold = False
    assert svc.wait_state(job, {"Completed", "Error"}, timeout=60) == "Completed"
    assert len(cluster.created) >= 2
    svc.stop()  # SIGTERM: the service deletes its pods or servers on the way out
    assert cluster.pods == {} and cluster.running() == []


def test_vm_a_refused_quota_delays_the_job_which_then_completes(
    service_factory: MakeService, cloud: FakeCloud
) -> None:
    cloud.quota_cores = 0
    svc = service_factory(*vm_args())
    job = svc.submit()
    svc.wait_for(lambda: cloud.refused, what="the cloud refusing the quota")
    assert svc.client.get(f"/jobs/{job}/state").json() == "Waiting"
    lost = [e for e in svc.events() if e["code"] == "EV12"]
    assert lost and "quota exceeded" in lost[0]["reason"]
    cloud.quota_cores = 18
    assert svc.wait_state(job, {"Completed", "Error"}, timeout=60) == "Completed"
    chosen = nodes_of_workers(svc)
    hosts = {s.name.removeprefix("dacirco-"): s.host for s in cloud.created}
    booted = {w: node for w, node in chosen.items() if w in hosts}  # the refused one never was
    assert booted and all(hosts[w] == node for w, node in booted.items())
    svc.stop()  # SIGTERM: the service deletes its pods or servers on the way out
    assert cloud.servers == {} and cloud.running() == []
