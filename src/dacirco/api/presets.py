"""Preset routes: the shipped presets and the operators' own (``GET /presets``, ``GET``,
``PUT`` and ``DELETE /presets/{name}``), behind the client token like every public route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from dacirco.api.deps import BackendDep
from dacirco.api.responses import error
from dacirco.outputs.presets import NAME_PATTERN, PresetBody, PresetPublic, PresetsPublic

router = APIRouter(prefix="/presets", tags=["presets"])

Name = Annotated[str, Path(max_length=64, description="the preset's name")]
NewName = Annotated[
    str,
    Path(
        max_length=64,
        pattern=NAME_PATTERN,
        description="lower-case letters, digits, '-', '_'; not a shipped preset's",
    ),
]
SHIPPED = {409: error("a shipped preset: it cannot be replaced or removed")}


@router.get("", response_model=PresetsPublic, summary="Every preset, the shipped ones first")
async def list_presets(backend: BackendDep) -> PresetsPublic:
    return await backend.presets()


@router.get("/{name}", response_model=PresetPublic, summary="One preset")
async def read_preset(name: Name, backend: BackendDep) -> PresetPublic:
    return await backend.preset(name)


@router.put(
    "/{name}",
    response_model=PresetPublic,
    responses={201: {"model": PresetPublic, "description": "a new preset"}, **SHIPPED},
    summary="Add or replace an operator's preset, checked as a job's outputs are",
)
async def put_preset(
    name: NewName, body: PresetBody, response: Response, backend: BackendDep
) -> PresetPublic:
    preset, new = await backend.put_preset(name, body)
    response.status_code = 201 if new else 200
    return preset


@router.delete("/{name}", status_code=204, responses=SHIPPED, summary="Remove an operator's preset")
async def delete_preset(name: Name, backend: BackendDep) -> Response:
    await backend.delete_preset(name)
    return Response(status_code=204)
