"""Catalog operations on any Storage: seed the synthetic movies, add files, list movies."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from dacirco.catalog.generate import DEFAULT_COUNT, MovieSpec, default_specs, generate_movie
from dacirco.catalog.probe import MovieInfo, NotAVideo, from_metadata, probe, to_metadata
from dacirco.domain import movie_name_problem, shown
from dacirco.storage.base import INPUT_PREFIX, Storage, StorageError, input_key

log = logging.getLogger(__name__)


class InvalidMovieName(ValueError):
    """A name that cannot be a movie of the catalog (see ``domain.movie_name_problem``)."""


class SeedProgress(Protocol):
    def planned(self, specs: list[MovieSpec]) -> None: ...
    def movie_started(self, spec: MovieSpec) -> None: ...
    def frames(self, spec: MovieSpec, done: int, total: int) -> None: ...
    def movie_done(self, spec: MovieSpec, info: MovieInfo | None, skipped: bool) -> None: ...


class NoProgress:
    def planned(self, specs: list[MovieSpec]) -> None:
        pass

    def movie_started(self, spec: MovieSpec) -> None:
        pass

    def frames(self, spec: MovieSpec, done: int, total: int) -> None:
        pass

    def movie_done(self, spec: MovieSpec, info: MovieInfo | None, skipped: bool) -> None:
        pass


@dataclass
class SeedReport:
    generated: list[MovieInfo] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names already in the storage


def seed(
    storage: Storage,
    *,
    duration_scale: float = 1.0,
    max_height: int | None = None,
    count: int = DEFAULT_COUNT,
    skip_existing: bool = False,
    progress: SeedProgress | None = None,
) -> SeedReport:
    """Generate ``bbb_0.mp4`` … and store them with their probe as metadata.

    With ``skip_existing``, a movie already in the storage is left as it is (one stat call).
    """
    progress = progress or NoProgress()
    specs = default_specs(count, duration_scale=duration_scale, max_height=max_height)
    report = SeedReport()
    todo = []
    for spec in specs:
        if skip_existing and storage.stat(input_key(spec.name)) is not None:
            report.skipped.append(spec.name)
            progress.movie_done(spec, None, skipped=True)
        else:
            todo.append(spec)
    progress.planned(todo)
    with tempfile.TemporaryDirectory(prefix="dacirco-seed-") as tmp:
        for spec in todo:
            progress.movie_started(spec)
            path = Path(tmp) / spec.name
            generate_movie(spec, path, lambda done, total, s=spec: progress.frames(s, done, total))
            info = probe(path)
            storage.put_file(input_key(spec.name), path, metadata=to_metadata(info))
            path.unlink()
            report.generated.append(info)
            progress.movie_done(spec, info, skipped=False)
    return report


def add(storage: Storage, files: list[Path], name: str | None = None) -> list[MovieInfo]:
    """Check every name and probe every file first (refusing any non-video), then store them
    under ``input-videos/``."""
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("no file to add")
    if name is not None and len(files) != 1:
        raise ValueError("--name needs exactly one file")
    infos = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
        movie = name if name is not None else path.name
        if problem := movie_name_problem(movie):
            raise InvalidMovieName(f"movie name {shown(movie)}: {problem}")
        infos.append(replace(probe(path), name=movie))
    for path, info in zip(files, infos, strict=True):
        storage.put_file(input_key(info.name), path, metadata=to_metadata(info))
    return infos


def list_movies(storage: Storage) -> list[MovieInfo]:
    """Every movie under ``input-videos/``, from its metadata (probed if it has none)."""
    movies = []
    for obj in storage.list(INPUT_PREFIX):
        info = from_metadata(obj.name, obj.size, obj.metadata)
        if info is None:
            info = _probe_stored(storage, obj.key, obj.name)
        if info is not None:
            movies.append(info)
    return movies


def _probe_stored(storage: Storage, key: str, name: str) -> MovieInfo | None:
    with tempfile.TemporaryDirectory(prefix="dacirco-probe-") as tmp:
        path = Path(tmp) / "movie"
        try:
            storage.get_file(key, path)
            return probe(path, name=name)
        except (NotAVideo, StorageError, OSError) as exc:
            log.warning("skipping %s: %s", key, exc)
            return None
