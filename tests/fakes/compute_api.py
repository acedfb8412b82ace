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
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.fakes import serve_in_thread
from tests.fakes.compute_cloud import (
    FLAVORS,
    IMAGE_NAME,
    NETWORK_NAME,
    PASSWORD,
    PROJECT,
    USER,
    FakeCloud,
    FakeServer,
    bad_request,
    nova_error,
    validate,
)


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
            return nova_error(401, "unauthorized", "The request you have made requires auth.")
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
            return nova_error(401, "error", "The request you have made requires authentication.")
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
        return nova_error(404, "NeutronError", f"Network {net_id} could not be found.")

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
        return nova_error(404, "itemNotFound", f"Flavor {flavor_id} could not be found.")

    @app.get("/compute/v2.1/flavors")
    def list_flavors() -> dict[str, Any]:
        return {"flavors": [flavor(n) for n in FLAVORS]}

    @app.get("/compute/v2.1/os-hypervisors/detail", response_model=None)
    def hypervisors() -> dict[str, Any] | JSONResponse:
        if not cloud.admin:
            denied = "Policy doesn't allow os_compute_api:os-hypervisors"
            return nova_error(403, "forbidden", denied)
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
            return bad_request(problem)
        req = body["server"]
        _zone, _, host = (req.get("availability_zone") or "").partition(":")
        if host and not cloud.admin:
            return nova_error(
                403, "forbidden", "Policy doesn't allow os_compute_api:servers:create:forced_host"
            )
        if host and host not in cloud.hosts:
            return bad_request(f"Compute host {host} could not be found.")
        with cloud.lock:
            cores = FLAVORS[req["flavorRef"]][0]
            used = cloud.used()[0]
            if used + cores > cloud.quota_cores:
                message = (
                    f"Quota exceeded for cores: Requested {cores}, but already used {used} "
                    f"of {cloud.quota_cores} cores"
                )
                cloud.refused.append(message)
                return nova_error(403, "forbidden", message)
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
        return nova_error(404, "itemNotFound", f"Instance {server_id} could not be found.")

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
