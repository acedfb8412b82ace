"""A scenario: a list of timed transcoding requests, and its CSV file format (SPEC §7).

One request a line, no header: ``delay,movie,bitrate,speed`` where ``delay`` is the number of
seconds since the previous request (0 for the first), ``bitrate`` is in kbit/s (500..8000) and
``speed`` is ``ultrafast`` or ``fast``. Lines starting with ``#`` are comments; blank lines are
ignored. Example: ``5.07,bbb_9.mp4,4649,ultrafast``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dacirco.domain import MAX_BITRATE_KBPS, MIN_BITRATE_KBPS

SPEEDS = ("ultrafast", "fast")


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Request:
    """One request of a scenario."""

    delay: float  # seconds since the previous request; 0 for the first
    movie: str
    bitrate: int  # kbit/s
    speed: str


def parse_line(text: str) -> Request:
    """One data line as a :class:`Request`; ``ValueError`` with the reason if malformed."""
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 4:
        raise ValueError(f"expected 4 columns (delay,movie,bitrate,speed), got {len(fields)}")
    delay_s, movie, bitrate_s, speed = fields
    try:
        delay = float(delay_s)
    except ValueError:
        raise ValueError(f"delay {delay_s!r} is not a number") from None
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"delay {delay_s!r} must be a finite number >= 0")
    if not movie:
        raise ValueError("movie is empty")
    try:
        bitrate = int(bitrate_s)
    except ValueError:
        raise ValueError(f"bitrate {bitrate_s!r} is not an integer") from None
    if not MIN_BITRATE_KBPS <= bitrate <= MAX_BITRATE_KBPS:
        raise ValueError(
            f"bitrate {bitrate} is outside {MIN_BITRATE_KBPS}..{MAX_BITRATE_KBPS} kbit/s"
        )
    if speed not in SPEEDS:
        raise ValueError(f"speed {speed!r} must be one of {', '.join(SPEEDS)}")
    return Request(delay=delay, movie=movie, bitrate=bitrate, speed=speed)


def parse_scenario(text: str, name: str = "<scenario>") -> list[Request]:
    """Every request of a scenario's text; ``ScenarioError`` naming ``name:line`` if malformed."""
    requests = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            requests.append(parse_line(stripped))
        except ValueError as exc:
            raise ScenarioError(f"{name}:{number}: {exc}") from None
    return requests


def read_scenario(path: str | Path) -> list[Request]:
    """Read a scenario file; ``ScenarioError`` naming ``file:line`` for any malformed line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, str(path))


def format_delay(delay: float) -> str:
    """The shortest text that reads back as exactly ``delay`` (``repr`` of a float)."""
    text = repr(float(delay))
    return text[:-2] if text.endswith(".0") else text


def format_request(request: Request) -> str:
    return f"{format_delay(request.delay)},{request.movie},{request.bitrate},{request.speed}"


def write_scenario(
    path: str | Path, requests: Iterable[Request], header_comment: str | None = None
) -> None:
    """Write ``requests`` in the scenario format; ``header_comment`` lines become ``#`` lines.

    Delays are written with ``repr``, so reading the file back gives equal requests.
    """
    lines = []
    if header_comment:
        lines += [f"# {c}".rstrip() for c in header_comment.splitlines()]
    lines += [format_request(r) for r in requests]
    Path(path).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
