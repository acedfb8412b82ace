"""End to end on Ray: the real `dacirco serve --runtime ray` on a local multi-node Ray cluster
(a head with no CPU and raylets compute1..3, ``ray_cluster.shared_cluster``), a short scenario
under each classic policy: every job completes, every worker registers from the node the
controller placed it on (EV11 ``node`` = EV2 ``node``), and once the service has stopped no
DaCirco actor is left in the cluster. An unreachable cluster stops the start in one line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dacirco[ray]'")

from dacirco.runtimes.ray import NAMESPACE, dacirco_actors  # noqa: E402
from dacirco.runtimes.ray_cluster import shared_cluster  # noqa: E402

# Four jobs at once, three workers at most: with tiny workers the runtime spreads them
# over the three nodes, and one job waits for a worker to free up (or be replaced).
NODES = ("compute1", "compute2", "compute3")
SCENARIO = [("bbb_0.mp4", 900), ("bbb_1.mp4", 1200), ("bbb_2.mp4", 700), ("bbb_3.mp4", 1500)]


def actors_left(address: str) -> list[str]:
    if ray.is_initialized():
        return dacirco_actors()
    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING")
    try:
        return dacirco_actors()
    finally:
        ray.shutdown()


@pytest.mark.parametrize("algorithm", ["minimize-workers", "grace-period"])
def test_a_scenario_runs_on_the_nodes_the_policy_chose(service_factory, algorithm: str) -> None:
    address = shared_cluster().address
    svc = service_factory(
        "--runtime", "ray", "--ray-address", address, "--algorithm", algorithm,
        "--max-workers", "3", "--flavor", "tiny", "--max-idle-time", "5",
    )  # fmt: skip
    jobs = [svc.submit(id_video=movie, bitrate=rate) for movie, rate in SCENARIO]
    for job in jobs:
        assert svc.wait_state(job, {"Completed", "Error"}, timeout=120) == "Completed"
    # SIGTERM: a clean shutdown, then the signal's own exit, as with local workers.
    assert svc.stop() in (0, -signal.SIGTERM), svc.tail()
    events = svc.events()
    created = {e["worker_id"]: e["node"] for e in events if e["code"] == "EV2"}
    registered = {e["worker_id"]: e["node"] for e in events if e["code"] == "EV11"}
    assert registered and set(registered) <= set(created)
    for worker_id, node in registered.items():
        assert node == created[worker_id], f"worker {worker_id} placed on {created[worker_id]}"
    assert set(created.values()) <= set(NODES)
    assert len(set(created.values())) >= 2  # spread, not all on one node
    by_worker = Counter(e["worker_id"] for e in events if e["code"] == "EV7")
    assert sum(by_worker.values()) == len(jobs) and set(by_worker) <= set(registered)
    destroyed = {e["worker_id"] for e in events if e["code"] == "EV8"}
    assert destroyed == set(created)  # every worker stopped, each one once
    assert not [e for e in events if e["code"] == "EV12"]  # none lost
    assert actors_left(address) == []


def test_a_worker_ray_cannot_place_is_lost_and_its_job_waits(service_factory) -> None:
    """Another tenant holds every CPU: the actor stays pending, the worker never registers,
    boot_timeout stops it (counted, EV12) and the job waits; once the CPUs are free again a
    new worker takes it."""
    address = shared_cluster().address
    connected = not ray.is_initialized()
    if connected:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    try:

        @ray.remote(num_cpus=6)
        class Hog:  # defined here: shipped by value, the nodes need not import the tests
            def ready(self) -> bool:
                return True

        hogs = [Hog.options(resources={n: 0.001}).remote() for n in NODES]
        ray.get([h.ready.remote() for h in hogs], timeout=60)
        try:
            svc = service_factory(
                "--runtime", "ray", "--ray-address", address, "--algorithm", "grace-period",
                "--max-workers", "1", "--flavor", "tiny", "--boot-timeout", "3",
            )  # fmt: skip
            job = svc.submit()

            def lost() -> list[dict]:
                return [e for e in svc.events() if e["code"] == "EV12"]

            svc.wait_for(lambda: lost(), timeout=30, what="a worker lost at boot")
            assert "did not register within 3 s" in lost()[0]["reason"]
            assert svc.client.get(f"/jobs/{job}/state").json() == "Waiting"
        finally:
            for h in hogs:
                ray.kill(h)
        assert svc.wait_state(job, {"Completed", "Error"}, timeout=90) == "Completed"
        svc.stop()
        assert dacirco_actors() == []
    finally:
        if connected:
            ray.shutdown()


def test_an_unreachable_cluster_stops_the_start_in_one_line(tmp_path) -> None:
    port = free_port()  # nothing listens there
    cmd = [
        sys.executable, "-m", "dacirco.cli", "serve",
        "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
        "--event-log-file", str(tmp_path / "events.txt"),
        "--runtime", "ray", "--ray-address", f"127.0.0.1:{port}",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers there" in lines[0]
    assert not (tmp_path / "events.txt").exists()  # nothing started, nothing logged
    assert not list((tmp_path / "data").glob("*.db*"))
