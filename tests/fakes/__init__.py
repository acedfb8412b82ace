"""Stand-ins for the clouds (not for our code): fake Kubernetes and OpenStack APIs.

Each implements only the endpoints the runtimes use, validates requests as the real API
does, and makes a pod or server "run" by starting its worker command as a LOCAL process
(``Container``), so a real ``dacirco worker`` registers with the real controller; deleting
the pod or server kills that process. Both run on 127.0.0.1 on a free port in a thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dacirco.api.thread_server import free_port, serve_in_thread  # noqa: F401 (re-exported)

# What the worker image (Dockerfile) holds, as local commands: its entrypoint and its PATH.
WORKER_ENTRYPOINT = [sys.executable, "-m", "dacirco.worker"]
DACIRCO_BINARY = [sys.executable, "-m", "dacirco.cli"]


def image_env(home: Path) -> dict[str, str]:
    """The environment a container or VM starts with: nothing of the test's own (no S3 or
    cloud credential can leak in this way), only what the image would set."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    if "DACIRCO_FFMPEG" in os.environ:
        env["DACIRCO_FFMPEG"] = os.environ["DACIRCO_FFMPEG"]
    return env


class Container:
    """A local process standing for a container or a VM's service; its own process group."""

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        sandbox: Path,
        on_exit: Callable[[int], None],
    ) -> None:
        sandbox.mkdir(parents=True, exist_ok=True)
        self.log = sandbox / "output.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=sandbox,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._on_exit = on_exit
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        self._on_exit(self.proc.wait())

    def running(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (what kubelet and a VM's shutdown do)."""
        if not self.running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-500:]
        except OSError:
            return ""


class Clock:
    """A clock the test moves (the controller's backoff after a refused start)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_controller(runtime: object, root: Path, clock: Clock, url: str = "http://127.0.0.1:9"):  # type: ignore[no-untyped-def]
    """A real Controller (store, event log, local storage holding one movie) on ``runtime``,
    its exit handler set as ``Controller.start`` does; returns (controller, event log path)."""
    from dacirco.controller.core import Controller, ControllerConfig
    from dacirco.controller.events import EventLog
    from dacirco.controller.store import Store
    from dacirco.policies.base import PolicyParams, make_policy
    from dacirco.storage.local import LocalStorage
    from dacirco.storage.signing import UrlSigner

    root.mkdir(parents=True, exist_ok=True)
    storage = LocalStorage(root / "data", base_url=url, signer=UrlSigner(b"fake"), clock=clock)
    movie = root / "movie.bin"
    movie.write_bytes(b"\0" * 100)
    storage.put_file("input-videos/bbb_1.mp4", movie, metadata={"duration": "10"})
    config = ControllerConfig(flavor="tiny", controller_url=url)
    log_path = root / "events.txt"
    controller = Controller(
        config,
        make_policy("grace-period", PolicyParams(flavor="tiny")),
        runtime,  # type: ignore[arg-type]
        storage,
        Store(root / "dacirco.sqlite"),
        EventLog(log_path, clock),
        clock=clock,
    )
    runtime.set_exit_handler(controller.on_worker_exit)  # type: ignore[attr-defined]
    return controller, log_path
