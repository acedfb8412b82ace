"""What a client may ask for beside the classic single MP4: containers and renditions,
validated with field-named errors; ``fit`` checks them against the input's height."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from dacirco.domain import Codec
from dacirco.outputs.names import total_kbps

MAX_RENDITIONS = 10  # in all, over every output of a job
MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS = 1.0, 20.0
MIN_HEIGHT, MAX_HEIGHT = 144, 2160
MIN_VIDEO_KBPS, MAX_VIDEO_KBPS = 100, 20_000
MIN_AUDIO_KBPS, MAX_AUDIO_KBPS = 32, 320


class Container(StrEnum):
    MP4 = "mp4"  # one file per rendition
    HLS = "hls"  # a master playlist, one media playlist and fMP4 (CMAF) segments per rendition
    DASH = "dash"  # an MPD, fMP4 (CMAF) segments per representation


class Taller(StrEnum):
    """What to do with a rendition taller than the input."""

    REFUSE = "refuse"  # the request is refused (422)
    SKIP = "skip"  # the rendition is left out (a ladder fitted to its input)
    UPSCALE = "upscale"  # it is encoded, upscaled


def _whole(value: object) -> object:
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Kbps = Annotated[int, Field(strict=True)]


def present(value: object) -> object:
    """An explicit null is refused where leaving the field out is how to say "none"."""
    if value is None:
        raise PydanticCustomError("null", "must not be null: leave the field out instead")
    return _whole(value)


def without_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A model's ``json_schema_extra`` that says these fields are never null: they are left
    out to mean "none" (``present`` refuses an explicit null)."""

    def edit(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
            if len(branches) == 1:
                prop.update(branches[0])
            if prop.get("default", 0) is None:
                del prop["default"]

    return edit


# What the rendition's own checks say, in its JSON schema: a height goes with a video
# bitrate, and a rendition has video or audio.
RENDITION_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"anyOf": [{"not": {"required": ["height"]}}, {"required": ["video_bitrate"]}]},
        {
            "anyOf": [
                {"required": ["video_bitrate"]},
                {"properties": {"audio_bitrate": {"type": "integer"}}},
            ]
        },
    ]
}


def _rendition_schema(schema: dict[str, Any]) -> None:
    schema.update(RENDITION_SCHEMA)
    without_null("height", "video_bitrate")(schema)


class Rendition(BaseModel):
    """One encoding of the movie: a video height and bitrate with audio, or audio alone."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema: _rendition_schema(schema),
    )

    height: Annotated[
        int | None,
        Field(
            ge=MIN_HEIGHT,
            le=MAX_HEIGHT,
            multiple_of=2,
            strict=True,
            description="video height in pixels, even (the width keeps the aspect ratio); "
            "left out: the input's height",
        ),
        BeforeValidator(present),
    ] = None
    video_bitrate: Annotated[
        Kbps | None,
        Field(
            ge=MIN_VIDEO_KBPS,
            le=MAX_VIDEO_KBPS,
            description=f"kbit/s, {MIN_VIDEO_KBPS}..{MAX_VIDEO_KBPS}; left out: an "
            "audio-only rendition",
        ),
        BeforeValidator(present),
    ] = None
    codec: Annotated[Codec, Field(description="video codec: h264 or hevc")] = Codec.H264
    audio_bitrate: Annotated[
        Kbps | None,
        Field(
            ge=MIN_AUDIO_KBPS,
            le=MAX_AUDIO_KBPS,
            description=f"AAC kbit/s, {MIN_AUDIO_KBPS}..{MAX_AUDIO_KBPS}; null: no audio",
        ),
        BeforeValidator(_whole),
    ] = 128

    @model_validator(mode="after")
    def _something(self) -> Rendition:
        if self.video_bitrate is None and self.height is not None:
            raise PydanticCustomError(
                "rendition", "video_bitrate: required with a height (without both: audio only)"
            )
        if self.video_bitrate is None and self.audio_bitrate is None:
            raise PydanticCustomError(
                "rendition", "video_bitrate, audio_bitrate: a rendition needs one of them"
            )
        return self


class OutputSpec(BaseModel):
    """One container and its renditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    container: Annotated[Container, Field(description="mp4, hls or dash")]
    renditions: Annotated[
        list[Rendition],
        Field(min_length=1, max_length=MAX_RENDITIONS, description="what to encode"),
    ]
    segment_seconds: Annotated[
        float,
        Field(
            ge=MIN_SEGMENT_SECONDS,
            le=MAX_SEGMENT_SECONDS,
            description="hls, dash: segment length in seconds; a keyframe starts every "
            "segment, at the same times in every rendition",
        ),
    ] = 6.0
    taller_than_input: Annotated[
        Taller,
        Field(description="a rendition taller than the input: refuse (422), skip or upscale"),
    ] = Taller.REFUSE


MIN_THUMBNAIL_EVERY, MAX_THUMBNAIL_EVERY = 1.0, 60.0


class ThumbnailSpec(BaseModel):
    """A poster and sprite sheets of a frame every ``every`` seconds, with a WebVTT index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Annotated[
        float,
        Field(
            ge=MIN_THUMBNAIL_EVERY,
            le=MAX_THUMBNAIL_EVERY,
            description="seconds between two thumbnails of the sprite sheets, 1..60",
        ),
    ]


def check_all(outputs: list[OutputSpec] | None) -> list[OutputSpec] | None:
    """One output per container, at most ``MAX_RENDITIONS`` renditions in all."""
    if outputs is None:
        return None
    containers = [o.container for o in outputs]
    if len(set(containers)) < len(containers):
        raise PydanticCustomError("outputs", "at most one output per container (mp4, hls, dash)")
    total = sum(len(o.renditions) for o in outputs)
    if total > MAX_RENDITIONS:
        raise PydanticCustomError(
            "outputs",
            "at most {most} renditions in all, not {total}",
            {"most": MAX_RENDITIONS, "total": total},
        )
    return outputs


class OutputsError(ValueError):
    """A request's outputs do not fit its input; ``field`` is the one to name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def fit(
    outputs: list[OutputSpec], input_height: float | None, preset: str | None = None
) -> list[OutputSpec]:
    """``outputs`` for an input ``input_height`` pixels tall: renditions taller than it are
    refused, left out or kept as each output says. An unknown height changes nothing."""
    if not input_height:
        return outputs
    fitted = []
    for i, out in enumerate(outputs):
        kept = []
        for j, rendition in enumerate(out.renditions):
            small = rendition.height is None or rendition.height <= input_height
            if small or out.taller_than_input is Taller.UPSCALE:
                kept.append(rendition)
            elif out.taller_than_input is Taller.REFUSE:
                field = "preset" if preset else f"outputs.{i}.renditions.{j}.height"
                what = f"preset {preset!r}: rendition {j + 1}, " if preset else ""
                raise OutputsError(
                    field,
                    f"{what}{rendition.height}p is taller than the input "
                    f"({int(input_height)}p); set taller_than_input to 'skip' or 'upscale' "
                    "to allow it",
                )
        if not kept:
            field = "preset" if preset else f"outputs.{i}.renditions"
            raise OutputsError(
                field, f"every rendition is taller than the input ({int(input_height)}p)"
            )
        fitted.append(out.model_copy(update={"renditions": kept}))
    return fitted


def dump(outputs: list[OutputSpec]) -> list[dict[str, Any]]:
    """The outputs as stored with the job and sent to the worker (plain JSON data)."""
    return [o.model_dump(mode="json") for o in outputs]


def fitted(
    outputs: list[OutputSpec], input_height: float | None, preset: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """What a job stores of ``outputs`` for its input (``fit``, dumped), and its bitrate: the
    sum of every rendition's (``names.total_kbps``)."""
    stored = dump(fit(outputs, input_height, preset))
    return stored, total_kbps(stored)
