"""The public API's schema family: JobCreate in, JobPublic / WorkerPublic / Page out."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
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
from dacirco.outputs.presets import Preset, known
from dacirco.outputs.spec import (
    MAX_RENDITIONS,
    Container,
    OutputSpec,
    ThumbnailSpec,
    check_all,
    present,
    without_null,
)
from dacirco.protocol import QualityReport

# valid_movie_name as a JSON Schema (ECMA 262) pattern: no "..", a safe first character.
MOVIE_NAME_PATTERN = rf"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9._-]{{0,{MAX_MOVIE_NAME - 1}}}$"


def integral(value: object) -> object:
    """A JSON number with no fraction (``7000.0``) is an integer, as JSON Schema says; a
    string, a bool or ``7000.5`` stays refused (the field is strict)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _without(*fields: str) -> dict[str, Any]:
    return {"not": {"anyOf": [{"required": [f]} for f in fields]}}


# The three shapes of a request, as ``problems`` checks them: classic (bitrate and speed, no
# thumbnails), a preset, or outputs (bitrate and codec then come from each rendition).
SHAPES = [
    {"required": ["bitrate", "speed"], **_without("preset", "outputs", "thumbnails")},
    {"required": ["preset"], **_without("outputs", "bitrate", "codec")},
    {"required": ["outputs"], **_without("preset", "bitrate", "codec")},
]


def _job_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [
        {"id_video": "bbb_5.mp4", "bitrate": 7000, "speed": "ultrafast"},
        {"id_video": "bbb_5.mp4", "preset": "hls-ladder"},
    ]
    schema["oneOf"] = SHAPES
    without_null("bitrate", "speed", "preset", "outputs", "thumbnails")(schema)


def not_null(message: str) -> BeforeValidator:
    """An explicit null refused with the message the classic API gave for it."""

    def check(value: object) -> object:
        if value is None:
            raise PydanticCustomError("null", message)
        return integral(value)

    return BeforeValidator(check)


class JobCreate(BaseModel):
    """A transcoding request, as classic clients send it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=lambda schema: _job_schema(schema),
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
        int | None,
        Field(
            ge=MIN_BITRATE_KBPS,
            le=MAX_BITRATE_KBPS,
            strict=True,
            description=f"video bitrate in kbit/s, {MIN_BITRATE_KBPS}..{MAX_BITRATE_KBPS}; "
            "required, unless the job has a preset or outputs (each rendition has its own)",
        ),
        not_null("Input should be a valid integer"),
    ] = None
    speed: Annotated[
        Speed | None,
        Field(
            description="x264/x265 preset: ultrafast or fast; required, unless the job has a "
            "preset or outputs (then fast by default)"
        ),
        not_null("Input should be 'ultrafast' or 'fast'"),
    ] = None
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
    quality: Annotated[
        bool,
        Field(
            strict=True,
            description="true: measure VMAF, PSNR and SSIM of every video rendition against "
            "the input at its size (shown in `quality_figures`); default: the preset's "
            "choice, else false (docs/outputs.md)",
        ),
    ] = False

    preset: Annotated[
        str | None,
        Field(
            max_length=64,
            description=f"ready-made streaming outputs instead of one MP4: {known()}, or an "
            "operator's (GET /presets; docs/outputs.md)",
        ),
        BeforeValidator(present),
    ] = None
    outputs: Annotated[
        list[OutputSpec] | None,
        Field(
            min_length=1,
            max_length=len(Container),
            description="streaming outputs instead of one MP4: containers (mp4, hls, dash) "
            f"and their renditions, at most {MAX_RENDITIONS} in all (docs/outputs.md)",
        ),
        AfterValidator(check_all),
        BeforeValidator(present),
    ] = None

    thumbnails: Annotated[
        ThumbnailSpec | None,
        Field(
            description="with a preset or outputs: a poster and sprite sheets of a frame every "
            "`every` seconds (1..60) with a WebVTT index, in the job's outputs; default: the "
            "preset's (docs/outputs.md)"
        ),
        BeforeValidator(present),
    ] = None

    @field_validator("id_video")
    @classmethod
    def _movie_name(cls, value: str) -> str:
        if problem := movie_name_problem(value):
            raise PydanticCustomError("movie_name", "{problem}", {"problem": problem})
        return value

    def problems(self) -> list[dict[str, Any]]:
        """What the fields alone cannot say, as validation errors: a classic job needs its
        bitrate and speed; a streaming one (preset or outputs) has them per rendition."""
        errors: list[dict[str, Any]] = []

        def add(field: str, kind: str, msg: str) -> None:
            errors.append({"loc": ("body", field), "msg": msg, "type": kind, "input": None})

        if self.preset is None and self.outputs is None:
            for field in ("bitrate", "speed"):
                if getattr(self, field) is None:
                    add(field, "missing", "Field required")
            if self.thumbnails is not None:
                add("thumbnails", "conflict", "only with a preset or outputs (a folder of files)")
            return errors
        if self.preset is not None and self.outputs is not None:
            add("outputs", "conflict", "give a preset or outputs, not both")
        for field in ("bitrate", "codec"):
            if field in self.model_fields_set:
                add(field, "conflict", "not with a preset or outputs: each rendition has its own")
        return errors

    def wants_quality(self, preset: Preset | None = None) -> bool:
        """Its own ``quality`` when given, else its ``preset``'s (the one it names)."""
        if "quality" in self.model_fields_set or preset is None:
            return self.quality
        return preset.quality

    def wants_thumbnails(self, preset: Preset | None = None) -> ThumbnailSpec | None:
        """Its own ``thumbnails`` when given, else its ``preset``'s."""
        if self.thumbnails is not None or preset is None:
            return self.thumbnails
        return preset.thumbnails

    def streaming(self, preset: Preset | None = None) -> list[OutputSpec] | None:
        """The outputs asked for (its ``preset``'s, or the job's own), before they meet the
        input."""
        if preset is not None:
            return list(preset.outputs)
        return self.outputs


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
    preset: str | None = None
    outputs: list[dict[str, Any]] | None = Field(
        None, description="its streaming outputs, fitted to the input (none: one MP4)"
    )
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
    outputs_url: str | None = Field(
        None, description="a streaming job's files and playlists (GET /jobs/{id}/outputs)"
    )
    thumbnails: dict[str, Any] | None = Field(
        None, description="its thumbnails, as asked (`every`: seconds); none: no thumbnails"
    )
    quality: bool = Field(False, description="whether it asked for its measured quality")
    quality_figures: QualityReport | None = Field(
        None,
        description="VMAF, PSNR and SSIM of each video rendition, once transcoded (a reused "
        "job: its source's)",
    )
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
    preemptible: bool = Field(
        default=False, description="a pilot on an opportunistic node (a node agent's machine)"
    )
    preempted: bool = Field(
        default=False, description="stopped because its host's owner took the machine back"
    )


class Page(BaseModel):
    items: list[str]
    has_more: bool


class OutputFile(BaseModel):
    name: str = Field(description="file name in the job's output folder")
    size: int = Field(description="bytes")
    url: str = Field(description="signed, expiring GET URL")


class OutputsPublic(BaseModel):
    """``GET /jobs/{id}/outputs``: a streaming job's files, and its playlists to play."""

    job: str
    folder: str = Field(description="the folder under output-videos/ that holds the files")
    playlists: dict[str, str] = Field(
        description="hls, dash: the signed URL of the master playlist or MPD, playable as is "
        "(the media playlists and segments it names are reached through the same URL)"
    )
    files: list[OutputFile]
    thumbnails: dict[str, str] = Field(
        default_factory=dict,
        description="poster: the poster's signed URL; vtt: the WebVTT index as a play URL "
        "(the sprite sheets it names are reached through the same URL); empty: none asked",
    )
    expires_in: float = Field(description="seconds the URLs are valid from now")
