"""A fake OpenStack cloud: the few Keystone, Nova, Glance and Neutron endpoints the VM
runtime uses, through the real openstacksdk.

Keystone v3 password auth (a catalog of the three services); Nova v2.1 (microversions up to
2.60): flavors, ``os-hypervisors/detail`` (admins only: 403 otherwise), ``limits``, servers
(create, show, list by name regex, delete); Glance v2 and Neutron v2.0 images and networks by
id or name. A server create is validated as Nova does (400 ``badRequest``, 403 quota
``Quota exceeded for cores``), scheduled on a hypervisor with room (the requested one with
``availability_zone=nova:<host>``; none: ERROR "No valid host was found"), and once ACTIVE its
cloud-init user data is read like cloud-init would: ``write_files`` are kept, the
``systemd-run … dacirco worker …`` of ``runcmd`` runs as a local process with the env file it
names; its ``ExecStopPost=… poweroff`` turns the server SHUTOFF when the worker ends.
Deleting the server terminates the process. ``hold``: servers go ACTIVE but never run it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes import DACIRCO_BINARY, Container, image_env, serve_in_thread

USER, PASSWORD, PROJECT = "dacirco", "fake-cloud-password", "dacirco-project"
FLAVORS = {"s10.tiny": (1, 2048), "s10.small": (2, 4096), "s10.medium": (4, 8192)}
IMAGE_NAME, NETWORK_NAME = "dacirco-worker", "dacirco-net"


def _error(code: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({kind: {"code": code, "message": message}}, status_code=code)


def _bad(message: str) -> JSONResponse:
    return _error(400, "badRequest", message)


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


def create_app(cloud: FakeCloud) -> FastAPI:
    app = FastAPI()

    def version(path: str, vid: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        links = [{"rel": "self", "href": f"{cloud.url}/{path}/"}]
        return {"id": vid, "status": "CURRENT", "links": links, **(extra or {})}

    @app.middleware("http")
    async def auth(request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        guarded = not path.startswith("/identity") and path.count("/") > 2
        if guarded and request.headers.get("x-auth-token") not in cloud.tokens:
            return _error(401, "unauthorized", "The request you have made requires auth.")
        return await call_next(request)

    # ---- keystone ------------------------------------------------------------------------
    v3 = version("identity/v3", "v3.14", {"status": "stable", "media-types": []})

    @app.get("/identity")
    @app.get("/identity/")
    def identity_versions() -> dict[str, Any]:
        return {"versions": {"values": [v3]}}

    @app.get("/identity/v3")
    @app.get("/identity/v3/")
    def identity_v3() -> dict[str, Any]:
        return {"version": v3}

    @app.post("/identity/v3/auth/tokens", response_model=None)
    async def tokens(request: Request) -> JSONResponse:
        body = await request.json()
        user = body["auth"]["identity"]["password"]["user"]
        if user.get("name") != USER or user.get("password") != PASSWORD:
            return _error(401, "error", "The request you have made requires authentication.")
        token = uuid.uuid4().hex
        cloud.tokens.add(token)

        def service(kind: str, path: str) -> dict[str, Any]:
            ep = {"id": kind, "interface": "public", "region": "RegionOne"}
            ep |= {"region_id": "RegionOne", "url": f"{cloud.url}/{path}"}
            return {"type": kind, "name": kind, "id": kind, "endpoints": [ep]}

        domain = {"id": "default", "name": "Default"}
        body = {
            "token": {
                "methods": ["password"], "expires_at": "2999-01-01T00:00:00.000000Z",
                "issued_at": "2024-01-01T00:00:00.000000Z",
                "user": {"id": USER, "name": USER, "domain": domain},
                "project": {"id": PROJECT, "name": PROJECT, "domain": domain},
                "roles": [{"id": "member", "name": "member"}],
                "catalog": [service("compute", "compute/v2.1"), service("image", "image"),
                            service("network", "network")],
            }
        }  # fmt: skip
        return JSONResponse(body, status_code=201, headers={"X-Subject-Token": token})

    # ---- glance and neutron ------------------------------------------------------------------
    @app.get("/image")
    @app.get("/image/")
    def image_versions() -> dict[str, Any]:
        return {"versions": [version("image/v2", "v2.9")]}

    def image() -> dict[str, Any]:
        return {"id": cloud.image_id, "name": IMAGE_NAME, "status": "active"}

    @app.get("/image/v2/images/{image_id}", response_model=None)
    def get_image(image_id: str) -> dict[str, Any] | Response:
        return image() if image_id == cloud.image_id else Response(status_code=404)

    @app.get("/image/v2/images")
    def list_images(name: str | None = None) -> dict[str, Any]:
        return {"images": [image()] if name in (None, IMAGE_NAME) else []}

    @app.get("/network")
    @app.get("/network/")
    def network_versions() -> dict[str, Any]:
        return {"versions": [version("network/v2.0", "v2.0")]}

    def network() -> dict[str, Any]:
        return {"id": cloud.network_id, "name": NETWORK_NAME, "status": "ACTIVE"}

    @app.get("/network/v2.0/networks/{net_id}", response_model=None)
    def get_network(net_id: str) -> dict[str, Any] | JSONResponse:
        if net_id == cloud.network_id:
            return {"network": network()}
        return _error(404, "NeutronError", f"Network {net_id} could not be found.")

    @app.get("/network/v2.0/networks")
    def list_networks(name: str | None = None) -> dict[str, Any]:
        return {"networks": [network()] if name in (None, NETWORK_NAME) else []}

    # ---- nova ----------------------------------------------------------------------------------
    compute = version("compute/v2.1", "v2.1", {"version": "2.60", "min_version": "2.1"})

    @app.get("/compute")
    @app.get("/compute/")
    def compute_versions() -> dict[str, Any]:
        return {"versions": [compute]}

    @app.get("/compute/v2.1")
    @app.get("/compute/v2.1/")
    def compute_v21() -> dict[str, Any]:
        return {"version": compute}

    def flavor(name: str) -> dict[str, Any]:
        cpus, ram = FLAVORS[name]
        return {"id": name, "name": name, "vcpus": cpus, "ram": ram, "disk": 10, "links": []}

    @app.get("/compute/v2.1/flavors/{flavor_id}", response_model=None)
    def get_flavor(flavor_id: str) -> dict[str, Any] | JSONResponse:
        if flavor_id == "detail":
            return {"flavors": [flavor(n) for n in FLAVORS]}
        if flavor_id in FLAVORS:
            return {"flavor": flavor(flavor_id)}
        return _error(404, "itemNotFound", f"Flavor {flavor_id} could not be found.")

    @app.get("/compute/v2.1/flavors")
    def list_flavors() -> dict[str, Any]:
        return {"flavors": [flavor(n) for n in FLAVORS]}

    @app.get("/compute/v2.1/os-hypervisors/detail", response_model=None)
    def hypervisors() -> dict[str, Any] | JSONResponse:
        if not cloud.admin:
            return _error(403, "forbidden", "Policy doesn't allow os_compute_api:os-hypervisors")
        return {
            "hypervisors": [
                {"id": i, "hypervisor_hostname": h, "vcpus": c, "memory_mb": r,
                 "state": "up", "status": "enabled", "hypervisor_type": "QEMU"}
                for i, (h, (c, r)) in enumerate(cloud.hosts.items())
            ]
        }  # fmt: skip

    @app.get("/compute/v2.1/limits")
    def limits() -> dict[str, Any]:
        used = cloud.used()
        absolute = {"maxTotalCores": cloud.quota_cores, "maxTotalRAMSize": 51200}
        absolute |= {"maxTotalInstances": 10, "totalCoresUsed": used[0], "totalRAMUsed": used[1]}
        return {"limits": {"absolute": absolute, "rate": []}}

    @app.post("/compute/v2.1/servers", response_model=None)
    async def create_server(request: Request) -> JSONResponse:
        body = await request.json()
        if problem := validate(cloud, body):
            return _bad(problem)
        req = body["server"]
        _zone, _, host = (req.get("availability_zone") or "").partition(":")
        if host and not cloud.admin:
            return _error(
                403, "forbidden", "Policy doesn't allow os_compute_api:servers:create:forced_host"
            )
        if host and host not in cloud.hosts:
            return _bad(f"Compute host {host} could not be found.")
        with cloud.lock:
            cores = FLAVORS[req["flavorRef"]][0]
            used = cloud.used()[0]
            if used + cores > cloud.quota_cores:
                message = (
                    f"Quota exceeded for cores: Requested {cores}, but already used {used} "
                    f"of {cloud.quota_cores} cores"
                )
                cloud.refused.append(message)
                return _error(403, "forbidden", message)
            server = FakeServer(
                id=str(uuid.uuid4()),
                name=req["name"],
                flavor=req["flavorRef"],
                host=cloud.schedule(req["flavorRef"], host or None),
                metadata=req.get("metadata") or {},
                user_data=base64.b64decode(req.get("user_data", "")).decode(),
            )
            cloud.requests.append(body)
            cloud.created.append(server)
            cloud.servers[server.id] = server
            if server.host is None:
                server.status = "ERROR"
                server.fault = {
                    "code": 500,
                    "message": "No valid host was found. There are not enough hosts available.",
                }
            else:
                threading.Thread(target=cloud.boot, args=(server,), daemon=True).start()
        links = [{"rel": "self", "href": f"{cloud.url}/compute/v2.1/servers/{server.id}"}]
        reply = {"id": server.id, "links": links, "OS-DCF:diskConfig": "MANUAL"}
        return JSONResponse({"server": reply | {"adminPass": "x"}}, status_code=202)

    def list_servers(request: Request) -> dict[str, Any]:
        pattern = re.compile(request.query_params.get("name", ""))
        with cloud.lock:
            found = [cloud.view(s) for s in cloud.servers.values() if pattern.search(s.name)]
        return {"servers": found}

    @app.get("/compute/v2.1/servers/detail")
    def servers_detail(request: Request) -> dict[str, Any]:
        return list_servers(request)

    @app.get("/compute/v2.1/servers")
    def servers(request: Request) -> dict[str, Any]:
        return list_servers(request)

    def missing(server_id: str) -> JSONResponse:
        return _error(404, "itemNotFound", f"Instance {server_id} could not be found.")

    @app.get("/compute/v2.1/servers/{server_id}", response_model=None)
    def get_server(server_id: str) -> dict[str, Any] | JSONResponse:
        with cloud.lock:
            server = cloud.servers.get(server_id)
            return {"server": cloud.view(server)} if server else missing(server_id)

    @app.delete("/compute/v2.1/servers/{server_id}", response_model=None)
    def delete_server(server_id: str) -> Response:
        server = cloud.servers.get(server_id)
        if server is None:
            return missing(server_id)
        cloud.delete(server)
        return Response(status_code=204)

    return app


def write_clouds_yaml(path: Path, url: str, name: str = "fake") -> Path:
    path.write_text(
        f"clouds:\n  {name}:\n    auth:\n      auth_url: {url}/identity/v3\n"
        f"      username: {USER}\n      password: {PASSWORD}\n      project_name: {PROJECT}\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n"
    )
    return path


@contextlib.contextmanager
def fake_cloud(root: Path, **kwargs: Any) -> Iterator[FakeCloud]:
    cloud = FakeCloud(root=root, **kwargs)
    try:
        with serve_in_thread(create_app(cloud)) as url:
            cloud.url = url
            yield cloud
    finally:
        cloud.shutdown()


def connect(cloud: FakeCloud, clouds_yaml: Path) -> Any:
    import openstack.config
    from openstack.connection import Connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)])
    return Connection(config=config.get_one("fake", api_timeout=10))


@contextlib.asynccontextmanager
async def fake_runtime(
    tmp: Path, network: str | None = NETWORK_NAME, **kwargs: Any
) -> AsyncIterator[tuple[Any, FakeCloud]]:
    """An ``OpenStackRuntime`` on a fake cloud (closed, then the cloud stopped, after)."""
    from dacirco.runtimes.openstack import OpenStackOptions, OpenStackRuntime

    with fake_cloud(tmp / "cloud", **kwargs) as cloud:
        conn = connect(cloud, write_clouds_yaml(tmp / "clouds.yaml", cloud.url))
        options = OpenStackOptions("fake", IMAGE_NAME, network, poll_interval=0.3, stop_wait=10)
        runtime = await asyncio.to_thread(OpenStackRuntime, options, conn)
        try:
            yield runtime, cloud
        finally:
            await runtime.close()
