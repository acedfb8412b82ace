"""The worker's ffmpeg command, progress parsing and error messages (no ffmpeg run)."""

from __future__ import annotations

import pytest

from dacirco.worker.ffmpeg import ProgressParser, build_command, error_message


def _cmd(**kwargs: object) -> list[str]:
    args: dict[str, object] = {"bitrate_kbps": 7000, "speed": "ultrafast", "ffmpeg": "ffmpeg"}
    args.update(kwargs)
    return build_command("in.mp4", "out.mp4", **args)  # type: ignore[arg-type]


def _value(cmd: list[str], option: str) -> str:
    return cmd[cmd.index(option) + 1]


def test_bitrate_is_passed_in_kbit_per_second() -> None:
    cmd = _cmd(bitrate_kbps=7000)
    assert _value(cmd, "-b:v") == "7000k"
    assert _value(cmd, "-maxrate") == "7000k"
    assert _value(cmd, "-bufsize") == "3500k"  # half a second at the target rate
    assert "7000000" not in " ".join(cmd)


def test_shape_of_the_command() -> None:
    cmd = _cmd()
    assert cmd[0] == "ffmpeg"
    assert cmd[1:4] == ["-hide_banner", "-nostdin", "-y"]
    assert _value(cmd, "-i") == "in.mp4"
    assert cmd[-1] == "out.mp4"
    assert cmd[cmd.index("-map") : cmd.index("-map") + 4] == ["-map", "0:v:0", "-map", "0:a?"]
    assert _value(cmd, "-movflags") == "+faststart"
    assert _value(cmd, "-progress") == "pipe:1"
    assert "-nostats" in cmd
    assert cmd.index("-i") < cmd.index("-c:v") < cmd.index("out.mp4")


@pytest.mark.parametrize("speed", ["ultrafast", "fast"])
def test_preset(speed: str) -> None:
    assert _value(_cmd(speed=speed), "-preset") == speed


def test_h264_by_default() -> None:
    cmd = _cmd()
    assert _value(cmd, "-c:v") == "libx264"
    assert "-tag:v" not in cmd


def test_hevc_uses_x265_with_the_hvc1_tag() -> None:
    cmd = _cmd(codec="hevc")
    assert _value(cmd, "-c:v") == "libx265"
    assert _value(cmd, "-tag:v") == "hvc1"


def test_threads_only_when_asked() -> None:
    assert "-threads" not in _cmd(threads=0)
    assert _value(_cmd(threads=2), "-threads") == "2"


def test_aac_audio_is_copied() -> None:
    assert _value(_cmd(audio_codec="aac"), "-c:a") == "copy"


@pytest.mark.parametrize("audio", ["mp3", "opus", "pcm_s16le", None])
def test_other_audio_is_reencoded_to_aac(audio: str | None) -> None:
    cmd = _cmd(audio_codec=audio)
    assert _value(cmd, "-c:a") == "aac"
    assert _value(cmd, "-b:a") == "128k"


BLOCK = """frame=50
fps=0.00
bitrate=1442.0kbits/s
total_size=360509
out_time_us={us}
out_time_ms={us}
out_time=00:00:01.000000
speed=8.14x
progress={state}
"""


def _feed(parser: ProgressParser, text: str) -> list[float]:
    return [f for line in text.splitlines() if (f := parser.feed(line + "\n")) is not None]


def test_progress_is_reported_once_per_block_as_a_fraction() -> None:
    parser = ProgressParser(duration=4.0)
    assert _feed(parser, BLOCK.format(us=1_000_000, state="continue")) == [0.25]
    assert _feed(parser, BLOCK.format(us=3_000_000, state="continue")) == [0.75]
    assert not parser.ended
    assert _feed(parser, BLOCK.format(us=4_000_000, state="end")) == [1.0]
    assert parser.ended


def test_progress_clamps_and_tolerates_na() -> None:
    parser = ProgressParser(duration=2.0)
    assert _feed(parser, "out_time_us=N/A\nout_time_ms=N/A\nprogress=continue") == []
    assert _feed(parser, "out_time_us=-5\nprogress=continue") == [0.0]
    assert _feed(parser, "out_time_us=2500000\nprogress=continue") == [1.0]


def test_progress_falls_back_to_out_time() -> None:
    parser = ProgressParser(duration=100.0)
    assert _feed(parser, "out_time=00:00:25.000000\nprogress=continue") == [0.25]


def test_progress_without_duration_reports_only_the_end() -> None:
    parser = ProgressParser(duration=None)
    assert _feed(parser, BLOCK.format(us=1_000_000, state="continue")) == []
    assert _feed(parser, BLOCK.format(us=2_000_000, state="end")) == [1.0]


def test_error_message_keeps_ffmpegs_errors() -> None:
    tail = [
        "[in#0 @ 0x5583499] [warning] Format mov detected only with low score of 1",
        "[in#0 @ 0x5583499] [error] moov atom not found",
        "[in#0 @ 0x558349961d40] [error] Error opening input: Invalid data found",
        "[error] Error opening input file input.mp4.",
        "[fatal] Error opening input files: Invalid data found when processing input",
    ]
    message = error_message(183, tail[1], tail)
    assert message == (
        "ffmpeg exited with code 183: [in#0] moov atom not found; "
        "Error opening input file input.mp4.; "
        "Error opening input files: Invalid data found when processing input"
    )


def test_error_message_without_tagged_lines_uses_the_last_lines() -> None:
    message = error_message(1, None, ["", "something odd", "it broke"])
    assert message == "ffmpeg exited with code 1: something odd; it broke"
    assert error_message(1, None, []) == "ffmpeg exited with code 1: no error message"
