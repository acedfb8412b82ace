"""Models of the times the simulator cannot measure: boots, transcodes, transfers.

Every number says where it comes from. Random parts are drawn from the ``random.Random``
passed in (seeded by the caller), never from a global generator.

Boot (``BootModel``), per runtime:

- ``vm`` (OpenStack): SPEC §1, measured on the classic system: median 16.6 s, range
  14.7-27.7 s, and 53 s for the first boot of the image on a node (the image is copied there
  first). Drawn as 14.7 s + a lognormal of median 1.9 s (so the median is 16.6 s) and shape
  0.83 (so the 99th percentile is ≈ 27.7 s), capped at 27.7 s; the first worker placed on a
  node takes 53 s.
- ``pod`` (Kubernetes): SPEC §1: median 1.5 s; only the median is known, a lognormal spread
  of shape 0.15 is assumed.
- ``local`` (a process on this machine): ``boot_s`` of the calibration file (``dacirco
  calibrate`` times a real worker's start), else 1.0 s (measured on the development machine:
  interpreter start + imports + registration), with a 5 % spread.

Transcode (``TranscodeModel``), for a movie of ``duration`` s and pixel rate ``P`` (width x
height x fps) on a worker of ``c`` cores:

- without calibration, the SPEC §1 figures (x265 ultrafast, 1080p assumed at 30 fps): 1.0 x
  duration on 2 vCPUs, 3.9 x for 4K; 0.63 x and 1.8 x on 4 CPUs. Time per second of video is
  ``(P/P1080)^0.98`` (4K = 4 x the pixels for 3.9 x the time) times ``(2/c)^a`` where ``a``
  grows with the frame size: 0.67 at 1080p (1.0 → 0.63) and 1.12 at 4K (3.9 → 1.8),
  interpolated in log of the pixels and kept within [0.2, 1.2]; plus 0.2 s of ffmpeg start
  and probe. Other codecs and presets scale by ``CODEC_PRESET``, measured with the worker's own
  ffmpeg command on this project's catalog (bbb_1, 1080p25, 1 thread): relative to x265
  ultrafast, x264 ultrafast takes 0.30 x, x264 fast 2.0 x, x265 fast 2.1 x.
- with a calibration, its fitted line ``overhead + s_per_mpx x duration x P/1e6`` for the
  codec, preset and thread count (the worker runs ffmpeg with ``-threads`` = the flavor's
  cores); a thread count not measured is scaled from the nearest measured one by ``(k/c)^a``.
- each job's time is multiplied by its own noise factor (lognormal, median 1, shape
  ``noise_cv``: 5 % by default, else the calibration's measured spread).

Transfers (``TransferModel``): input and output go through signed URLs; ``latency + bytes /
bandwidth`` each. ``vm``/``pod``: a 1 Gbit/s data-center network (117 MB/s of payload), 50 ms
per transfer (a signed-URL round trip), 20 ms to dispatch a task (long-poll answer).
``local``: the calibration's figures, else 200 MB/s, 20 ms and 10 ms (loopback). An output
weighs its bitrate x duration plus 128 kbit/s of audio; an input, what the catalog says.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dacirco.sim.calibrate import Calibration

RUNTIMES = ("vm", "pod", "local")
P1080 = 1920 * 1080 * 30  # the pixel rate the SPEC figures refer to
CODEC_PRESET: dict[tuple[str, str], float] = {
    ("hevc", "ultrafast"): 1.0,
    ("hevc", "fast"): 2.1,
    ("h264", "ultrafast"): 0.30,
    ("h264", "fast"): 2.0,
}
AUDIO_KBPS = 128
FFMPEG_START_S = 0.2

VM_BOOT_MIN, VM_BOOT_MEDIAN_EXTRA, VM_BOOT_SHAPE, VM_BOOT_MAX = 14.7, 1.9, 0.83, 27.7
VM_FIRST_BOOT = 53.0
POD_BOOT_MEDIAN, POD_BOOT_SHAPE = 1.5, 0.15
LOCAL_BOOT_DEFAULT, LOCAL_BOOT_SHAPE = 1.0, 0.05


@dataclass(frozen=True)
class Movie:
    name: str
    duration: float  # seconds
    width: int
    height: int
    fps: float
    size_bytes: int

    @property
    def pixel_rate(self) -> float:
        return self.width * self.height * self.fps


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    return runtime


class BootModel:
    def __init__(self, runtime: str, calibration: Calibration | None = None) -> None:
        self.runtime = check_runtime(runtime)
        boot = calibration.boot_s if calibration is not None else None
        self.local_median = boot if boot else LOCAL_BOOT_DEFAULT

    def sample(self, rng: random.Random, first_on_node: bool) -> float:
        if self.runtime == "vm":
            if first_on_node:
                return VM_FIRST_BOOT
            extra = rng.lognormvariate(math.log(VM_BOOT_MEDIAN_EXTRA), VM_BOOT_SHAPE)
            return min(VM_BOOT_MAX, VM_BOOT_MIN + extra)
        if self.runtime == "pod":
            return rng.lognormvariate(math.log(POD_BOOT_MEDIAN), POD_BOOT_SHAPE)
        return rng.lognormvariate(math.log(self.local_median), LOCAL_BOOT_SHAPE)

    @property
    def median(self) -> float:
        return {"vm": VM_BOOT_MIN + VM_BOOT_MEDIAN_EXTRA, "pod": POD_BOOT_MEDIAN}.get(
            self.runtime, self.local_median
        )


def core_exponent(pixel_rate: float) -> float:
    """How well ffmpeg uses more cores: 0.67 at 1080p, 1.12 at 4K (SPEC §1), log-interpolated."""
    x = max(1e-6, pixel_rate / P1080)
    return min(1.2, max(0.2, 0.667 + 0.448 * math.log(x, 4)))


class TranscodeModel:
    """Mean seconds of a transcode (before the job's own noise factor)."""

    def __init__(self, runtime: str, calibration: Calibration | None = None) -> None:
        self.runtime = check_runtime(runtime)
        self.calibration = calibration if runtime == "local" else None
        # Whether a job's bitrate moves its time (else it is left out of the cache's keys).
        self.reads_bitrate = bool(self.calibration and self.calibration.bitrate_exponent)
        self._cache: dict[tuple[Movie, str, str, int, int | None], float] = {}

    def seconds(
        self, movie: Movie, codec: str, preset: str, cores: int, bitrate_kbps: int | None = None
    ) -> float:
        """``bitrate_kbps``: the output's; read only with a calibration that measured how the
        encoding time follows it (None: the calibration's own bitrate)."""
        k = (movie, codec, preset, cores, bitrate_kbps)
        t = self._cache.get(k)
        if t is None:
            t = self._cache[k] = self._seconds(movie, codec, preset, cores, bitrate_kbps)
        return t

    def _seconds(
        self, movie: Movie, codec: str, preset: str, cores: int, bitrate_kbps: int | None
    ) -> float:
        a = core_exponent(movie.pixel_rate)
        cal = self.calibration
        if cal is not None:
            for c, p in (
                (codec, preset),
                ("h264", preset),
                (codec, "ultrafast"),
                ("h264", "ultrafast"),
            ):
                measured = cal.threads_for(c, p)
                if measured:
                    k = min(measured, key=lambda t: (abs(t - cores), t))
                    line = cal.line(c, p, k)
                    assert line is not None
                    ratio = _ratio(codec, preset) / _ratio(c, p)
                    ratio *= cal.bitrate_factor(c, p, bitrate_kbps)
                    work = line.s_per_mpx * movie.duration * movie.pixel_rate / 1e6
                    return line.overhead_s + ratio * work * (k / cores) ** a
        per_second = (movie.pixel_rate / P1080) ** 0.98 * (2 / cores) ** a
        return FFMPEG_START_S + movie.duration * per_second * _ratio(codec, preset)


def _ratio(codec: str, preset: str) -> float:
    try:
        return CODEC_PRESET[(codec, preset)]
    except KeyError:
        raise ValueError(f"no transcode model for codec {codec!r}, preset {preset!r}") from None


@dataclass(frozen=True)
class TransferModel:
    bandwidth_mb_s: float
    latency_s: float
    dispatch_s: float

    @classmethod
    def for_runtime(cls, runtime: str, calibration: Calibration | None = None) -> TransferModel:
        if check_runtime(runtime) != "local":
            return cls(117.0, 0.05, 0.02)
        cal = calibration or Calibration()
        return cls(
            cal.transfer_mb_s or 200.0,
            0.02 if cal.transfer_latency_s is None else cal.transfer_latency_s,
            0.01 if cal.dispatch_s is None else cal.dispatch_s,
        )

    def seconds(self, size_bytes: float) -> float:
        return self.latency_s + size_bytes / (self.bandwidth_mb_s * 1e6)

    @staticmethod
    def output_bytes(duration: float, bitrate_kbps: int) -> float:
        return duration * (bitrate_kbps + AUDIO_KBPS) * 1000 / 8


# Measured by benchmarks/chunked.py (bbb_9, 60 s 1080p, 2 chunks, 3 runs): a chunk's fixed
# cost (start, seek, first frame) 0.14-0.22 s; the merge of its output 0.16-0.17 s.
CHUNK_OVERHEAD_S = 0.2  # per chunk: ffmpeg's start and the seek to the chunk's first frame
MERGE_FIXED_S = 0.17  # the concat demuxer's start, the audio copied once
MERGE_MB_S = 300.0  # stream copy of the joined chunks


@dataclass(frozen=True)
class SplitModel:
    """What splitting a job costs (``sim.split``): the calibration's measures on this
    machine's catalog when it has them, else those of ``benchmarks/chunked.py``."""

    chunk_overhead_s: float = CHUNK_OVERHEAD_S
    merge_fixed_s: float = MERGE_FIXED_S
    merge_mb_s: float = MERGE_MB_S

    @classmethod
    def of(cls, calibration: Calibration | None) -> SplitModel:
        cal = calibration or Calibration()
        return cls(
            CHUNK_OVERHEAD_S if cal.chunk_overhead_s is None else cal.chunk_overhead_s,
            MERGE_FIXED_S if cal.merge_s is None else cal.merge_s,
        )

    def merge_seconds(self, output_bytes: float) -> float:
        return self.merge_fixed_s + output_bytes / (self.merge_mb_s * 1e6)


@dataclass(frozen=True)
class Models:
    """Everything the simulator draws times from, for one runtime."""

    runtime: str
    boot: BootModel
    transcode: TranscodeModel
    transfer: TransferModel
    noise_cv: float
    split: SplitModel = SplitModel()

    @classmethod
    def build(cls, runtime: str, calibration: Calibration | None = None) -> Models:
        noise = calibration.noise_cv if calibration is not None else 0.05
        return cls(
            runtime=runtime,
            boot=BootModel(runtime, calibration),
            transcode=TranscodeModel(runtime, calibration),
            transfer=TransferModel.for_runtime(runtime, calibration),
            noise_cv=noise,
            split=SplitModel.of(calibration),
        )

    def noise(self, rng: random.Random) -> float:
        return rng.lognormvariate(0.0, self.noise_cv) if self.noise_cv > 0 else 1.0

    def noises(self, rng: random.Random, n: int) -> list[float]:
        """``n`` draws of :meth:`noise` in a row: ``lognormvariate`` written out (its
        normal by Kinderman and Monahan's method, as ``random.normalvariate``), the same
        numbers without its calls (tests/unit/test_sim_engine_models.py checks it)."""
        cv = self.noise_cv
        if cv <= 0:
            return [1.0] * n
        uniform, log, exp, magic = rng.random, math.log, math.exp, random.NV_MAGICCONST
        out = []
        for _ in range(n):
            while True:
                u1 = uniform()
                u2 = 1.0 - uniform()
                z = magic * (u1 - 0.5) / u2
                if z * z / 4.0 <= -log(u2):
                    break
            out.append(exp(0.0 + z * cv))
        return out
