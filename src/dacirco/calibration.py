"""``dacirco calibrate``: measure this machine for the simulator (``--runtime local``).

- Transcodes: the worker's own ffmpeg command (``worker.ffmpeg.build_command``, with
  ``-threads`` = the flavor's cores and the movie's audio codec, so that AAC is copied as a
  worker copies it) on movies of the catalog, for each codec, preset and thread count asked,
  ``repeats`` times each; the best-of-repeats seconds of each movie are fitted to
  ``overhead + s_per_mpx x duration x pixel rate`` (``sim.calibrate.fit_line``), and the
  spread of the repeats gives the simulator's noise.
- The local boot: the wall time of starting a worker's interpreter and importing its code
  (``python -c 'import dacirco.worker.cli, dacirco.worker.agent'``), the median of
  ``repeats``; the registration itself (one HTTP call on loopback) is a few milliseconds more.
- Every measure is taken twice over: wall seconds, and CPU seconds (user + system of the
  process, from ``wait4``). The wall lines and boot are what the simulator reads by default;
  the CPU ones (``transcode_cpu``, ``boot_cpu_s``, fitted the same way on the mean of the
  repeats) move much less when other work loads the machine (within about 10 % where wall
  seconds grew 1.5 to 3 times), and ``Calibration.at_speed`` turns them into wall times for
  the load of another moment.

This lives outside ``dacirco.sim``: the simulator imports no mechanism (no subprocess, no
ffmpeg); it only reads the JSON file written here (format: ``dacirco.sim.calibrate``).
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from dacirco.catalog.probe import MovieInfo, probe
from dacirco.cli_options import comma_list
from dacirco.config import default_data_dir, storage_root
from dacirco.sim.calibrate import Calibration, fit_samples
from dacirco.storage.base import INPUT_PREFIX
from dacirco.worker.ffmpeg import build_command

DEFAULT_OUT = Path("data/calibration.json")
BOOT_IMPORTS = "import dacirco.worker.cli, dacirco.worker.agent"


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds from start to exit
    cpu: float  # user + system seconds of the process (and of the children it waited for)


def run_timed(cmd: Sequence[str]) -> Timing:
    """Run ``cmd`` to its end; its wall and CPU seconds. Raises ``CalledProcessError`` (with
    its stderr) when it fails."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise subprocess.CalledProcessError(proc.returncode, list(cmd), stderr=err.read())
    return Timing(wall, usage.ru_utime + usage.ru_stime)


def time_command(cmd: Sequence[str]) -> float:
    return run_timed(cmd).wall


def measure_boot_timing(repeats: int = 3) -> Timing:
    """Median wall and median CPU seconds of a worker's interpreter start and imports."""
    runs = [run_timed([sys.executable, "-c", BOOT_IMPORTS]) for _ in range(repeats)]
    return Timing(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs))


def measure_boot(repeats: int = 3) -> float:
    return measure_boot_timing(repeats).wall


def measure(
    movies: Sequence[tuple[Path, MovieInfo]],
    *,
    codecs: Sequence[str] = ("h264",),
    presets: Sequence[str] = ("ultrafast", "fast"),
    threads: Sequence[int] = (1, 2),
    repeats: int = 2,
    bitrate_kbps: int = 3000,
    boot_repeats: int = 3,
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    cal = Calibration(
        machine=f"{socket.gethostname()} ({platform.processor() or platform.machine()})"
    )
    cal.measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="dacirco-calibrate-") as tmp:
        out = Path(tmp) / "out.mp4"
        for codec in codecs:
            for preset in presets:
                for n in threads:
                    for path, info in movies:
                        cmd = build_command(
                            path,
                            out,
                            bitrate_kbps=bitrate_kbps,
                            speed=preset,
                            codec=codec,
                            threads=n,
                            audio_codec=info.audio_codec,  # copied, as the worker does
                        )
                        timings = [run_timed(cmd) for _ in range(repeats)]
                        runs = [t.wall for t in timings]
                        cpu = [t.cpu for t in timings]
                        cal.samples.append(
                            {
                                "movie": info.name,
                                "codec": codec,
                                "preset": preset,
                                "threads": n,
                                "duration": info.duration,
                                "width": info.width,
                                "height": info.height,
                                "fps": info.fps,
                                "seconds": runs,
                                "cpu_seconds": cpu,
                            }
                        )
                        if on_step is not None:
                            on_step(
                                f"{codec} {preset} -threads {n} {info.name}: {min(runs):.2f} s"
                                f" (CPU {statistics.fmean(cpu):.2f} s)"
                            )
    cal.transcode, cal.transcode_cpu, cal.noise_cv = fit_samples(cal.samples)
    if boot_repeats > 0:
        boot = measure_boot_timing(boot_repeats)
        cal.boot_s, cal.boot_cpu_s = boot.wall, boot.cpu
        if on_step is not None:
            on_step(f"local worker boot: {cal.boot_s:.2f} s (CPU {cal.boot_cpu_s:.2f} s)")
    return cal


def catalog_movies(
    data_dir: Path, names: Sequence[str] | None = None
) -> list[tuple[Path, MovieInfo]]:
    folder = storage_root(data_dir) / INPUT_PREFIX.strip("/")
    paths = sorted(folder.glob("*.mp4")) if not names else [folder / n for n in names]
    return [(p, probe(p, p.name)) for p in paths]


def calibrate(
    data_dir: Annotated[
        Path,
        typer.Option(
            default_factory=default_data_dir,
            show_default=False,
            help="data dir whose local catalog is measured (default ./data)",
        ),
    ],
    out: Annotated[Path, typer.Option(help="the calibration file to write")] = DEFAULT_OUT,
    movies: Annotated[
        str, typer.Option(help="comma-separated movies (default: the 4 shortest)")
    ] = "",
    codecs: Annotated[str, typer.Option(help="comma-separated: h264, hevc")] = "h264",
    presets: Annotated[
        str, typer.Option(help="comma-separated: ultrafast, fast")
    ] = "ultrafast,fast",
    threads: Annotated[
        str, typer.Option(help="comma-separated thread counts (flavor cores)")
    ] = "1,2",
    repeats: Annotated[int, typer.Option(min=1, help="runs of each measure")] = 2,
) -> None:
    """Measure ffmpeg and a local worker's boot on this machine, for `dacirco simulate
    --runtime local --calibration FILE`."""
    try:
        found = catalog_movies(data_dir, comma_list(movies, "--movies", required=False) or None)
    except (OSError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    if not found:
        typer.secho(
            f"error: no movie in {data_dir}: run `dacirco catalog seed` first", err=True, fg="red"
        )
        raise typer.Exit(2)
    if not movies:
        found = sorted(found, key=lambda m: (m[1].duration, m[1].name))[:4]
    try:
        thread_counts = [int(t) for t in comma_list(threads, "--threads")]
    except ValueError:
        raise typer.BadParameter(
            f"{threads!r}: integers expected", param_hint="--threads"
        ) from None
    cal = measure(
        found,
        codecs=comma_list(codecs, "--codecs"),
        presets=comma_list(presets, "--presets"),
        threads=thread_counts,
        repeats=repeats,
        on_step=typer.echo,
    )
    path = cal.save(out)
    for k, line in sorted(cal.transcode.items()):
        text = f"{k}: {line.overhead_s:.3f} s + {line.s_per_mpx * 1000:.3f} ms per s·Mpx/s"
        cpu = cal.transcode_cpu.get(k)
        if cpu is not None:
            text += f" (CPU {cpu.overhead_s:.3f} s + {cpu.s_per_mpx * 1000:.3f} ms)"
        typer.echo(text)
    typer.echo(
        f"noise (cv of repeats): {cal.noise_cv:.3f}; boot {cal.boot_s:.2f} s; written to {path}"
    )
