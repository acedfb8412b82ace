"""The calibration file: what ``dacirco calibrate`` measured on one machine, and the fits.

The measuring itself (real ffmpeg, a real worker process) lives in ``dacirco.calibration``,
outside the simulator, which imports no mechanism. This module is the file format and the
arithmetic, both pure:

- ``transcode[codec/preset/threads] = (overhead_s, s_per_mpx)``: the seconds ffmpeg takes on a
  movie are ``overhead_s + s_per_mpx * duration * pixel_rate / 1e6`` (``pixel_rate`` = width x
  height x fps): a straight line fitted by least squares on the clips measured;
- ``boot_s``: a local worker's boot (process start, imports, registration);
- ``noise_cv``: the spread of repeated measures (coefficient of variation), the simulator's
  per-job transcode noise;
- ``transfer_mb_s``, ``transfer_latency_s``: what a signed download or upload costs locally.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1


def key(codec: str, preset: str, threads: int) -> str:
    return f"{codec}/{preset}/{threads}"


@dataclass(frozen=True)
class Line:
    overhead_s: float
    s_per_mpx: float  # seconds of encoding per (second of video x megapixel per second)

    def seconds(self, duration: float, pixel_rate: float) -> float:
        return self.overhead_s + self.s_per_mpx * duration * pixel_rate / 1e6


@dataclass
class Calibration:
    machine: str = ""
    measured_at: str = ""
    boot_s: float | None = None
    transcode: dict[str, Line] = field(default_factory=dict)
    noise_cv: float = 0.05
    transfer_mb_s: float | None = None
    transfer_latency_s: float | None = None
    dispatch_s: float | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)  # the raw measures

    def line(self, codec: str, preset: str, threads: int) -> Line | None:
        return self.transcode.get(key(codec, preset, threads))

    def threads_for(self, codec: str, preset: str) -> list[int]:
        prefix = f"{codec}/{preset}/"
        return sorted(int(k[len(prefix) :]) for k in self.transcode if k.startswith(prefix))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        data["transcode"] = {k: asdict(v) for k, v in self.transcode.items()}
        return data

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if data.get("format") != FORMAT:
            raise ValueError(f"calibration format {data.get('format')!r}, expected {FORMAT}")
        lines = {
            k: Line(float(v["overhead_s"]), float(v["s_per_mpx"]))
            for k, v in data.get("transcode", {}).items()
        }
        opt = {
            n: data.get(n) for n in ("boot_s", "transfer_mb_s", "transfer_latency_s", "dispatch_s")
        }
        return cls(
            machine=str(data.get("machine", "")),
            measured_at=str(data.get("measured_at", "")),
            transcode=lines,
            noise_cv=float(data.get("noise_cv", 0.05)),
            samples=list(data.get("samples", [])),
            **{n: None if v is None else float(v) for n, v in opt.items()},
        )

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a calibration file: {exc}") from None


def fit_line(points: Sequence[tuple[float, float]]) -> Line:
    """Least squares ``seconds = overhead + slope * work`` over (work, seconds) points, work in
    (second x megapixel/s). One point, or all at the same work: the line through the origin.
    A negative intercept (noise) is clamped to 0 and the slope refitted through the origin."""
    if not points:
        raise ValueError("no measure to fit")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if n >= 2 and sxx > 1e-12:
        slope = sum((x - mx) * (y - my) for x, y in points) / sxx
        overhead = my - slope * mx
        if overhead >= 0 and slope > 0:
            return Line(overhead, slope)
    through_origin = sum(x * y for x, y in points) / max(1e-12, sum(x * x for x, _ in points))
    return Line(0.0, max(0.0, through_origin))


def coefficient_of_variation(groups: Sequence[Sequence[float]]) -> float:
    """The pooled spread of repeated measures of the same thing (0 with no repeats)."""
    cvs = []
    for values in groups:
        if len(values) >= 2:
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
            if mean > 0:
                cvs.append(math.sqrt(var) / mean)
    return sum(cvs) / len(cvs) if cvs else 0.0
