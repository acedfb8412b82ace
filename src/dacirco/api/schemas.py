"""The public API's schema family: JobCreate in, JobPublic / WorkerPublic / Page out."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dacirco.api.job_figures import JobFigures
from dacirco.domain import (
    MAX_BITRATE_KBPS,
    MAX_MOVIE_NAME,
    MAX_PRIORITY,
    MIN_BITRATE_KBPS,
    MIN_PRIORITY,
    Codec,
    Speed,
    movie_name_problem,
)

# valid_movie_name as a JSON Schema (ECMA 262) pattern: no "..", a safe first character.
MOVIE_NAME_PATTERN = rf"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_MOVIE_NAME - 1}}}$"


def integral(value: object) -> object:
    """A JSON number with no fraction (``7000.0``) is an integer, as JSON Schema says; a
    string, a bool or ``7000.5`` stays refused (the field is strict)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


class JobCreate(BaseModel):
    """A transcoding request, as classic clients send it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"id_video": "bbb_5.mp4", "bitrate": 7000, "speed": "ultrafast"}]
        },
    )

    id_video: Annotated[
        str,
        Field(
            description=f"a movie of the catalog, e.g. bbb_5.mp4 (at most {MAX_MOVIE_NAME} "
            "characters)",
            # What valid_movie_name accepts, said in the schema (the check stays below).
            json_schema_extra={"pattern": MOVIE_NAME_PATTERN, "maxLength": MAX_MOVIE_NAME},
        ),
    ]
    bitrate: Annotated[
        int,
        Field(
            ge=MIN_BITRATE_KBPS,
            le=MAX_BITRATE_KBPS,
            strict=True,
            description=f"video bitrate in kbit/s, {MIN_BITRATE_KBPS}..{MAX_BITRATE_KBPS}",
        ),
        BeforeValidator(integral),
    ]
    speed: Annotated[Speed, Field(description="x264/x265 preset: ultrafast or fast")]
    codec: Annotated[Codec, Field(description="output video codec")] = Codec.H264
    priority: Annotated[
        int,
        Field(
            ge=MIN_PRIORITY,
            le=MAX_PRIORITY,
            strict=True,
            description=f"{MIN_PRIORITY}..{MAX_PRIORITY}, higher is served first (with aging)",
        ),
        BeforeValidator(integral),
    ] = 0
    callback_url: Annotated[
        str | None,
        Field(
            max_length=2048,
            description="an http(s) URL that gets this job's changes as signed webhooks; "
            "loopback, private and link-local addresses are refused",
            json_schema_extra={"pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s]+"},
        ),
    ] = None
    reuse: Annotated[
        bool,
        Field(
            strict=True,
            description="false: run this request even if an identical one (movie, bitrate, "
            "speed, codec) has completed or is in progress; true (the default): get that "
            "job's output",
        ),
    ] = True

    @field_validator("id_video")
    @classmethod
    def _movie_name(cls, value: str) -> str:
        if problem := movie_name_problem(value):
            raise PydanticCustomError("movie_name", "{problem}", {"problem": problem})
        return value


class Timings(BaseModel):
    received: str | None = None
    assigned: str | None = None
    started: str | None = None
    downloaded: str | None = None
    transcoded: str | None = None
    uploaded: str | None = None
    failed: str | None = None
    canceled: str | None = None
    reused: str | None = None  # when it got another job's output


class JobPublic(BaseModel):
    id: str
    id_video: str
    bitrate: int
    speed: str
    codec: str
    state: str
    priority: int = 0
    callback_url: str | None = None
    reuse: bool = True
    reused_from: str | None = Field(
        None,
        description="the identical job whose output it has (Completed) or waits for (attached)",
    )
    attempts: int
    worker_id: str | None = None
    progress: float = 0.0
    output: str | None = Field(None, description="output name under output-videos/")
    output_url: str | None = Field(None, description="where to download the output")
    error: str | None = None
    errors: list[str] = Field(default_factory=list, description="one reason per failed attempt")
    input_duration: float | None = None
    delay: float | None = Field(
        None, description="seconds from request to uploaded (or reused) output"
    )
    timings: Timings = Field(default_factory=Timings)
    figures: JobFigures | None = Field(
        None, description="where its time went, what it reserved, each attempt (docs/api.md)"
    )


class WorkerPublic(BaseModel):
    name: str
    id: str
    cpus: str
    memory: str = Field(description="GB")
    node: str
    flavor: str
    state: str
    created_at: str
    registered_at: str | None = None
    stopped_at: str | None = None
    job_id: str | None = None
    jobs_done: int = 0
    stop_reason: str | None = None


class Page(BaseModel):
    items: list[str]
    has_more: bool
