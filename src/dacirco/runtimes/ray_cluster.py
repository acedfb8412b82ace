"""A multi-node Ray cluster on this one machine, to try ``--runtime ray`` (and for the tests and
the benchmark): a head node with no CPU (the controller's node: no worker lands there) and one
raylet per named node, each carrying a custom resource of its name (``compute1`` …), so that
Ray's nodes look like the reference data center's.

Every node is a ``ray start --block`` in its own process group, on 127.0.0.1 and free ports,
under one temporary folder; ``stop`` ends those groups, and nothing else on the machine.

    python -m dacirco.runtimes.ray_cluster      # prints the address, Ctrl-C stops it
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dacirco.runtimes.local import _die_with_parent

GIB = 2**30
REFERENCE = (("compute1", 6, 16.0), ("compute2", 6, 16.0), ("compute3", 6, 16.0))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    here = Path(sys.executable).with_name("ray")
    return str(here) if here.exists() else shutil.which("ray") or "ray"


@dataclass
class LocalRayCluster:
    nodes: tuple[tuple[str, int, float], ...] = REFERENCE  # (name, cpus, memory GB)
    object_store_mb: int = 80  # per node: workers pass files by URL, not through Ray
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dray-")))
    die_with_parent: bool = True  # a test run killed -9 leaves no cluster behind
    address: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _start(self, label: str, args: list[str]) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_prestart_worker_first_driver": "0",  # no idle workers waiting on 2 cores
        }
        env.pop("RAY_ADDRESS", None)
        out = (self.root / f"{label}.out").open("ab")
        cmd = [
            _ray_bin(), "start", "--block", "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1",
            "--object-store-memory", str(self.object_store_mb * 2**20),
            "--dashboard-agent-listen-port", str(_free_port()),
            "--dashboard-agent-grpc-port", str(_free_port()),
            "--metrics-export-port", str(_free_port()),
            "--runtime-env-agent-port", str(_free_port()),
            "--include-log-monitor", "false",  # workers' output stays in their files
            *args,
        ]  # fmt: skip
        with out:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=self.root, start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )  # fmt: skip
        self._procs.append(proc)
        return proc

    def _wait_started(self, label: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
        out = self.root / f"{label}.out"
        while time.monotonic() < deadline:
            text = out.read_text(errors="replace")
            if "Ray runtime started" in text:
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = " | ".join(out.read_text(errors="replace").splitlines()[-5:])
        self.stop()
        raise RuntimeError(f"ray node {label} did not start: {tail}")

    def start(self, timeout: float = 120.0) -> str:
        """Start the head, then every node; return the cluster's address (host:port)."""
        deadline = time.monotonic() + timeout
        port = _free_port()
        head = self._start(
            "head",
            [
                "--head", "--port", str(port), "--num-cpus", "0", "--temp-dir", str(self.root),
                "--include-dashboard", "false", "--dashboard-port", str(_free_port()),
                "--ray-client-server-port", str(_free_port()),
            ],
        )  # fmt: skip
        self._wait_started("head", head, deadline)
        self.address = f"127.0.0.1:{port}"
        for name, cpus, memory_gb in self.nodes:  # one after the other: 2 cores cannot take more
            resources = json.dumps({name: 1})
            args = ["--address", self.address, "--num-cpus", str(cpus)]
            args += ["--memory", str(int(memory_gb * GIB)), "--resources", resources]
            self._wait_started(name, self._start(name, args), deadline)
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        """End every node's process group (SIGTERM, then SIGKILL), and remove the folder."""
        for proc in reversed(self._procs):  # the nodes, then the head
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        self._procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


_SHARED: LocalRayCluster | None = None


def shared_cluster() -> LocalRayCluster:
    """One reference cluster for this whole process (the test session, the benchmark), started
    on first use and stopped at exit. Call it from the main thread: the nodes die with it."""
    global _SHARED
    if _SHARED is None:
        cluster = LocalRayCluster()
        cluster.start()
        atexit.register(cluster.stop)
        _SHARED = cluster
    return _SHARED


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cluster = LocalRayCluster()
    address = cluster.start()
    print(f"Ray cluster at {address} (nodes {', '.join(n for n, _, _ in cluster.nodes)})")
    print(f"dacirco serve --runtime ray --ray-address {address}    (Ctrl-C here stops it)")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
