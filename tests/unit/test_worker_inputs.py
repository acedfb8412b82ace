"""The worker's ffmpeg reads an input only as a single-file movie: a playlist or a list that
names other files (stored in the catalog anyway) fails without any of them being opened.
Real ffmpeg and PyAV on real files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dacirco.containers import FORMAT_WHITELIST
from dacirco.worker.chunks import merge_command
from dacirco.worker.ffmpeg import TranscodeError, build_command, probe_input, run_ffmpeg
from tests.conftest import Bait, hls_playlist, set_bait


def _transcode(work: Path, source: str, **options: str) -> None:
    cmd = build_command(source, "output.mp4", bitrate_kbps=500, speed="ultrafast", **options)
    asyncio.run(run_ffmpeg(cmd, None, 60, cwd=work))


def _hostile(kind: str, work: Path, bait: Bait) -> tuple[str, Bait]:
    """An input of the worker's work folder that names the bait, and the bait: an HLS
    playlist (naming it by its absolute path) or an ffconcat list named like a movie (naming
    it beside the list, as the concat demuxer's safe mode allows)."""
    if kind == "hls":
        hls_playlist(work / "input.m3u8", bait.path)
        return "input.m3u8", bait
    beside = set_bait(bait.path.rename(work / "secret.ts"))
    (work / "input.mp4").write_text(f"ffconcat version 1.0\nfile '{beside.path.name}'\n")
    return "input.mp4", beside


@pytest.mark.parametrize(("kind", "format_name"), [("hls", "hls"), ("concat", "concat")])
def test_the_probe_refuses_a_playlist_naming_its_format(
    tmp_path: Path, bait: Bait, kind: str, format_name: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source, bait = _hostile(kind, work, bait)
    with pytest.raises(TranscodeError, match=f"container format '{format_name}' refused"):
        probe_input(work / source)
    assert not bait.was_read()


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_ffmpeg_fails_on_a_playlist_without_reading_what_it_names(
    tmp_path: Path, bait: Bait, kind: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source, bait = _hostile(kind, work, bait)
    with pytest.raises(TranscodeError, match="not on whitelist"):
        _transcode(work, source)
    assert not bait.was_read()
    assert not (work / "output.mp4").exists()


def test_a_single_file_movie_is_read_by_its_own_demuxer(tmp_path: Path, bait: Bait) -> None:
    info = probe_input(bait.path)
    assert info.format_name == "mpegts" and info.duration
    cmd = build_command("secret.ts", "out.mp4", bitrate_kbps=500, speed="ultrafast",
                        input_format=info.format_name)  # fmt: skip
    head = cmd[: cmd.index("-i")]
    assert head[head.index("-f") + 1] == "mpegts"
    assert head[head.index("-format_whitelist") + 1] == FORMAT_WHITELIST
    assert head[head.index("-protocol_whitelist") + 1] == "file"
    _transcode(bait.path.parent, bait.path.name, input_format=info.format_name)
    assert (bait.path.parent / "output.mp4").stat().st_size > 0


def test_the_merge_reads_its_list_and_the_chunks_as_mp4_only() -> None:
    cmd = merge_command("list.txt", "in.mp4", "out.mp4", input_format="mov,mp4", ffmpeg="ffmpeg")
    first, second = cmd.index("list.txt"), cmd.index("in.mp4")
    concat_options = cmd[:first]
    assert concat_options[concat_options.index("-format_whitelist") + 1] == "concat,mov"
    assert concat_options[concat_options.index("-protocol_whitelist") + 1] == "file"
    input_options = cmd[first + 1 : second]
    assert input_options[input_options.index("-f") + 1] == "mov"
    assert input_options[input_options.index("-format_whitelist") + 1] == FORMAT_WHITELIST
