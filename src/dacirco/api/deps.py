"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError

from dacirco.api.backend import Backend
from dacirco.controller.core import Controller
from dacirco.controller.errors import WorkerAuthError
from dacirco.domain import Worker


# ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop on
# every request for a dictionary read.
async def get_backend(request: Request) -> Backend:
    return request.app.state.backend


async def get_controller(request: Request) -> Controller:
    return request.app.state.controller


async def get_worker(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Worker:
    # async, so it runs in the event loop: nothing changes between this check and the route.
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise WorkerAuthError("missing 'Authorization: Bearer <worker token>' header")
    controller: Controller = request.app.state.controller
    return controller.authenticate(token)


BackendDep = Annotated[Backend, Depends(get_backend)]
ControllerDep = Annotated[Controller, Depends(get_controller)]
WorkerDep = Annotated[Worker, Depends(get_worker)]
Limit = Annotated[int, "page size"]


def _query_names(dependant: Any) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


_QUERY_NAMES: dict[int, frozenset[str]] = {}


async def known_query(request: Request) -> None:
    """A query parameter the route does not take is refused (422 naming it), not ignored:
    ``?limt=5`` is a mistake the client should hear about."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    allowed = _QUERY_NAMES.get(id(route))
    if allowed is None:
        allowed = _QUERY_NAMES[id(route)] = _query_names(dependant)
    unknown = [k for k in dict.fromkeys(request.query_params) if k not in allowed]
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise RequestValidationError(
            [
                {"loc": ("query", k), "msg": f"unknown parameter (this route takes: {takes})",
                 "type": "extra_forbidden", "input": request.query_params[k]}
                for k in unknown
            ]
        )  # fmt: skip
