"""Chunked encoding without ffmpeg: the chunk plan, and the shape of the chunk and merge
commands (the seamless result itself is tests/integration/test_chunks_seamless.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dacirco.worker.chunks import (
    CONTINUED_VBV_INIT,
    Chunk,
    chunk_command,
    concat_list,
    merge_command,
    plan_chunks,
    timescale,
)
from dacirco.worker.ffmpeg import build_command


def _value(cmd: list[str], option: str) -> str:
    return cmd[cmd.index(option) + 1]


def _check_cover(chunks: list[Chunk], frames: int, k: int) -> None:
    assert len(chunks) == k
    assert [c.index for c in chunks] == list(range(k))
    assert chunks[0].start_frame == 0
    assert chunks[-1].end_frame == frames
    for before, after in itertools.pairwise(chunks):
        assert before.end_frame == after.start_frame  # contiguous: no gap, no overlap
    assert all(c.frames >= 1 for c in chunks)
    assert sum(c.frames for c in chunks) == frames


@given(
    frames=st.integers(1, 20_000),
    k=st.integers(1, 64),
    fps=st.sampled_from([24.0, 25.0, 30.0, 30000 / 1001, 60.0]),
    gop=st.none() | st.integers(1, 300),
)
def test_every_frame_is_in_exactly_one_chunk(
    frames: int, k: int, fps: float, gop: int | None
) -> None:
    if k > frames:
        with pytest.raises(ValueError, match="cannot cut"):
            plan_chunks(frames / fps, fps, frames, k, keyframe_interval=gop)
        return
    chunks = plan_chunks(frames / fps, fps, frames, k, keyframe_interval=gop)
    _check_cover(chunks, frames, k)
    if gop is None:  # as equal as whole frames allow
        assert max(c.frames for c in chunks) - min(c.frames for c in chunks) <= 1


def test_times_are_those_of_whole_frames() -> None:
    chunks = plan_chunks(7.0, 30.0, 210, 4)
    assert [(c.start_frame, c.end_frame) for c in chunks] == [
        (0, 53),
        (53, 105),
        (105, 158),
        (158, 210),
    ]
    assert chunks[1].start_time == pytest.approx(53 / 30)
    assert chunks[1].duration == pytest.approx(52 / 30)
    assert chunks[1].frames == 52
    # The cut is half a frame early: a timestamp rounded either way keeps frame 53 only.
    assert chunks[1].seek_time == pytest.approx(52.5 / 30)
    assert chunks[0].seek_time == 0


def test_frames_default_to_duration_times_fps() -> None:
    chunks = plan_chunks(6.0, 25.0, None, 3)
    assert [c.frames for c in chunks] == [50, 50, 50]


def test_boundaries_move_to_nearby_keyframes() -> None:
    # 600 frames, a keyframe every 50: ideal cuts 200 and 400 are keyframes already; for
    # K = 4, 150/300/450 are too; for K = 7 the cuts 86, 171... move to 100, 150...
    chunks = plan_chunks(24.0, 25.0, 600, 7, keyframe_interval=50)
    _check_cover(chunks, 600, 7)
    assert all(c.start_frame % 50 == 0 for c in chunks)
    # A keyframe too far from the ideal cut (more than a quarter of a chunk) is ignored.
    far = plan_chunks(10.0, 25.0, 250, 2, keyframe_interval=250)
    assert [c.frames for c in far] == [125, 125]


def test_alignment_never_empties_a_chunk() -> None:
    chunks = plan_chunks(2.0, 25.0, 50, 5, keyframe_interval=12)
    _check_cover(chunks, 50, 5)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((4.0, 25.0, 100, 0), "whole number >= 1"),
        ((4.0, 25.0, 100, -2), "whole number >= 1"),
        ((4.0, 25.0, 100, 2.5), "whole number >= 1"),
        ((4.0, 25.0, 100, True), "whole number >= 1"),
        ((4.0, 25.0, 3, 4), "cannot cut 3 frames into 4 chunks"),
        ((4.0, 0.0, 100, 2), "fps must be positive"),
        ((0.0, 25.0, None, 2), "duration must be positive"),
        ((4.0, 25.0, 0, 1), "no frame"),
    ],
)
def test_bad_plans_are_refused_clearly(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plan_chunks(*args)


def test_bad_keyframe_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="keyframe_interval"):
        plan_chunks(4.0, 25.0, 100, 2, keyframe_interval=0)


@pytest.mark.parametrize(
    ("fps", "scale"), [(25.0, 90000), (30.0, 90000), (30000 / 1001, 90000), (24000 / 1001, 360000)]
)
def test_timescale_gives_whole_ticks_per_frame(fps: float, scale: int) -> None:
    assert timescale(fps) == scale
    assert (scale / fps) == pytest.approx(round(scale / fps), abs=1e-6)


def _chunk_cmd(chunk: Chunk, **kwargs: object) -> list[str]:
    args: dict[str, object] = {"bitrate_kbps": 2000, "speed": "fast", "ffmpeg": "ffmpeg"}
    args.update(kwargs)
    return chunk_command("in.mp4", "c1.mp4", chunk, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_chunk_has_the_whole_file_rate_control(codec: str) -> None:
    whole = build_command(
        "in.mp4", "out.mp4", bitrate_kbps=2000, speed="fast", codec=codec, threads=2
    )
    chunk = _chunk_cmd(plan_chunks(4.0, 25.0, 100, 2)[1], codec=codec, threads=2)
    for option in ("-c:v", "-b:v", "-maxrate", "-bufsize", "-preset", "-threads"):
        assert _value(chunk, option) == _value(whole, option)
    params = _value(chunk, "-x265-params" if codec == "hevc" else "-x264-params")
    assert "open-gop=0" in params
    assert f"vbv-init={CONTINUED_VBV_INIT}" in params
    if codec == "hevc":
        assert params.startswith("log-level=error:")  # the whole file's own x265 params kept
        assert _value(chunk, "-tag:v") == "hvc1"


def test_chunk_selects_exactly_its_frames() -> None:
    first, second = plan_chunks(4.0, 25.0, 100, 2)
    cmd = _chunk_cmd(second)
    assert _value(cmd, "-ss") == "1.980000"  # frame 50 is at 2.00 s: half a frame early
    assert cmd.index("-ss") < cmd.index("-i")  # input seek: decodes from the keyframe before
    assert _value(cmd, "-frames:v") == "50"
    assert _value(cmd, "-vf") == "setpts=PTS-STARTPTS"
    assert "-an" in cmd
    assert _value(cmd, "-map") == "0:v:0"
    assert _value(cmd, "-f") == "mp4"
    assert _value(cmd, "-video_track_timescale") == _value(cmd, "-movie_timescale") == "90000"
    assert _value(cmd, "-progress") == "pipe:1"
    assert cmd[-1] == "c1.mp4"
    head = _chunk_cmd(first)
    assert "-ss" not in head
    assert "vbv-init" not in _value(head, "-x264-params")  # the first chunk starts as a whole


def test_concat_list_quotes_names() -> None:
    text = concat_list(["c0.mp4", "it's.mp4"])
    assert text == "file 'c0.mp4'\nfile 'it'\\''s.mp4'\n"
    with pytest.raises(ValueError, match="no chunk"):
        concat_list([])


@pytest.mark.parametrize(("audio", "expected"), [("aac", ["copy"]), ("mp3", ["aac", "-b:a"])])
def test_merge_copies_video_and_takes_audio_once(audio: str, expected: list[str]) -> None:
    cmd = merge_command("list.txt", "in.mp4", "out.mp4", audio_codec=audio, ffmpeg="ffmpeg")
    assert cmd[cmd.index("-f") : cmd.index("-f") + 5] == ["-f", "concat", "-safe", "0", "-i"]
    assert _value(cmd, "-i") == "list.txt"
    assert "-xerror" in cmd  # a missing chunk fails the merge instead of shortening it
    assert _value(cmd[cmd.index("list.txt") :], "-i") == "in.mp4"  # the second input
    maps = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-map"]
    assert maps == ["0:v:0", "1:a?"]  # video of the chunks, audio of the original input
    assert _value(cmd, "-c:v") == "copy"
    at = cmd.index("-c:a") + 1
    assert cmd[at : at + len(expected)] == expected
    assert _value(cmd, "-movflags") == "+faststart"
    assert cmd[-1] == "out.mp4"
    assert cmd[-4] == "-progress"
