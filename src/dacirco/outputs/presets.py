"""The presets a job may name (``"preset": "<name>"``): ready-made outputs.

The ladders follow the spirit of Apple's HLS authoring guidelines (16:9, H.264, AAC, 6 s
segments, 1080p down to 360p) and are fitted to their input: renditions taller than the
movie are left out, never upscaled. Operators add presets of their own (``PresetBody``,
stored by the service: ``controller/presets.py``); the shipped ones cannot be replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from dacirco.outputs.spec import (
    MAX_RENDITIONS,
    Container,
    OutputSpec,
    Rendition,
    Taller,
    ThumbnailSpec,
    check_all,
    dump,
    present,
    without_null,
)

# (height, video kbit/s): Apple's H.264 ladder, one rendition per height.
LADDER = ((1080, 6000), (720, 3000), (540, 2000), (432, 1100), (360, 730))
AUDIO_KBPS = 128
SEGMENT_SECONDS = 6.0


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    outputs: tuple[OutputSpec, ...]
    quality: bool = False  # its jobs measure VMAF, PSNR and SSIM (unless they say otherwise)
    thumbnails: ThumbnailSpec | None = None  # its jobs make thumbnails (unless they say so)


def _ladder(container: Container) -> OutputSpec:
    return OutputSpec(
        container=container,
        renditions=[
            Rendition(height=h, video_bitrate=kbps, audio_bitrate=AUDIO_KBPS) for h, kbps in LADDER
        ],
        segment_seconds=SEGMENT_SECONDS,
        taller_than_input=Taller.SKIP,
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "hls-ladder",
            "HLS, fMP4 segments of 6 s: 1080p 6000k, 720p 3000k, 540p 2000k, 432p 1100k, "
            "360p 730k, AAC 128k in each; renditions taller than the input are left out",
            (_ladder(Container.HLS),),
        ),
        Preset(
            "dash-ladder",
            "the same ladder as hls-ladder, in DASH (one MPD, fMP4 segments of 6 s)",
            (_ladder(Container.DASH),),
        ),
        Preset(
            "mp4-720p",
            "one MP4 file, 720p H.264 at 3000k with AAC 128k (a taller input is scaled "
            "down; a shorter one is refused, never upscaled)",
            (
                OutputSpec(
                    container=Container.MP4,
                    renditions=[Rendition(height=720, video_bitrate=3000, audio_bitrate=128)],
                ),
            ),
        ),
        Preset(
            "audio",
            "the sound alone: AAC 128k in an MP4 audio file (.m4a)",
            (OutputSpec(container=Container.MP4, renditions=[Rendition(audio_bitrate=128)]),),
        ),
    )
}


def known() -> str:
    return ", ".join(PRESETS)


# An operator's preset: a name of its own and what a job's body would say of its outputs.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)


class PresetBody(BaseModel):
    """``PUT /presets/{name}``: an operator's preset, checked as a job's body is."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=without_null("thumbnails"))

    description: Annotated[str, Field(max_length=300, description="what it makes")] = ""
    outputs: Annotated[
        list[OutputSpec],
        Field(
            min_length=1,
            max_length=len(Container),
            description="containers (mp4, hls, dash) and their renditions, as a job's "
            f"`outputs`: at most {MAX_RENDITIONS} renditions in all",
        ),
        AfterValidator(check_all),
    ]
    quality: Annotated[
        bool, Field(strict=True, description="its jobs measure VMAF, PSNR and SSIM")
    ] = False
    thumbnails: Annotated[
        ThumbnailSpec | None,
        Field(description="its jobs make a poster and sprite sheets"),
        BeforeValidator(present),
    ] = None


class PresetPublic(BaseModel):
    """A preset as ``GET /presets/{name}`` shows it (its outputs as a job stores them)."""

    name: str
    shipped: bool = Field(description="shipped with the service (cannot be replaced)")
    description: str = ""
    outputs: list[dict[str, Any]]
    quality: bool = False
    thumbnails: dict[str, Any] | None = Field(None, description="none: no thumbnails")


class PresetsPublic(BaseModel):
    """``GET /presets``: every preset, the shipped ones first."""

    items: list[PresetPublic]


def public(preset: Preset) -> PresetPublic:
    return PresetPublic(
        name=preset.name,
        shipped=preset.name in PRESETS,
        description=preset.description,
        outputs=dump(list(preset.outputs)),
        quality=preset.quality,
        thumbnails=preset.thumbnails.model_dump() if preset.thumbnails else None,
    )


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an operator's preset, or None."""
    if not NAME_RE.fullmatch(name):
        return (
            f"{name[:70]!r} is not a preset name: 1 to 64 lower-case letters, digits, '-' "
            "or '_', starting with a letter or a digit"
        )
    if name in PRESETS:
        return f"{name!r} is a shipped preset: it cannot be replaced or removed"
    return None


def from_body(name: str, body: PresetBody) -> Preset:
    return Preset(name, body.description, tuple(body.outputs), body.quality, body.thumbnails)
