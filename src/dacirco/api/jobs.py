"""Public job routes (SPEC §3): submit, list, show, state, and the output download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse

from dacirco.api.deps import BackendDep
from dacirco.api.responses import CANNOT_CANCEL, NOT_READY, QUEUE_FULL
from dacirco.api.schemas import JobCreate, JobPublic, Page

router = APIRouter(prefix="/jobs", tags=["jobs"])

PageLimit = Annotated[
    int | None,
    Query(ge=1, le=10_000, description="page size (default: 1,000; has_more says if more)"),
]
After = Annotated[
    str | None, Query(description="the last id of the previous page (empty: from the start)")
]


@router.post(
    "",
    status_code=201,
    response_model=str,
    summary="Submit a transcoding job",
    responses={429: QUEUE_FULL},
)
async def create_job(body: JobCreate, request: Request, response: Response, backend: BackendDep):
    if errors := body.problems():
        raise RequestValidationError(errors)
    job_id = await backend.submit(body)
    response.headers["Location"] = str(request.url_for("read_job", job_id=job_id))
    return job_id


@router.get("", response_model=Page, summary="List job ids, oldest first")
async def list_jobs(backend: BackendDep, limit: PageLimit = None, after: After = None) -> Page:
    return await backend.jobs(limit, after)


@router.get("/{job_id}", response_model=JobPublic, summary="A job's parameters and progress")
async def read_job(job_id: str, backend: BackendDep) -> JobPublic:
    return await backend.job(job_id)


@router.get(
    "/{job_id}/state",
    response_model=str,
    summary="Waiting, Started, Completed, Error or Canceled",
)
async def read_job_state(job_id: str, backend: BackendDep) -> str:
    return (await backend.job(job_id)).state


@router.delete(
    "/{job_id}",
    response_model=JobPublic,
    summary="Cancel a job: Waiting or Started, it ends Canceled; its worker goes back to the pool",
    responses={409: CANNOT_CANCEL},
)
async def cancel_job(job_id: str, backend: BackendDep) -> JobPublic:
    return await backend.cancel(job_id)


@router.get(
    "/{job_id}/output",
    status_code=307,
    response_class=RedirectResponse,
    summary="Download the output: a redirect to a signed, expiring URL",
    responses={409: NOT_READY},
)
async def read_job_output(job_id: str, backend: BackendDep) -> RedirectResponse:
    return RedirectResponse(await backend.output_url(job_id), status_code=307)
