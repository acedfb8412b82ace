"""The worker protocol routes (see dacirco.protocol); apart from the public ones, token only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from dacirco.api.deps import ControllerDep, WorkerDep
from dacirco.api.responses import WORKER
from dacirco.protocol import (
    RegisterReply,
    RegisterRequest,
    SamplesReport,
    TaskReport,
    TaskSpec,
    UploadGrant,
    UploadRequest,
)

router = APIRouter(
    prefix="/worker", tags=["worker protocol"], include_in_schema=True, responses=WORKER
)


@router.post("/register", response_model=RegisterReply)
async def register(body: RegisterRequest, worker: WorkerDep, c: ControllerDep) -> RegisterReply:
    return await c.register(worker, body)


@router.get("/task", response_model=TaskSpec, responses={204: {"description": "no task yet"}})
async def next_task(
    worker: WorkerDep,
    c: ControllerDep,
    wait: Annotated[float, Query(ge=0, le=60)] = 20.0,
) -> TaskSpec | Response:
    spec = await c.next_task(worker, wait)
    return spec if spec is not None else Response(status_code=204)


@router.get(
    "/tasks/{task_id}/watch",
    response_model=str,
    summary="The task's state once it is canceled, or after `wait` seconds",
)
async def watch(
    task_id: str,
    worker: WorkerDep,
    c: ControllerDep,
    wait: Annotated[float, Query(ge=0, le=60)] = 20.0,
) -> str:
    return await c.watch_task(worker, task_id, wait)


@router.post("/tasks/{task_id}/report")
async def report(task_id: str, body: TaskReport, worker: WorkerDep, c: ControllerDep) -> dict:
    await c.report(worker, task_id, body)
    return {"ok": True}


@router.post(
    "/tasks/{task_id}/upload-url",
    response_model=UploadGrant,
    summary="The signed PUT URL of the task's output, short-lived, asked just before uploading",
)
async def upload_url(
    task_id: str, worker: WorkerDep, c: ControllerDep, body: UploadRequest | None = None
) -> UploadGrant:
    return await c.upload_url(worker, task_id, body.names if body is not None else [])


@router.post("/samples")
async def samples(body: SamplesReport, worker: WorkerDep, c: ControllerDep) -> dict:
    c.record_samples(worker, body)
    return {"ok": True}
