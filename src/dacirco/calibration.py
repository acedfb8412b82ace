"""``dacirco calibrate``: measure this machine for the simulator (``--runtime local``).

- Transcodes: the worker's own ffmpeg command (``worker.ffmpeg.build_command``, with
  ``-threads`` = the flavor's cores and the movie's audio codec, so that AAC is copied as a
  worker copies it) on movies of the catalog, for each codec, preset and thread count asked,
  ``repeats`` times each; the best-of-repeats seconds of each movie are fitted to
  ``overhead + s_per_mpx x duration x pixel rate`` (``sim.calibrate.fit_line``), and the
  spread of the repeats gives the simulator's noise.
- The local boot: a real worker started as the local runtime starts it (``python -m
  dacirco.worker`` with ``runtimes.base.worker_command``'s arguments and environment), timed
  from its start to the moment its registration reaches a stand-in controller on loopback
  (which then refuses it, so that it exits); the median of ``repeats``. Timing only the
  interpreter's start and imports missed a fifth of it (0.22 s against 0.28 s on the
  development machine): the worker's command line, logging, HTTP client and the call itself.
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

import asyncio
import math
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated

import psutil
import typer

from dacirco.catalog.probe import MovieInfo, probe
from dacirco.cli_options import comma_list
from dacirco.config import default_data_dir, storage_root
from dacirco.domain import FLAVORS
from dacirco.runtimes.base import WorkerSpec, worker_command, worker_env
from dacirco.sim.calibrate import Calibration, fit_samples, key
from dacirco.storage.base import INPUT_PREFIX
from dacirco.worker.chunks import encode_chunk, merge_chunks, plan_chunks
from dacirco.worker.ffmpeg import build_command, warm_up

DEFAULT_OUT = Path("data/calibration.json")


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
    """Median wall and median CPU seconds of a real worker's start, up to its registration."""
    runs = [time_boot() for _ in range(repeats)]
    return Timing(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs))


def measure_boot(repeats: int = 3) -> float:
    return measure_boot_timing(repeats).wall


def time_boot(timeout: float = 60.0) -> Timing:
    """One worker started as the local runtime starts it, timed until its registration
    arrives; its CPU seconds then (psutil). The stand-in controller answers 401, on which a
    worker exits at once."""
    arrived: dict[str, float] = {}

    class Controller(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path == "/worker/register" and "at" not in arrived:
                arrived["at"] = time.perf_counter()
                cpu = psutil.Process(proc.pid).cpu_times()
                arrived["cpu"] = cpu.user + cpu.system
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Controller)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = WorkerSpec(
        "calibration", "calibration", FLAVORS["tiny"], f"http://127.0.0.1:{server.server_port}",
        token=secrets.token_urlsafe(16),
    )  # fmt: skip
    cmd = [sys.executable, "-m", "dacirco.worker", *worker_command(spec), "--give-up-after", "5"]
    try:
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                cmd, env=worker_env(os.environ, spec.token), stdin=subprocess.DEVNULL,
                stdout=err, stderr=err,
            )  # fmt: skip
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if "at" not in arrived:
                err.seek(0)
                raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err.read())
    finally:
        server.shutdown()
        server.server_close()
    return Timing(arrived["at"] - t0, arrived["cpu"])


def measure(
    movies: Sequence[tuple[Path, MovieInfo]],
    *,
    codecs: Sequence[str] = ("h264",),
    presets: Sequence[str] = ("ultrafast", "fast"),
    threads: Sequence[int] = (1, 2),
    repeats: int = 2,
    bitrate_kbps: int = 3000,
    boot_repeats: int = 3,
    chunks: int = 2,
    by_bitrate: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    """Time ffmpeg on ``movies`` (each codec, preset and thread count, ``repeats`` times), a
    worker's boot (median of ``boot_repeats``; 0: none), and, with ``chunks`` >= 2, a split
    in that many chunks and its merge (``measure_split``); with ``by_bitrate``, how the time
    follows the bitrate (``bitrate_exponent``: movies of a few seconds at least, as on 1 s
    clips it swings from 0.3 to 0.7 between runs)."""
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
    cal.bitrate_kbps = bitrate_kbps
    if by_bitrate and bitrate_kbps >= 3:  # x264 at a third and 2.5 times the bitrate, on one thread
        for codec in codecs:
            for preset in presets:
                beta = bitrate_exponent(cal, movies, codec, preset, threads[0])
                if beta is not None:
                    cal.bitrate_exponent[f"{codec}/{preset}"] = beta
                    if on_step is not None:
                        on_step(
                            f"{codec} {preset}: time x (bitrate ratio) ** {beta[0]:.2f} below "
                            f"{bitrate_kbps} kbit/s, ** {beta[1]:.2f} above"
                        )
    if boot_repeats > 0:
        boot = measure_boot_timing(boot_repeats)
        cal.boot_s, cal.boot_cpu_s = boot.wall, boot.cpu
        if on_step is not None:
            on_step(f"local worker boot: {cal.boot_s:.2f} s (CPU {cal.boot_cpu_s:.2f} s)")
    if chunks >= 2 and movies:
        options = {"bitrate_kbps": bitrate_kbps, "codec": codecs[0], "threads": threads[0]}
        splits = [
            measure_split(p, i, chunks, speed=s, **options) for p, i in movies for s in presets
        ]
        cal.chunk_overhead_s = round(statistics.median(o for o, _ in splits), 4)
        cal.merge_s = round(statistics.median(m for _, m in splits), 4)
        if on_step is not None:
            on_step(
                f"split in {chunks}: {cal.chunk_overhead_s:.2f} s more per chunk, merge "
                f"{cal.merge_s:.2f} s"
            )
    return cal


def bitrate_exponent(
    cal: Calibration,
    movies: Sequence[tuple[Path, MovieInfo]],
    codec: str,
    preset: str,
    threads: int,
) -> tuple[float, float] | None:
    """``(beta below, beta above)`` of ``Calibration.bitrate_factor``: each movie encoded again
    at a third and at 2.5 times the calibration's bitrate; beta = log(work at one / work at
    the other) / log(their ratio), the work being the CPU seconds beyond the CPU line's fixed
    overhead (CPU seconds, which other load on the machine hardly moves, since the encodes are
    not measured at the same moment); the medians over the movies (None when no movie gives a
    positive work at all three), clamped to [0, 1]. Two exponents, as the time grows more
    slowly above the bitrate than below it (x264 at "fast" on 360p clips: x 1.2-1.4 from 1,000
    to 3,000 kbit/s, x 1.0-1.25 from 3,000 to 7,500)."""
    line = cal.transcode_cpu.get(key(codec, preset, threads))
    if line is None:
        return None
    base = cal.bitrate_kbps
    low, high = base // 3, base * 5 // 2
    below, above = [], []
    with tempfile.TemporaryDirectory(prefix="dacirco-calibrate-bitrate-") as tmp:
        for path, info in movies:
            at_base = [
                statistics.fmean(s["cpu_seconds"]) - line.overhead_s
                for s in cal.samples
                if (s["movie"], s["codec"], s["preset"], s["threads"])
                == (info.name, codec, preset, threads)
            ]
            work = {}
            for kbps in (low, high):
                cmd = build_command(
                    path, Path(tmp) / "out.mp4", bitrate_kbps=kbps, speed=preset, codec=codec,
                    threads=threads, audio_codec=info.audio_codec,
                )  # fmt: skip
                work[kbps] = run_timed(cmd).cpu - line.overhead_s
            if at_base and min(at_base[0], *work.values()) > 0:
                below.append(math.log(at_base[0] / work[low]) / math.log(base / low))
                above.append(math.log(work[high] / at_base[0]) / math.log(high / base))
    if not below:
        return None
    return clamp(statistics.median(below)), clamp(statistics.median(above))


def clamp(beta: float) -> float:
    return round(min(1.0, max(0.0, beta)), 3)


def measure_split(
    path: Path, info: MovieInfo, k: int, *, bitrate_kbps: int, speed: str, codec: str, threads: int
) -> tuple[float, float]:
    """What splitting ``path`` in ``k`` chunks costs, in wall seconds, with the worker's own
    steps (``worker.chunks.encode_chunk`` and ``merge_chunks``, ffmpeg run and watched as a
    worker runs it): (the chunks one after the other - the whole encode) / k, floored at 0
    (on a tiny clip it is within the noise), and the merge of their outputs (stream copy, the
    input's audio once, the input probed first), measured back to back."""
    warm_up()  # a worker imports its probe while it waits for its first task
    rate = {"bitrate_kbps": bitrate_kbps, "speed": speed, "codec": codec, "threads": threads}
    with tempfile.TemporaryDirectory(prefix="dacirco-calibrate-split-") as tmp:
        folder = Path(tmp)
        whole_cmd = build_command(path, folder / "whole.mp4", audio_codec=info.audio_codec, **rate)
        whole = run_timed(whole_cmd).wall
        names = []
        t0 = time.perf_counter()
        for chunk in plan_chunks(info.duration, info.fps, info.frames, k):
            names.append(folder / f"chunk-{chunk.index}.mp4")
            asyncio.run(encode_chunk(path, names[-1], chunk, **rate))
        alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        asyncio.run(merge_chunks(names, path, folder / "merged.mp4"))
        merge = time.perf_counter() - t0
    return max(0.0, (alone - whole) / k), merge


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
    chunks: Annotated[
        int,
        typer.Option(
            min=0, help="chunks of the split timed on each movie and preset (0 or 1: no split)"
        ),
    ] = 2,
) -> None:
    """Measure ffmpeg, a local worker's boot and what splitting a job costs on this machine,
    for `dacirco simulate --runtime local --calibration FILE`."""
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
        chunks=chunks,
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
