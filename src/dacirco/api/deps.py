"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from dacirco.api.backend import Backend
from dacirco.controller.core import Controller
from dacirco.controller.errors import WorkerAuthError
from dacirco.domain import Worker


def get_backend(request: Request) -> Backend:
    return request.app.state.backend


def get_controller(request: Request) -> Controller:
    return request.app.state.controller


async def get_worker(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Worker:
    # async, so it runs in the event loop: nothing changes between this check and the route.
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise WorkerAuthError("missing 'Authorization: Bearer <worker token>' header")
    return get_controller(request).authenticate(token)


BackendDep = Annotated[Backend, Depends(get_backend)]
ControllerDep = Annotated[Controller, Depends(get_controller)]
WorkerDep = Annotated[Worker, Depends(get_worker)]
Limit = Annotated[int, "page size"]
