"""A typed Python client of a DaCirco service's public API (docs/api.md, "Python client").

``Client`` (blocking, on ``httpx.Client``) and ``AsyncClient`` (asyncio, on
``httpx.AsyncClient``) have the same methods; every error answer is raised as an
:class:`ApiError` of its kind, and a request that got no answer as :class:`Unreachable`::

    with Client("http://127.0.0.1:8000") as api:
        job = api.wait(api.submit("bbb_5.mp4", 7000, "ultrafast"))
        print(job.state, job.delay)
"""

from __future__ import annotations

from dacirco.api.schemas import JobPublic, Page, WorkerPublic
from dacirco.client.aio import AsyncClient
from dacirco.client.calls import DEFAULT_URL, FINAL_STATES, JOB_STATES
from dacirco.client.errors import (
    ApiError,
    Conflict,
    Invalid,
    NotFound,
    QueueFull,
    Unauthorized,
    Unavailable,
    Unreachable,
    WaitTimeout,
)
from dacirco.client.sse import Event
from dacirco.client.sync import Client

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATES",
    "JOB_STATES",
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "Event",
    "Invalid",
    "JobPublic",
    "NotFound",
    "Page",
    "QueueFull",
    "Unauthorized",
    "Unavailable",
    "Unreachable",
    "WaitTimeout",
    "WorkerPublic",
]
