"""ffmpeg exits 0 on a truncated movie: a transcode that stopped far short of the input's
duration, with decoding errors, is a failure naming ffmpeg's reason."""

from __future__ import annotations

from dacirco.worker.ffmpeg import ProgressParser, incomplete_message

ERROR = "[h264 @ 0x1] [error] Invalid NAL unit size (219317 > 154220)."
TAIL = [ERROR, "[vist#0:0/h264 @ 0x2] [error] Decoding error: Invalid data found"]


def _parser(duration: float | None, out_time: float) -> ProgressParser:
    parser = ProgressParser(duration)
    parser.feed(f"out_time_us={int(out_time * 1_000_000)}")
    parser.feed("progress=end")
    return parser


def test_short_output_with_errors_is_a_failure_naming_ffmpegs_reason():
    message = incomplete_message(_parser(1.8, 0.9), ERROR, TAIL)
    assert message is not None
    assert message.startswith("ffmpeg decoded only 50% of the input (0.9 s of 1.8 s)")
    assert "Invalid NAL unit size" in message and "Invalid data found" in message


def test_complete_or_error_free_or_unknown_duration_is_fine():
    assert incomplete_message(_parser(1.8, 1.75), ERROR, TAIL) is None  # 97%: rounding
    assert incomplete_message(_parser(1.8, 0.9), None, []) is None  # no error: trust it
    assert incomplete_message(_parser(None, 0.9), ERROR, TAIL) is None
