"""Durations as operators write them: ``30d``, ``12h``, ``90m``, ``3600s`` (``1.5h`` too), or
``off`` for none."""

from __future__ import annotations

import math
import re

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
OFF = frozenset({"off", "none", "never"})
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd])")


def parse_duration(text: str | None) -> float | None:
    """Seconds, or None for ``off`` (and for no text at all); a ``ValueError`` saying what
    is expected otherwise."""
    if text is None:
        return None
    clean = text.strip().lower()
    if clean in OFF:
        return None
    found = _DURATION.fullmatch(clean)
    if found is None:
        raise ValueError(
            f"{text!r} is not a duration: give a number and a unit, s, m, h or d "
            "(30d, 12h, 90m, 3600s), or off"
        )
    seconds = float(found.group(1)) * UNITS[found.group(2)]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{text!r}: a duration must be more than 0 (off: none)")
    return seconds


def show_duration(seconds: float | None) -> str:
    """The largest whole unit: 2592000 -> ``30d``, 5400 -> ``90m``; None -> ``off``."""
    if seconds is None:
        return "off"
    for unit in ("d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
