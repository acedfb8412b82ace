"""The probe's metadata round trip and refusals, and the default catalog's specs (no ffmpeg)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from dacirco.catalog.generate import default_specs, movie_spec
from dacirco.catalog.probe import MovieInfo, NotAVideo, from_metadata, probe, to_metadata

INFO = MovieInfo(
    name="bbb_7.mp4",
    size=38_204_112,
    duration=33.0,
    width=1920,
    height=1080,
    video_codec="h264",
    audio_codec="aac",
    bitrate=9_261_433,
    fps=29.97,
    frames=989,
)


def test_metadata_round_trip() -> None:
    meta = to_metadata(INFO)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["video-codec"] == "h264" and meta["audio-codec"] == "aac"
    assert from_metadata(INFO.name, INFO.size, meta) == INFO


def test_metadata_round_trip_without_audio() -> None:
    silent = replace(INFO, audio_codec=None, duration=1.234567)
    meta = to_metadata(silent)
    assert "audio-codec" not in meta
    assert from_metadata(silent.name, silent.size, meta) == silent


def test_metadata_keys_are_case_insensitive() -> None:
    """S3 servers may hand user metadata back with capitalized keys."""
    meta = {k.title(): v for k, v in to_metadata(INFO).items()}
    assert from_metadata(INFO.name, INFO.size, meta) == INFO


@pytest.mark.parametrize(
    "change",
    [
        {"duration": None},
        {"width": "wide"},
        {"fps": "0"},
        {"duration": "nan"},
        {"height": "-1"},
        {"video-codec": ""},
    ],
)
def test_missing_or_malformed_metadata_gives_none(change: dict[str, str | None]) -> None:
    meta = to_metadata(INFO)
    for key, value in change.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    assert from_metadata(INFO.name, INFO.size, meta) is None


def test_no_metadata_gives_none() -> None:
    assert from_metadata("x.mp4", 10, {}) is None


@pytest.mark.parametrize("lines", [1, 50])
def test_a_text_file_is_not_a_video(tmp_path: Path, lines: int) -> None:
    """ffmpeg reads a long enough .txt as ANSI art 'video': that is refused too."""
    text = tmp_path / "notes.txt"
    text.write_text("this is not a movie\n" * lines)
    with pytest.raises(NotAVideo, match=r"notes\.txt"):
        probe(text)


def test_a_still_image_is_not_a_video(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)  # 16x16 RGB
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * 48 for _ in range(16)))
    image = tmp_path / "poster.png"
    image.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    with pytest.raises(NotAVideo, match=r"poster\.png"):
        probe(image)


def test_an_empty_file_is_not_a_video(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(NotAVideo, match=r"empty\.mp4"):
        probe(empty)


def test_garbage_named_mp4_is_not_a_video(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(NotAVideo, match=r"garbage\.mp4"):
        probe(garbage)


def test_not_a_video_is_a_value_error() -> None:
    assert issubclass(NotAVideo, ValueError)


def test_default_catalog_layout() -> None:
    specs = default_specs()
    assert [s.name for s in specs] == [f"bbb_{i}.mp4" for i in range(10)]
    durations = [s.duration for s in specs]
    assert durations == sorted(durations) and durations[0] == 4 and durations[-1] == 60
    assert {(s.width, s.height) for s in specs} == {(1280, 720), (1920, 1080)}
    assert specs[9].height == 1080  # the most popular movie is the big one
    assert {s.fps for s in specs} == {25, 30}
    assert len({s.visual for s in specs}) >= 4
    assert len({s.seed for s in specs}) == 10
    assert 8000 <= specs[1].video_kbps <= 10000


def test_duration_scale_keeps_whole_frames_and_a_floor() -> None:
    spec = movie_spec(7, duration_scale=0.1)  # 33 s * 0.1 at 30 fps
    assert spec.frames == 99 and spec.duration == pytest.approx(3.3)
    assert movie_spec(0, duration_scale=0.01).duration == 1.0


@pytest.mark.parametrize(("max_height", "size"), [(360, (640, 360)), (201, (356, 200))])
def test_max_height_caps_the_size_at_16_9(max_height: int, size: tuple[int, int]) -> None:
    for spec in default_specs(4, max_height=max_height):
        assert (spec.width, spec.height) == size
        assert spec.width % 2 == 0 and spec.height % 2 == 0
    assert movie_spec(0, max_height=4000).height == 720  # a cap never enlarges


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="duration_scale"):
        movie_spec(0, duration_scale=0)
    with pytest.raises(ValueError, match="count"):
        default_specs(-1)
