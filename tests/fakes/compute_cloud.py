"""The state of the fake OpenStack cloud (tests/fakes/compute_api.py serves it): its servers,
hypervisors, quotas and the validation of a server create, as Nova does it."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.responses import JSONResponse

from tests.fakes import DACIRCO_BINARY, Container, image_env

USER, PASSWORD, PROJECT = "dacirco", "fake-cloud-password", "dacirco-project"
FLAVORS = {"s10.tiny": (1, 2048), "s10.small": (2, 4096), "s10.medium": (4, 8192)}
IMAGE_NAME, NETWORK_NAME = "dacirco-worker", "dacirco-net"


def nova_error(code: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({kind: {"code": code, "message": message}}, status_code=code)


def bad_request(message: str) -> JSONResponse:
    return nova_error(400, "badRequest", message)


@dataclass
class FakeServer:
    id: str
    name: str
    flavor: str
    host: str | None
    metadata: dict[str, str]
    user_data: str
    status: str = "BUILD"
    fault: dict[str, Any] | None = None
    container: Container | None = None


@dataclass
class FakeCloud:
    root: Path
    hosts: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {f"compute{i}": (6, 16384) for i in (1, 2, 3)}
    )
    admin: bool = True  # may list hypervisors and target hosts
    quota_cores: int = 18
    hold: bool = False
    boot_delay: float = 0.2
    url: str = ""
    image_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    network_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    servers: dict[str, FakeServer] = field(default_factory=dict)
    created: list[FakeServer] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every create body
    tokens: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def running(self) -> list[str]:
        return [s.name for s in self.servers.values() if s.container and s.container.running()]

    def used(self, host: str | None = None) -> tuple[int, int]:
        live = [s for s in self.servers.values() if host is None or s.host == host]
        return sum(FLAVORS[s.flavor][0] for s in live), sum(FLAVORS[s.flavor][1] for s in live)

    def schedule(self, flavor: str, wanted: str | None) -> str | None:
        cpus, ram = FLAVORS[flavor]
        best = None
        for host, (hc, hr) in self.hosts.items():
            if wanted and host != wanted:
                continue
            uc, ur = self.used(host)
            if hc - uc >= cpus and hr - ur >= ram and (best is None or hc - uc > best[0]):
                best = (hc - uc, host)
        return best[1] if best else None

    def boot(self, server: FakeServer) -> None:
        time.sleep(self.boot_delay)
        with self.lock:
            if server.id not in self.servers:
                return
            server.status = "ACTIVE"
            if not self.hold:
                self._cloud_init(server)

    def _cloud_init(self, server: FakeServer) -> None:
        config = yaml.safe_load(server.user_data)
        files = {f["path"]: f.get("content", "") for f in config.get("write_files") or []}
        for cmd in config.get("runcmd") or []:
            if not (isinstance(cmd, list) and cmd and cmd[0] == "systemd-run"):
                continue
            env = image_env(self.root / server.name / "home")
            poweroff = False
            i = 1
            while i < len(cmd) and cmd[i].startswith("-"):
                prop = cmd[i].removeprefix("--property=")
                if prop.startswith("EnvironmentFile="):
                    text = files[prop.split("=", 1)[1]]
                    env |= dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)
                poweroff |= prop.startswith("ExecStopPost=") and "poweroff" in prop
                i += 1
            argv = cmd[i:]
            if argv[:1] != ["dacirco"]:
                continue
            server.container = Container(
                [*DACIRCO_BINARY, *argv[1:]],
                env,
                self.root / server.name,
                lambda code, s=server, off=poweroff: self._exited(s, off),
            )

    def _exited(self, server: FakeServer, poweroff: bool) -> None:
        with self.lock:
            if server.status == "DELETING":
                self.servers.pop(server.id, None)
            elif poweroff:
                server.status = "SHUTOFF"

    def delete(self, server: FakeServer) -> None:
        with self.lock:
            server.status = "DELETING"
            container = server.container
            if container is None or not container.running():
                self.servers.pop(server.id, None)
                return
        threading.Thread(target=container.terminate, args=(3.0,), daemon=True).start()

    def shutdown(self) -> None:
        for server in list(self.servers.values()):
            if server.container is not None:
                server.container.terminate(2.0)

    def view(self, s: FakeServer) -> dict[str, Any]:
        cpus, ram = FLAVORS[s.flavor]
        body: dict[str, Any] = {
            "id": s.id, "name": s.name, "status": s.status, "metadata": s.metadata,
            "flavor": {"original_name": s.flavor, "vcpus": cpus, "ram": ram, "disk": 10},
            "image": {"id": self.image_id}, "addresses": {}, "tenant_id": PROJECT,
            "user_id": USER, "OS-EXT-SRV-ATTR:host": s.host,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": s.host,
            "OS-EXT-AZ:availability_zone": "nova",
            "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/servers/{s.id}"}],
        }  # fmt: skip
        if s.fault:
            body["fault"] = s.fault
        return body


def validate(cloud: FakeCloud, body: Any) -> str | None:
    server = body.get("server") if isinstance(body, dict) else None
    if not isinstance(server, dict):
        return "Invalid input for field/attribute server."
    name = server.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        return "Invalid input for field/attribute name."
    if server.get("imageRef") != cloud.image_id:
        return f"Can not find requested image {server.get('imageRef')}"
    if server.get("flavorRef") not in FLAVORS:
        return f"Flavor {server.get('flavorRef')} could not be found."
    networks = server.get("networks")
    if networks not in ("auto", "none") and not (
        isinstance(networks, list) and all(n.get("uuid") == cloud.network_id for n in networks)
    ):
        return "Invalid input for field/attribute networks."
    data = server.get("user_data", "")
    try:
        if len(base64.b64decode(data, validate=True)) > 65535:
            return "User data too large."
    except ValueError:
        return "User data needs to be valid base 64."
    meta = server.get("metadata") or {}
    if not all(isinstance(v, str) and len(v) <= 255 for v in meta.values()):
        return "Invalid input for field/attribute metadata."
    return None
