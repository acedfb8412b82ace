"""Public worker routes (SPEC §3): list (stopped ones included), show, state."""

from __future__ import annotations

from fastapi import APIRouter

from dacirco.api.deps import BackendDep
from dacirco.api.jobs import After, PageLimit
from dacirco.api.schemas import Page, WorkerPublic

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", response_model=Page, summary="List worker ids, stopped ones included")
async def list_workers(backend: BackendDep, limit: PageLimit = None, after: After = None) -> Page:
    return await backend.workers(limit, after)


@router.get("/{worker_id}", response_model=WorkerPublic, summary="A worker's description")
async def read_worker(worker_id: str, backend: BackendDep) -> WorkerPublic:
    return await backend.worker(worker_id)


@router.get("/{worker_id}/state", response_model=str, summary="Booting, Busy, Idle or Stopped")
async def read_worker_state(worker_id: str, backend: BackendDep) -> str:
    return (await backend.worker(worker_id)).state
