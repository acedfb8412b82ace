"""The presets a job may name (``"preset": "<name>"``): ready-made outputs.

The ladders follow the spirit of Apple's HLS authoring guidelines (16:9, H.264, AAC, 6 s
segments, 1080p down to 360p) and are fitted to their input: renditions taller than the
movie are left out, never upscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

from dacirco.outputs.spec import Container, OutputSpec, Rendition, Taller, ThumbnailSpec

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
