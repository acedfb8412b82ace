"""``dacirco catalog seed | add | list``: the movie catalog from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dacirco.catalog.generate import DEFAULT_COUNT, GenerationError, MovieSpec
from dacirco.catalog.probe import MovieInfo, NotAVideo
from dacirco.catalog.service import add as add_movies
from dacirco.catalog.service import list_movies
from dacirco.catalog.service import seed as seed_movies
from dacirco.config import default_data_dir, open_storage
from dacirco.ffmpeg_bin import FfmpegNotFound
from dacirco.storage.base import Storage, StorageError
from dacirco.storage.cli import describe, storage_options
from dacirco.storage.options import StorageOptions

catalog_app = typer.Typer(
    help="Generate, add and list the movies of the catalog.",
    no_args_is_help=True,
    add_completion=False,
)

DataDir = Annotated[
    Path,
    typer.Option(
        default_factory=default_data_dir,
        help="data dir holding the catalog (env DACIRCO_DATA_DIR, else ./data)",
        show_default=False,
    ),
]


def _open(storage: StorageOptions, data_dir: Path) -> tuple[Storage, str]:
    """The storage the options name and where it is (for messages); fails in one line."""
    try:
        return open_storage(storage.kind, data_dir, storage.s3), describe(storage, data_dir)
    except (StorageError, ValueError, OSError) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


class _RichProgress:
    """Two bars: movies done, and the frames of all the movies to generate."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.movies: TaskID | None = None
        self.frames_task: TaskID | None = None
        self.base = 0  # frames of the movies already generated

    def planned(self, specs: list[MovieSpec]) -> None:
        total = sum(s.frames for s in specs)
        self.movies = self.progress.add_task("movies", total=len(specs))
        self.frames_task = self.progress.add_task("frames", total=total or 1, visible=total > 0)

    def movie_started(self, spec: MovieSpec) -> None:
        self.progress.update(self.movies, description=f"{spec.name}")

    def frames(self, spec: MovieSpec, done: int, total: int) -> None:
        self.progress.update(self.frames_task, completed=self.base + done)

    def movie_done(self, spec: MovieSpec, info: MovieInfo | None, skipped: bool) -> None:
        if skipped:
            self.progress.console.print(f"{spec.name}: already there, skipped", highlight=False)
            return
        self.base += spec.frames
        self.progress.update(self.frames_task, completed=self.base)
        self.progress.advance(self.movies)
        if info is not None:
            self.progress.console.print(f"{spec.name}: {_describe(info)}", highlight=False)


def _describe(info: MovieInfo) -> str:
    codecs = f"{info.video_codec}/{info.audio_codec or '-'}"
    return (
        f"{info.duration:.2f} s, {info.resolution} @ {info.fps:g} fps, {codecs}, "
        f"{info.bitrate / 1e6:.1f} Mbit/s, {info.size / 1e6:.1f} MB"
    )


@catalog_app.command()
@storage_options
def seed(
    data_dir: DataDir,
    storage: StorageOptions,
    duration_scale: Annotated[
        float, typer.Option(min=0.001, help="multiply every duration (1 s at least)")
    ] = 1.0,
    max_height: Annotated[
        int | None, typer.Option(min=16, help="cap the resolution (16:9 kept), e.g. 360")
    ] = None,
    count: Annotated[
        int, typer.Option(min=0, help="number of movies: bbb_0.mp4 …")
    ] = DEFAULT_COUNT,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing/--force",
            help="leave movies already in the catalog as they are, or regenerate them all",
        ),
    ] = False,
) -> None:
    """Generate the synthetic movies bbb_0.mp4 … (H.264 + AAC) into the catalog."""
    store, where = _open(storage, data_dir)
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns) as progress:
            report = seed_movies(
                store,
                duration_scale=duration_scale,
                max_height=max_height,
                count=count,
                skip_existing=skip_existing,
                progress=_RichProgress(progress),
            )
    except (GenerationError, FfmpegNotFound, NotAVideo, StorageError, OSError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(
        f"{len(report.generated)} generated, {len(report.skipped)} already there, in {where}"
    )


@catalog_app.command("add")
@storage_options
def add(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE", help="movie files to copy into the catalog")
    ],
    data_dir: DataDir,
    storage: StorageOptions,
    name: Annotated[
        str | None, typer.Option(help="name in the catalog (one file only; default: the file name)")
    ] = None,
) -> None:
    """Add movie files to the catalog (each one is probed first: non-videos are refused)."""
    store, _ = _open(storage, data_dir)
    try:
        infos = add_movies(store, files, name=name)
    except (NotAVideo, StorageError, OSError, ValueError) as exc:
        _fail(str(exc))
    for info in infos:
        typer.echo(f"added {info.name}: {_describe(info)}")


@catalog_app.command("list")
@storage_options
def list_(
    data_dir: DataDir,
    storage: StorageOptions,
) -> None:
    """Show the movies of the catalog."""
    store, where = _open(storage, data_dir)
    try:
        movies = list_movies(store)
    except (StorageError, OSError) as exc:
        _fail(str(exc))
    console = Console()
    if not movies:
        console.print(f"no movies in {where}; run `dacirco catalog seed`", highlight=False)
        return
    table = Table(title=f"catalog in {where}")
    table.add_column("name", no_wrap=True)
    for column in ("size", "duration", "resolution"):
        table.add_column(column, justify="right")
    table.add_column("codec")
    table.add_column("bitrate", justify="right")
    for m in movies:
        table.add_row(
            m.name,
            f"{m.size / 1e6:.1f} MB",
            f"{m.duration:.2f} s",
            m.resolution,
            f"{m.video_codec}/{m.audio_codec or '-'}",
            f"{m.bitrate / 1e6:.2f} Mb/s",
        )
    console.print(table)
