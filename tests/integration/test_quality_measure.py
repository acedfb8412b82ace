"""The worker's quality measurement on real ffmpeg: a rendition encoded at a much lower
bitrate scores lower VMAF, PSNR and SSIM than a good one of the same input, in a DASH output
(segments read back in order, representations found by stream index) and in a single MP4."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from dacirco.outputs.spec import Container, OutputSpec, Rendition
from dacirco.protocol import QualityReport
from dacirco.worker.ffmpeg import build_command, probe_input, run_ffmpeg
from dacirco.worker.ladder import encode_outputs
from dacirco.worker.quality import measure_file, measure_outputs, subsample

pytestmark = pytest.mark.slow

MOVIE = "input-videos/bbb_5.mp4"  # 720p, 25 fps, 1.8 s in the test catalog
DEADLINE = 120.0


async def _nothing(_: float) -> None:
    return None


def copy(catalog: Path, tmp: Path) -> Path:
    """The movie in a folder of the test's own, as a worker has it (measuring writes beside it)."""
    source = tmp / "input.mp4"
    shutil.copyfile(catalog / "videos" / MOVIE, source)
    return source


def encoded_and_measured(out: OutputSpec, source: Path, folder: Path) -> QualityReport:
    """``out`` encoded from ``source`` into ``folder`` as a worker does, then measured."""
    info = probe_input(source)

    async def run() -> QualityReport:
        await encode_outputs(
            [out], source, folder, info, speed="ultrafast", threads=2, fps=25.0,
            duration=info.duration, deadline=DEADLINE, on_progress=_nothing,
        )  # fmt: skip
        return await measure_outputs(
            [out], source, folder, has_audio=True, fps=25.0, threads=2, deadline=DEADLINE
        )

    return asyncio.run(run())


def test_a_bad_dash_rendition_scores_lower_than_a_good_one(catalog_dir: Path, tmp_path: Path):
    source = copy(catalog_dir, tmp_path)
    out = OutputSpec(
        container=Container.DASH,
        renditions=[
            Rendition(height=360, video_bitrate=1500, audio_bitrate=96),
            Rendition(audio_bitrate=64),  # an audio representation between the two videos
            Rendition(height=360, video_bitrate=100, audio_bitrate=96),
        ],
        segment_seconds=1.0,
    )
    folder = tmp_path / "outputs"

    report = encoded_and_measured(out, source, folder)
    good, bad = report.renditions
    assert (good.output, good.rendition, good.height) == ("dash", 1, 360)
    assert (bad.rendition, bad.video_bitrate) == (3, 100)
    assert good.vmaf > bad.vmaf + 10, (good, bad)
    assert good.psnr > bad.psnr and good.ssim > bad.ssim, (good, bad)
    assert 30 < good.psnr < 100 and 0.9 < good.ssim <= 1
    # Every 12th of the 45 frames is scored (2 a second at 25 fps).
    assert good.every == subsample(25.0) == 12 and good.frames == bad.frames == 4
    assert report.seconds > 0
    assert not list(folder.glob("*.txt")) and not list(folder.glob("*.json"))  # nothing added


def test_a_classic_mp4_is_measured_at_the_input_size(catalog_dir: Path, tmp_path: Path):
    source = copy(catalog_dir, tmp_path)
    info = probe_input(source)

    async def run(kbps: int):  # type: ignore[no-untyped-def]
        target = tmp_path / f"out-{kbps}.mp4"
        cmd = build_command(
            source, target, bitrate_kbps=kbps, speed="ultrafast", threads=2,
            audio_codec=info.audio_codec, input_format=info.format_name,
        )  # fmt: skip
        await run_ffmpeg(cmd, info.duration, DEADLINE)
        return await measure_file(
            source, target, bitrate_kbps=kbps, fps=None, threads=2, deadline=DEADLINE
        )

    good, bad = (asyncio.run(run(kbps)).renditions[0] for kbps in (6000, 500))
    assert good.height is None and good.video_bitrate == 6000
    assert good.vmaf > bad.vmaf and good.psnr > bad.psnr and good.ssim > bad.ssim, (good, bad)


def test_a_one_rendition_hls_output_has_its_init_file_and_is_measured(
    catalog_dir: Path, tmp_path: Path
):
    source = copy(catalog_dir, tmp_path)
    out = OutputSpec(
        container=Container.HLS,
        renditions=[Rendition(height=360, video_bitrate=800)],
        segment_seconds=1.0,
    )
    folder = tmp_path / "outputs"

    (only,) = encoded_and_measured(out, source, folder).renditions
    names = sorted(p.name for p in folder.iterdir())
    assert "hls-0-init.mp4" in names and not [n for n in names if "%" in n], names
    assert 'URI="hls-0-init.mp4"' in (folder / "hls-0.m3u8").read_text()
    assert only.height == 360 and only.vmaf > 50 and only.frames >= 1
