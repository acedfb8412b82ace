"""A simulated run's event log, in the real controller's format (SPEC §6, ``controller.events``).

Simulated second ``t`` is written as the ISO time of ``EPOCH + t``. Lines are buffered and
written in time order at the end (a task's steps are known when it is assigned but logged at
their own times). The ``.config.txt`` beside it holds the run's parameters, ``nodes`` among
them, as the real controller's does, so ``process-logs`` and ``analytics.run.from_log`` read a
simulated run unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The format's one definition (code -> description and required fields, and the time format).
# Pure (json, datetime); the import-linter contract ignores this one edge (pyproject.toml).
from dacirco.controller.events import EVENTS, config_path, iso

EPOCH = 1_704_067_200.0  # 2024-01-01T00:00:00Z: simulated time 0
_ENCODER = json.JSONEncoder(default=str)  # json.dumps(..., default=str), made once


class SimEventLog:
    def __init__(self) -> None:
        self._records: list[tuple[float, int, str, dict[str, Any]]] = []

    def emit(self, t: float, code: str, **fields: Any) -> None:
        required = EVENTS[code][1]
        missing = [f for f in required if f not in fields]
        if missing:
            raise ValueError(f"{code} needs {', '.join(missing)}")
        self._records.append((t, len(self._records), code, fields))

    def __len__(self) -> int:
        return len(self._records)

    def lines(self) -> list[str]:
        out = []
        encode = _ENCODER.encode
        times: dict[float, str] = {}  # a time's text, once (a step logs several lines)
        # By time, then in emission order (the records' second item, unique).
        for t, _, code, fields in sorted(self._records):
            at = times.get(t)
            if at is None:
                at = times[t] = iso(EPOCH + t)
            record = {"time": at, "code": code, "description": EVENTS[code][0]}
            out.append(encode({**record, **fields}))
        return out

    def write(self, path: Path, config: dict[str, Any]) -> Path:
        """Write the log and its ``.config.txt``; returns the log's path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in self.lines()), encoding="utf-8")
        config_path(path).write_text(
            json.dumps({**config, "epoch": EPOCH}, indent=2, sort_keys=True, default=str) + "\n"
        )
        return path
