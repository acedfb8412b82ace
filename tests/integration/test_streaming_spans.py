"""A long streaming job split in time, on the real ffmpeg: a generated movie (24 s, 240p,
30 fps, H.264 + AAC) encoded by the worker's own command in 3 spans of 8 s, HLS and DASH,
two renditions each; the spans' playlists joined by the packaging's functions, then played
by ffmpeg as one movie. The spans' quality, each measured against its span of the input and
pooled, is the quality of the joined renditions measured against the whole input.

Each joined rendition must have the input's frame count, timestamps one frame apart (no gap
and no duplicate at a join), a keyframe at every segment boundary and nowhere else, the
requested bitrate within 15 %, and the input's sound: what one worker encoding it whole
gives, from three workers each decoding only its third of the input.
"""

from __future__ import annotations

import itertools
import math
import subprocess
from pathlib import Path

import av
import pytest

from dacirco.catalog.generate import MovieSpec, generate_movie, movie_spec
from dacirco.core.quality import pooled_figures
from dacirco.ffmpeg_bin import ffmpeg_exe
from dacirco.outputs.spans import spans
from dacirco.outputs.spec import OutputSpec, dump
from dacirco.protocol import QualityReport
from dacirco.worker.ffmpeg import run_ffmpeg
from dacirco.worker.joining import join_manifests, join_masters, join_media, media_seconds
from dacirco.worker.ladder import build_streaming_command, drop_init_segments
from dacirco.worker.pieces import Piece
from dacirco.worker.quality import measure_outputs

pytestmark = pytest.mark.slow

SPEC = movie_spec(6, max_height=240)  # bbb_6: 24 s, 30 fps
SEGMENT = 4.0
K = 3
RENDITIONS = [(240, 500), (144, 200)]


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spans-movie") / SPEC.name
    generate_movie(SPEC, path)
    return path


def output(container: str) -> OutputSpec:
    return OutputSpec.model_validate(
        {
            "container": container,
            "segment_seconds": SEGMENT,
            "renditions": [
                {"height": h, "video_bitrate": kbps, "audio_bitrate": 64} for h, kbps in RENDITIONS
            ],
        }
    )


async def encode_in_spans(
    movie: Path, out: OutputSpec, folder: Path, quality: list[QualityReport] | None = None
) -> list[Path]:
    """Each span encoded in a folder of its own, as a worker would (its quality measured
    against its span of the input when ``quality`` is a list, which gets each span's); every
    span but the first drops its init segments (the first's are the same), then all go in
    ``folder``."""
    cut = spans(dump([out]), SPEC.duration, K)
    assert [(s.first, s.last) for s in cut] == [(0, 2), (2, 4), (4, 6)]
    made = []
    for n, span in enumerate(cut, 1):
        where = folder / f"span{n}"
        where.mkdir(parents=True)
        piece = Piece(out, tuple(enumerate(out.renditions)), n, span)
        cmd = build_streaming_command(movie, piece, speed="ultrafast", fps=SPEC.fps)
        assert ["-ss", f"{span.start:.6f}"] == cmd[cmd.index("-ss") : cmd.index("-ss") + 2]
        await run_ffmpeg(cmd, SEGMENT * 2, None, None, cwd=where)
        if quality is not None:
            quality.append(
                await measure_outputs(
                    [piece], movie, where, has_audio=True, fps=SPEC.fps, span=span
                )
            )
        if n > 1:
            drop_init_segments(where)
        made.append(where)
    for where in made:
        for f in where.iterdir():
            f.rename(folder / f.name)
    return made


def play(playlist: Path, dest: Path) -> Path:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
           "-i", str(playlist), "-map", "0", "-c", "copy", "-f", "matroska", str(dest)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return dest


def check_joined(
    played: Path, spec: MovieSpec, renditions: list[tuple[int, int]], segment: float, tracks: int
) -> None:
    """Every rendition of ``played`` whole: ``spec``'s frames one frame apart (no gap and no
    duplicate at a join), a keyframe at every segment boundary and nowhere else, its bitrate
    within 15 %; ``tracks`` audio tracks as long as the input (within 0.1 s)."""
    frame = 1 / spec.fps
    with av.open(str(played)) as container:
        packets: dict[int, list[av.Packet]] = {}
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                packets.setdefault(packet.stream.index, []).append(packet)
        videos = [s for s in container.streams if s.type == "video"]
        audios = [s for s in container.streams if s.type == "audio"]
        assert [s.codec_context.height for s in videos] == [h for h, _ in renditions]
        assert len(audios) == tracks
        boundaries = [segment * i for i in range(math.ceil(spec.duration / segment - 1e-6))]
        for stream, (height, kbps) in zip(videos, renditions, strict=True):
            got = packets[stream.index]
            tb = float(stream.time_base)
            times = sorted(p.pts * tb for p in got)
            assert len(times) == spec.frames, (height, len(times))
            steps = [b - a for a, b in itertools.pairwise(times)]
            assert max(steps) < 1.5 * frame and min(steps) > 0.5 * frame, (height, steps)
            keys = sorted(round(p.pts * tb - times[0], 2) for p in got if p.is_keyframe)
            assert keys == boundaries, (height, keys)
            bits = sum(p.size for p in got) * 8 / (len(times) * frame)
            assert abs(bits / (kbps * 1000) - 1) <= 0.15, (height, bits)
        for stream in audios:
            got = packets[stream.index]
            tb = float(stream.time_base)
            start = min(p.pts for p in got) * tb
            end = max(p.pts + (p.duration or 0) for p in got) * tb
            assert abs((end - start) - spec.duration) <= 0.1, end - start


def check(played: Path, audio_tracks: int) -> None:
    check_joined(played, SPEC, RENDITIONS, SEGMENT, audio_tracks)


async def test_hls_spans_join_into_one_seamless_ladder(movie: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    await encode_in_spans(movie, output("hls"), folder)
    assert sorted(p.name for p in folder.glob("hls-0-*.m4s")) == [
        f"hls-0-{i:05d}.m4s" for i in range(6)
    ]  # numbered as in the whole rendition
    masters = [(folder / f"master-p{n}.m3u8").read_text() for n in range(1, K + 1)]
    weights = {}
    for i in range(len(RENDITIONS)):
        media = [(folder / f"hls-{i}-s{n}.m3u8").read_text() for n in range(1, K + 1)]
        weights[i] = [media_seconds(t) for t in media]
        (folder / f"hls-{i}.m3u8").write_text(join_media(media))
    (folder / "master.m3u8").write_text(join_masters(masters, weights))
    assert weights[0] == pytest.approx([8.0, 8.0, 8.0], abs=0.05)
    assert [x for x in (folder / "master.m3u8").read_text().splitlines() if "m3u8" in x] == [
        "hls-0.m3u8",
        "hls-1.m3u8",
    ]
    check(play(folder / "master.m3u8", tmp_path / "hls.mkv"), audio_tracks=len(RENDITIONS))


async def test_dash_spans_join_into_one_seamless_ladder(movie: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    await encode_in_spans(movie, output("dash"), folder)
    texts = [(folder / f"manifest-p{n}.mpd").read_text() for n in range(1, K + 1)]
    joined = join_manifests(texts)
    assert 'mediaPresentationDuration="PT0H0M24.000S"' in joined
    assert "dash-p2-0-init.m4s" not in joined and joined.count("dash-p1-0-init.m4s") == 1
    (folder / "manifest.mpd").write_text(joined)
    check(play(folder / "manifest.mpd", tmp_path / "dash.mkv"), audio_tracks=1)


async def test_the_spans_quality_pooled_is_the_whole_renditions(
    movie: Path, tmp_path: Path
) -> None:
    folder, each = tmp_path / "out", []
    await encode_in_spans(movie, output("hls"), folder, quality=each)
    every = each[0].renditions[0].every
    assert every == 15  # 30 fps: 2 frames scored a second
    for report in each:  # 8 s of 30 fps each: 240 frames, one in 15 scored
        assert [r.frames for r in report.renditions] == [16, 16]
        assert [r.height for r in report.renditions] == [h for h, _ in RENDITIONS]
    whole = await measure_outputs([output("hls")], movie, folder, has_audio=True, fps=SPEC.fps)
    for i, measured_whole in enumerate(whole.renditions):
        pooled = pooled_figures([r.renditions[i].model_dump() for r in each])
        assert pooled["frames"] == measured_whole.frames == 48
        # A span's first frame has no predecessor for VMAF's motion feature: a little apart.
        assert abs(pooled["vmaf"] - measured_whole.vmaf) <= 1.5, (pooled, measured_whole)
        assert abs(pooled["psnr"] - measured_whole.psnr) <= 0.2, (pooled, measured_whole)
        assert abs(pooled["ssim"] - measured_whole.ssim) <= 0.002, (pooled, measured_whole)
    # Against another stretch of the input, a span scores lower: each span was compared with
    # its own stretch.
    out = output("hls")
    cut = spans(dump([out]), SPEC.duration, K)
    where = tmp_path / "again"
    where.mkdir()
    piece = Piece(out, tuple(enumerate(out.renditions)), 2, cut[1])
    cmd = build_streaming_command(movie, piece, speed="ultrafast", fps=SPEC.fps)
    await run_ffmpeg(cmd, SEGMENT * 2, None, None, cwd=where)
    own = await measure_outputs([piece], movie, where, has_audio=True, fps=SPEC.fps, span=cut[1])
    wrong = await measure_outputs([piece], movie, where, has_audio=True, fps=SPEC.fps, span=cut[0])
    for right, other in zip(own.renditions, wrong.renditions, strict=True):
        assert right.vmaf > other.vmaf + 20 and right.psnr > other.psnr + 5, (right, other)
