"""Chunked encoding is seamless, on the real ffmpeg: a generated catalog movie (10 s, 240p,
30 fps, H.264 + AAC, keyframes every 2 s, so that no cut falls on one) encoded whole and in
K = 2, 3, 4 chunks, at both presets (``fast`` has B-frames, hence MP4 edit lists).

Each chunked output must have the input's frame count, its duration within one frame, video
timestamps one frame apart (no gap, no duplicate), a keyframe at every chunk start, the
input's audio, a video bitrate within 10 % of the request, a PSNR against the input within
1 dB of the whole-file encode's and a VMAF (as the worker measures it: ``worker.quality``)
within 4 points of it. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.ffmpeg_bin import ffmpeg_exe
from dacirco.worker.chunks import encode_chunk, merge_chunks, plan_chunks
from dacirco.worker.ffmpeg import TranscodeError, build_command, probe_input, run_ffmpeg
from dacirco.worker.quality import measure_file

pytestmark = pytest.mark.slow

SPEC = movie_spec(3, duration_scale=1.0, max_height=240)  # bbb_3: 300 frames, 428x240
BITRATE = 1000  # kbit/s: half the source's, a rate the content reaches
KS = (2, 3, 4)
SPEEDS = ("ultrafast", "fast")


@dataclass(frozen=True)
class Measure:
    frames: int
    pts: list[float]  # seconds, in decoding output order
    keyframes: list[int]  # frame numbers of the video keyframes
    video_kbps: float
    audio: tuple[float, float] | None  # (first pts, end) of the audio, seconds
    audio_packets: int
    duration: float  # container


def measure(path: Path) -> Measure:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        pts = [float(frame.pts * video.time_base) for frame in container.decode(video)]
    with av.open(str(path)) as container:
        duration = container.duration / 1_000_000
        video = container.streams.video[0]
        packets = sorted((p for p in container.demux(video) if p.size), key=lambda p: p.pts)
        size = sum(p.size for p in packets)
        keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    first = end = None
    count = 0
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            for packet in container.demux(audio):
                if packet.pts is None:
                    continue
                count += 1
                first = float(packet.pts * audio.time_base) if first is None else first
                end = float((packet.pts + packet.duration) * audio.time_base)
    seconds = len(pts) / SPEC.fps
    return Measure(
        frames=len(pts),
        pts=pts,
        keyframes=keyframes,
        video_kbps=size * 8 / seconds / 1000,
        audio=None if first is None or end is None else (first, end),
        audio_packets=count,
        duration=duration,
    )


def psnr(output: Path, reference: Path) -> float:
    """Average PSNR (all planes) of ``output`` against ``reference``, frame by frame."""
    graph = "[0:v]setpts=PTS-STARTPTS[a];[1:v]setpts=PTS-STARTPTS[b];[a][b]psnr"
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(output), "-i", str(reference)]
    result = subprocess.run(
        [*cmd, "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, check=True
    )
    found = re.search(r"PSNR .* average:(\S+)", result.stderr)
    assert found, result.stderr[-2000:]
    return float(found.group(1))


def vmaf(output: Path, reference: Path, work: Path) -> float:
    """VMAF of ``output`` against ``reference``, as a worker measures a job's quality."""
    report = asyncio.run(
        measure_file(reference, output, bitrate_kbps=BITRATE, fps=SPEC.fps, deadline=120, work=work)
    )
    return report.renditions[0].vmaf


def _span(m: Measure) -> str:
    first, end = m.audio or (float("nan"), float("nan"))
    return f"{first:.4f}..{end:.4f} s ({end - first:.4f} s, {m.audio_packets} packets)"


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chunks") / SPEC.name
    generate_movie(SPEC, path)
    return path


@pytest.fixture(scope="module")
def source(movie: Path) -> Measure:
    measured = measure(movie)
    assert measured.frames == SPEC.frames
    return measured


@dataclass(frozen=True)
class Encoded:
    path: Path
    measure: Measure
    psnr: float
    vmaf: float


@pytest.fixture(scope="module")
def whole(movie: Path) -> dict[str, Encoded]:
    """The whole-file encode, by the worker's own command, per preset."""
    info = probe_input(movie)
    done = {}
    for speed in SPEEDS:
        out = movie.with_name(f"whole-{speed}.mp4")
        cmd = build_command(
            movie, out, bitrate_kbps=BITRATE, speed=speed, threads=1, audio_codec=info.audio_codec
        )
        asyncio.run(run_ffmpeg(cmd, info.duration, 120))
        work = movie.with_name(f"vmaf-{speed}")
        done[speed] = Encoded(out, measure(out), psnr(out, movie), vmaf(out, movie, work))
    return done


async def chunked(movie: Path, k: int, speed: str, work: Path) -> Path:
    """Plan, encode the chunks in parallel (one process each, as on K workers), merge."""
    plan = plan_chunks(SPEC.duration, SPEC.fps, SPEC.frames, k)
    files = [work / f"chunk-{c.index}.mp4" for c in plan]
    progress: list[list[float]] = [[] for _ in plan]

    def recorder(i: int) -> Callable[[float], Awaitable[None]]:
        async def record(fraction: float) -> None:
            progress[i].append(fraction)

        return record

    await asyncio.gather(
        *(
            encode_chunk(
                movie, f, c, bitrate_kbps=BITRATE, speed=speed, threads=1, deadline=120,
                on_progress=recorder(c.index),
            )
            for c, f in zip(plan, files, strict=True)
        )
    )  # fmt: skip
    for fractions in progress:
        assert fractions and fractions[-1] == 1.0
    out = work / "merged.mp4"
    await merge_chunks(files, movie, out, deadline=60)
    assert sorted(p.name for p in work.iterdir()) == sorted([*(f.name for f in files), out.name])
    return out


@pytest.mark.parametrize("speed", SPEEDS)
@pytest.mark.parametrize("k", KS)
def test_chunked_output_is_seamless(
    movie: Path,
    source: Measure,
    whole: dict[str, Encoded],
    k: int,
    speed: str,
    tmp_path: Path,
) -> None:
    out = asyncio.run(chunked(movie, k, speed, tmp_path))
    got = measure(out)
    ref = whole[speed]
    frame = 1 / SPEC.fps
    chunked_psnr = psnr(out, movie)
    chunked_vmaf = vmaf(out, movie, tmp_path / "vmaf")
    error = got.video_kbps / BITRATE - 1
    whole_error = ref.measure.video_kbps / BITRATE - 1
    print(
        f"\n[{speed} K={k}] frames {got.frames}/{source.frames}, "
        f"duration {got.duration:.4f} s (input {source.duration:.4f} s), "
        f"PSNR whole {ref.psnr:.2f} dB chunked {chunked_psnr:.2f} dB "
        f"({chunked_psnr - ref.psnr:+.2f}), VMAF whole {ref.vmaf:.2f} chunked "
        f"{chunked_vmaf:.2f} ({chunked_vmaf - ref.vmaf:+.2f}), "
        f"video bitrate whole {ref.measure.video_kbps:.0f} ({whole_error:+.1%}) "
        f"chunked {got.video_kbps:.0f} kbit/s ({error:+.1%}), "
        f"audio {_span(got)} input {_span(source)}, keyframes {got.keyframes}"
    )
    # Every frame, once.
    assert got.frames == source.frames == ref.measure.frames
    assert abs(got.duration - source.duration) <= frame
    assert got.pts[0] == pytest.approx(0, abs=1e-6)
    assert got.pts[-1] == pytest.approx(source.pts[-1], abs=frame / 2)
    steps = [b - a for a, b in zip(got.pts, got.pts[1:], strict=False)]
    assert min(steps) > 0, "a duplicate or a step back in the video timestamps"
    assert max(steps) <= frame * 1.001, f"a gap in the video timestamps: {max(steps):.6f} s"
    assert min(steps) >= frame * 0.999, f"frames squeezed together: {min(steps):.6f} s"
    # Each chunk starts with a keyframe (a new closed GOP).
    starts = [c.start_frame for c in plan_chunks(SPEC.duration, SPEC.fps, SPEC.frames, k)]
    assert set(starts) <= set(got.keyframes)
    # The audio is the input's, taken once.
    assert got.audio is not None and source.audio is not None
    assert got.audio == pytest.approx(source.audio, abs=1024 / 48000)
    assert got.audio_packets == source.audio_packets
    # Rate and quality as the whole-file encode.
    assert abs(error) <= 0.10
    assert abs(whole_error) <= 0.10
    assert abs(chunked_psnr - ref.psnr) <= 1.0
    # VMAF in the 50-70 range of this starved encode, on 20 frames scored, moves more than
    # PSNR: measured within 3 points (a keyframe at each chunk start).
    assert abs(chunked_vmaf - ref.vmaf) <= 4.0


def test_failed_merge_replaces_nothing(movie: Path, tmp_path: Path) -> None:
    """As the agent runs them: names relative to the task's folder (``cwd``)."""
    plan = plan_chunks(SPEC.duration, SPEC.fps, SPEC.frames, 2)
    asyncio.run(
        encode_chunk(
            movie, "chunk-0.mp4", plan[0], bitrate_kbps=BITRATE, speed="ultrafast", cwd=tmp_path
        )
    )
    out = tmp_path / "merged.mp4"
    out.write_bytes(b"the previous output")
    chunks = ["chunk-0.mp4", "chunk-1.mp4"]  # the second one is missing
    with pytest.raises(TranscodeError, match=r"Impossible to open 'chunk-1\.mp4'"):
        asyncio.run(merge_chunks(chunks, movie, "merged.mp4", cwd=tmp_path))
    assert out.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk-0.mp4", "merged.mp4"]
