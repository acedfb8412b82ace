"""The calibration file: what ``dacirco calibrate`` measured on one machine, and the fits.

The measuring itself (real ffmpeg, a real worker process) lives in ``dacirco.calibration``,
outside the simulator, which imports no mechanism. This module is the file format and the
arithmetic, both pure:

- ``transcode[codec/preset/threads] = (overhead_s, s_per_mpx)``: the seconds ffmpeg takes on a
  movie are ``overhead_s + s_per_mpx * duration * pixel_rate / 1e6`` (``pixel_rate`` = width x
  height x fps): a straight line fitted by least squares on the clips measured;
- ``boot_s``: a local worker's boot (process start, imports, registration);
- ``transcode_cpu`` and ``boot_cpu_s``: the same measures in CPU seconds (user + system of
  the process) instead of wall seconds. Wall time depends on what else the machine runs at
  that moment; CPU time hardly does (the work is the same, only its wait for a core grows).
  ``at_speed`` turns them back into wall times for a given ratio of wall to CPU seconds,
  e.g. the one measured during a real run;
- ``noise_cv``: the spread of repeated measures (coefficient of variation), the simulator's
  per-job transcode noise;
- ``samples``: the raw measures (each movie's wall and CPU seconds), from which ``fit_samples``
  gives the lines and the noise, and ``combine`` pools several measurings of one machine
  (e.g. one before and one after a real run, so that they bracket its moment);
- ``transfer_mb_s``, ``transfer_latency_s``: what a signed download or upload costs locally;
- ``bitrate_kbps``, ``bitrate_exponent[codec/preset]``: the lines are measured at
  ``bitrate_kbps``; x264 spends less time at a lower bitrate (on a 360p clip at "fast": 0.76 s
  at 500 kbit/s, 0.98 at 1000, 1.29 at 3000, 1.6 at 8000), so an encode at bitrate ``b`` takes
  the line's work times ``(b / bitrate_kbps) ** beta``, ``beta`` measured by encoding each
  movie at a third and at 2.5 times the bitrate too: one beta below, one above;
- ``chunk_overhead_s``, ``merge_s``: what splitting costs (``sim.split``): a chunk's seconds
  beyond its share of the whole encode, and the merge of the chunks (wall seconds).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
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
    transcode_cpu: dict[str, Line] = field(default_factory=dict)
    boot_cpu_s: float | None = None
    transfer_mb_s: float | None = None
    transfer_latency_s: float | None = None
    dispatch_s: float | None = None
    chunk_overhead_s: float | None = None
    merge_s: float | None = None
    bitrate_kbps: int = 3000  # the bitrate of the transcode lines
    # codec/preset -> (beta below bitrate_kbps, beta above it)
    bitrate_exponent: dict[str, tuple[float, float]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)  # the raw measures

    def line(self, codec: str, preset: str, threads: int) -> Line | None:
        return self.transcode.get(key(codec, preset, threads))

    def bitrate_factor(self, codec: str, preset: str, bitrate_kbps: int | None) -> float:
        """How much longer than at the lines' bitrate an encode at ``bitrate_kbps`` takes:
        ``(bitrate_kbps / bitrate_kbps of the lines) ** beta``, beta measured per codec and
        preset, one below the lines' bitrate and one above (1 when it was not, or for no
        bitrate)."""
        betas = self.bitrate_exponent.get(f"{codec}/{preset}")
        if betas is None or not bitrate_kbps or bitrate_kbps <= 0:
            return 1.0
        ratio = bitrate_kbps / self.bitrate_kbps
        return float(ratio ** betas[0 if ratio < 1 else 1])

    def threads_for(self, codec: str, preset: str) -> list[int]:
        prefix = f"{codec}/{preset}/"
        return sorted(int(k[len(prefix) :]) for k in self.transcode if k.startswith(prefix))

    def at_speed(self, wall_per_cpu: float, boot_wall_per_cpu: float | None = None) -> Calibration:
        """This calibration with wall times made of its CPU times: transcode lines scaled by
        ``wall_per_cpu``, the wall seconds a CPU second of ffmpeg takes on the machine to
        simulate (a little under 1 on an idle machine, as ffmpeg reads and muxes beside the
        encoding thread; more when other work shares the cores), and the boot by
        ``boot_wall_per_cpu`` (default: the same). Keys or a boot without a CPU measure keep
        their wall figures."""
        boot_ratio = wall_per_cpu if boot_wall_per_cpu is None else boot_wall_per_cpu
        if wall_per_cpu <= 0 or boot_ratio <= 0:
            raise ValueError(
                f"wall seconds per CPU second must be > 0: {wall_per_cpu}, {boot_ratio}"
            )
        lines = {
            k: Line(v.overhead_s * wall_per_cpu, v.s_per_mpx * wall_per_cpu)
            for k, v in self.transcode_cpu.items()
        }
        boot = self.boot_s if self.boot_cpu_s is None else self.boot_cpu_s * boot_ratio
        return replace(self, transcode={**self.transcode, **lines}, boot_s=boot)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        data["transcode"] = {k: asdict(v) for k, v in self.transcode.items()}
        data["transcode_cpu"] = {k: asdict(v) for k, v in self.transcode_cpu.items()}
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

        def lines(name: str) -> dict[str, Line]:
            return {
                k: Line(float(v["overhead_s"]), float(v["s_per_mpx"]))
                for k, v in data.get(name, {}).items()
            }

        optional = (
            "boot_s", "boot_cpu_s", "transfer_mb_s", "transfer_latency_s", "dispatch_s",
            "chunk_overhead_s", "merge_s",
        )  # fmt: skip
        opt = {n: data.get(n) for n in optional}
        return cls(
            machine=str(data.get("machine", "")),
            measured_at=str(data.get("measured_at", "")),
            transcode=lines("transcode"),
            transcode_cpu=lines("transcode_cpu"),
            noise_cv=float(data.get("noise_cv", 0.05)),
            bitrate_kbps=int(data.get("bitrate_kbps", 3000)),
            bitrate_exponent={
                k: (float(v[0]), float(v[1])) for k, v in data.get("bitrate_exponent", {}).items()
            },
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


def fit_samples(
    samples: Sequence[dict[str, Any]],
) -> tuple[dict[str, Line], dict[str, Line], float]:
    """Wall lines, CPU lines and noise from raw measures: each movie's runs (for one codec,
    preset and thread count) pooled; a wall line through the best run of each movie (the
    machine's other load only adds), a CPU line through the mean of each movie's CPU seconds;
    the noise, the spread of each movie's wall runs."""
    pooled: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for s in samples:
        k = (str(s["codec"]), str(s["preset"]), int(s["threads"]), str(s["movie"]))
        into = pooled.setdefault(k, {**s, "seconds": [], "cpu_seconds": []})
        into["seconds"] += [float(v) for v in s.get("seconds", [])]
        into["cpu_seconds"] += [float(v) for v in s.get("cpu_seconds", [])]
    points: dict[str, list[tuple[float, float]]] = {}
    cpu_points: dict[str, list[tuple[float, float]]] = {}
    for (codec, preset, threads, _), s in pooled.items():
        work = float(s["duration"]) * float(s["width"]) * float(s["height"]) * float(s["fps"])
        work /= 1e6
        k = key(codec, preset, threads)
        if s["seconds"]:
            points.setdefault(k, []).append((work, min(s["seconds"])))
        if s["cpu_seconds"]:
            cpu_points.setdefault(k, []).append((work, statistics.fmean(s["cpu_seconds"])))
    noise = coefficient_of_variation([s["seconds"] for s in pooled.values()])
    return (
        {k: fit_line(v) for k, v in points.items()},
        {k: fit_line(v) for k, v in cpu_points.items()},
        round(noise, 4),
    )


def combine(parts: Sequence[Calibration]) -> Calibration:
    """Several measurings of one machine as one: their samples pooled and fitted again
    (``fit_samples``), their boots and split costs averaged; the rest from the first."""
    if not parts:
        raise ValueError("no calibration to combine")
    samples = [s for p in parts for s in p.samples]
    wall, cpu, noise = fit_samples(samples)

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.fmean(known) if known else None

    return replace(
        parts[0],
        measured_at=" / ".join(p.measured_at for p in parts if p.measured_at),
        transcode=wall or dict(parts[0].transcode),
        transcode_cpu=cpu or dict(parts[0].transcode_cpu),
        noise_cv=noise,
        boot_s=mean([p.boot_s for p in parts]),
        boot_cpu_s=mean([p.boot_cpu_s for p in parts]),
        chunk_overhead_s=mean([p.chunk_overhead_s for p in parts]),
        merge_s=mean([p.merge_s for p in parts]),
        samples=samples,
    )
