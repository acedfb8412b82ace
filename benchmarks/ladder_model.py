"""The seconds of a streaming task against the classic single encode of the same movie: what
the simulator's ladder model (``dacirco.sim.ladder``) is fitted to and checked against.

Generates catalog movies, then runs the worker's own commands on each, at both speeds, with
``-threads`` of a small worker (2): the classic encode (``worker.ffmpeg.build_command``), each
rendition of the fitted HLS ladder alone, the whole HLS and DASH ladders and a pair of
renditions (``worker.ladder.build_streaming_command``), the audio preset, the thumbnails
(``worker.thumbnails``) and, with ``--quality``, the measure of the ladder's quality
(``worker.quality.measure_outputs``). Each command's CPU seconds (user + system of ffmpeg,
from ``getrusage``) and wall seconds are printed, with the ratio to the classic encode and
the model's prediction of it. CPU seconds are the figure to trust on a shared machine: a
wall time moves with the other work on the cores, the CPU seconds much less.

    python benchmarks/ladder_model.py [--movies 3,4] [--speeds ultrafast,fast] [--quality]
                                      [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dacirco.catalog.generate import generate_movie, movie_spec
from dacirco.outputs.parts import units
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import Container, OutputSpec, dump, fit
from dacirco.sim.ladder_time import ratio
from dacirco.worker.ffmpeg import build_command
from dacirco.worker.ladder import build_streaming_command
from dacirco.worker.quality import measure_outputs
from dacirco.worker.thumbnails import build_thumbnails_command

console = Console(width=150)
THREADS = 2  # a small worker's -threads
CLASSIC_KBPS = 4000  # the middle of the classic requests' 500..8000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of the children, wall seconds) of ``run``."""
    cpu, wall = _cpu(), time.perf_counter()
    run()
    return _cpu() - cpu, time.perf_counter() - wall


def _run(cmd: list[str], cwd: Path) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def cases(ladder: OutputSpec) -> dict[str, tuple[OutputSpec, bool]]:
    """name -> (the outputs of one command, thumbnails): the shipped ladders and subsets."""
    found: dict[str, tuple[OutputSpec, bool]] = {}
    for r in ladder.renditions:
        found[f"hls {r.height}p"] = (ladder.model_copy(update={"renditions": [r]}), False)
    rs = ladder.renditions
    if len(rs) > 2:
        pair = [rs[1], rs[-1]]
        found[f"hls {rs[1].height}p+{rs[-1].height}p"] = (
            ladder.model_copy(update={"renditions": pair}),
            False,
        )
    found["hls-ladder"] = (ladder, False)
    found["dash-ladder"] = (ladder.model_copy(update={"container": Container.DASH}), False)
    found["audio"] = (PRESETS["audio"].outputs[0], False)
    return found


def main(
    movies: Annotated[str, typer.Option(help="catalog indexes, comma-separated")] = "3,4",
    speeds: Annotated[
        str, typer.Option(help="x264 presets, ultrafast first (the others are scaled by it)")
    ] = "ultrafast,fast",
    repeats: Annotated[int, typer.Option(min=1, help="runs of each command (best kept)")] = 1,
    quality: Annotated[bool, typer.Option(help="also time the ladder's quality measure")] = False,
    thumbnails_every: Annotated[float, typer.Option(help="thumbnails: seconds apart")] = 5.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="every figure, as JSON")] = None,
) -> None:
    """Time the worker's streaming commands against its classic encode, CPU and wall seconds."""
    workdir = Path(tempfile.mkdtemp(prefix="dacirco-ladder-model-"))
    rows: list[dict[str, Any]] = []
    try:
        for index in [int(i) for i in movies.split(",")]:
            spec = movie_spec(index)
            source = workdir / spec.name
            generate_movie(spec, source)
            ladder = fit(list(PRESETS["hls-ladder"].outputs), spec.height)[0]
            for speed in speeds.split(","):

                def best(name: str, run: Callable[[], object]) -> tuple[float, float]:
                    runs = [timed(run) for _ in range(repeats)]
                    return min(runs)

                out = workdir / "out"
                classic = best(
                    "classic",
                    lambda speed=speed, source=source, out=out: _run(
                        build_command(
                            source,
                            out / "classic.mp4",
                            bitrate_kbps=CLASSIC_KBPS,
                            speed=speed,
                            threads=THREADS,
                            audio_codec="aac",
                        ),
                        out,
                    ),
                )
                shutil.rmtree(out, ignore_errors=True)
                _row(rows, spec, speed, "classic", classic, classic, 1.0)
                if speed == "ultrafast":
                    ultrafast = classic[0]
                over = classic[0] / ultrafast  # this speed's classic over "ultrafast"
                for name, (output, thumbs) in cases(ladder).items():
                    folder = workdir / "out" / name.replace(" ", "_")
                    cmd = build_streaming_command(
                        source, output, speed=speed, threads=THREADS, fps=spec.fps
                    )
                    got = best(name, lambda cmd=cmd, folder=folder: _run(cmd, folder))
                    stored = dump([output])
                    found = units(stored, thumbs, spec.height)
                    model = ratio(found, stored, speed, False, over)
                    _row(rows, spec, speed, name, got, classic, model)
                    if name == "hls-ladder" and quality:
                        measured = timed(
                            lambda output=output, folder=folder, source=source, fps=spec.fps: (
                                asyncio.run(
                                    measure_outputs(
                                        [output],
                                        source,
                                        folder,
                                        has_audio=True,
                                        fps=fps,
                                        threads=THREADS,
                                    )
                                )
                            )
                        )
                        predicted = ratio(found, stored, speed, True, over) - model
                        _row(
                            rows, spec, speed, "quality of hls-ladder", measured, classic, predicted
                        )
                    if name != "hls-ladder":
                        shutil.rmtree(folder, ignore_errors=True)
                folder = workdir / "out" / "thumbnails"
                cmd = build_thumbnails_command(
                    source, every=thumbnails_every, duration=spec.duration
                )
                got = best("thumbnails", lambda cmd=cmd, folder=folder: _run(cmd, folder))
                thumbs_only = units([], True, spec.height)
                model = ratio(thumbs_only, [], speed, False, over)
                _row(rows, spec, speed, "thumbnails", got, classic, model)
                shutil.rmtree(workdir / "out", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = Table(title=f"streaming commands against the classic encode (-threads {THREADS})")
    for column in ("movie", "speed", "command", "CPU s", "wall s", "CPU ratio", "wall ratio",
                   "model", "model error"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("movie", "command") else "right")
    for r in rows:
        table.add_row(
            r["movie"], r["speed"], r["command"], f"{r['cpu']:.2f}", f"{r['wall']:.2f}",
            f"{r['cpu_ratio']:.3f}", f"{r['wall_ratio']:.3f}", f"{r['model']:.3f}",
            f"{r['model'] / r['cpu_ratio'] - 1:+.1%}" if r["cpu_ratio"] else "",
        )  # fmt: skip
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=1))


def _row(
    rows: list[dict[str, Any]],
    spec: Any,
    speed: str,
    command: str,
    got: tuple[float, float],
    classic: tuple[float, float],
    model: float,
) -> None:
    rows.append(
        {
            "movie": f"{spec.name} ({spec.height}p{spec.fps}, {spec.duration:g} s)",
            "speed": speed,
            "command": command,
            "cpu": got[0],
            "wall": got[1],
            "cpu_ratio": got[0] / classic[0],
            "wall_ratio": got[1] / classic[1],
            "model": model,
        }
    )
    console.print(f"{rows[-1]['movie']} {speed} {command}: {got[0]:.2f} CPU s, {got[1]:.2f} s")


if __name__ == "__main__":
    typer.run(main)
