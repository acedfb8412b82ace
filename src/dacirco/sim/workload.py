"""Simulated jobs: the scenario generators' requests (or a scenario file) on the catalog's movies.

Movies are known without probing any file: ``bbb_<i>.mp4`` is ``catalog.generate.movie_spec(i)``
(duration, size, frame rate and nominal bitrate, as ``dacirco catalog seed`` makes it, with
its ``--duration-scale`` and ``--max-height``). Each job also gets its own noise factor and
its transfer times here, once, so that every policy and the lower bound see the same jobs.

Priorities (``--priorities 50:0.1,0:0.9``) are drawn per job from a generator of their own,
seeded from the same seed: the jobs with and without them are the same jobs (arrivals, movies,
noise), only their priorities differ; without them no draw is made. Ladder jobs
(``--ladder-share``, ``sim.ladder``) are drawn likewise: with a share of 0 the jobs are the
classic ones exactly.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

# A pure function of the movie's index; its module also runs ffmpeg, which the simulator never
# calls (the import-linter contract ignores this one edge, see pyproject.toml).
from dacirco.catalog.generate import AUDIO_KBPS, movie_spec
from dacirco.domain import FLAVORS, MAX_PRIORITY, MIN_PRIORITY
from dacirco.outputs.parts import THUMBNAILS
from dacirco.scenario.generate import GENERATORS, generate
from dacirco.scenario.model import Request, read_scenario
from dacirco.sim.ladder import Ladder, LadderMix, draw_ladders
from dacirco.sim.ladder_time import group_seconds
from dacirco.sim.models import Models, Movie, TransferModel

WORKLOADS = tuple(GENERATORS)
_BBB = re.compile(r"^bbb_(\d+)\.mp4$")

# A mix of priorities: (priority, share) pairs, the shares summing to 1; () for none.
Priorities = tuple[tuple[int, float], ...]


# The "short" catalog: clips of 5 to 15 s (bbb_0 5 s ... bbb_9 15 s), the same sizes and
# rates as the default one; on it a VM boot costs as much as a transcode.
SHORT_DURATIONS = tuple(5.0 + i * 10.0 / 9 for i in range(10))
CATALOGS = ("default", "short")


@dataclass(frozen=True)
class CatalogShape:
    """How the catalog was generated (``dacirco catalog seed`` options); ``durations``
    replaces the movies' lengths (``bbb_i`` gets ``durations[i % len]``)."""

    duration_scale: float = 1.0
    max_height: int | None = None
    durations: tuple[float, ...] | None = None

    @classmethod
    def named(cls, name: str, duration_scale: float = 1.0, max_height: int | None = None):  # type: ignore[no-untyped-def]
        if name not in CATALOGS:
            raise ValueError(f"unknown catalog {name!r}: one of {', '.join(CATALOGS)}")
        durations = SHORT_DURATIONS if name == "short" else None
        return cls(duration_scale, max_height, durations)

    def movie(self, name: str) -> Movie:
        match = _BBB.match(name)
        if match is None:
            raise ValueError(f"movie {name!r} is not of the generated catalog (bbb_<i>.mp4)")
        index = int(match[1])
        spec = movie_spec(index, duration_scale=self.duration_scale, max_height=self.max_height)
        duration = spec.duration
        if self.durations:
            duration = self.durations[index % len(self.durations)] * self.duration_scale
        size = duration * (spec.video_kbps + AUDIO_KBPS) * 1000 / 8
        return Movie(name, duration, spec.width, spec.height, spec.fps, int(size))


@dataclass(frozen=True, slots=True)
class SimJob:
    id: str
    arrival: float
    movie: Movie
    bitrate: int
    speed: str
    codec: str
    noise: float  # this job's transcode-time factor
    dispatch_s: float
    download_s: float
    upload_s: float
    priority: int = 0  # MIN_PRIORITY..MAX_PRIORITY, as the request's (higher is served first)
    ladder: Ladder | None = None  # a streaming job's outputs (bitrate: their sum), or classic


def parse_priorities(spec: str) -> Priorities:
    """``50:0.1,0:0.9`` (10 % of the requests at priority 50, 90 % at 0) as its pairs, the
    shares normalised to sum to 1; a ``ValueError`` naming ``--priorities`` otherwise."""

    def bad(why: str) -> ValueError:
        return ValueError(f"--priorities {spec!r}: {why} (e.g. 50:0.1,0:0.9)")

    pairs: dict[int, float] = {}
    for item in spec.split(","):
        level_s, sep, share_s = item.strip().partition(":")
        if not sep:
            raise bad(f"{item.strip()!r} is not PRIORITY:SHARE")
        try:
            level = int(level_s)
        except ValueError:
            raise bad(f"priority {level_s.strip()!r} is not an integer") from None
        if not MIN_PRIORITY <= level <= MAX_PRIORITY:
            raise bad(f"priority {level} is outside {MIN_PRIORITY}..{MAX_PRIORITY}")
        try:
            share = float(share_s)
        except ValueError:
            raise bad(f"share {share_s.strip()!r} is not a number") from None
        if not (share > 0 and math.isfinite(share)):
            raise bad(f"share {share_s.strip()!r} of priority {level} must be > 0")
        if level in pairs:
            raise bad(f"priority {level} is given twice")
        pairs[level] = share
    total = sum(pairs.values())
    return tuple((level, share / total) for level, share in pairs.items())


def draw_priorities(priorities: Priorities, n: int, seed: int) -> list[int]:
    """``n`` priorities drawn from the mix ``priorities``, from their own generator of
    ``seed`` (the other draws of the workload are the same with or without them)."""
    if not priorities:
        return [0] * n
    levels = [level for level, _ in priorities]
    rng = random.Random(f"dacirco-sim-priorities-{seed}")
    return rng.choices(levels, weights=[share for _, share in priorities], k=n)


def with_repeats(requests: Sequence[Request], share: float, seed: int) -> list[Request]:
    """``requests`` where each one after the first is, with probability ``share``, a repeat
    of an earlier one picked uniformly (its movie, bitrate and speed; its own arrival), as a
    provider asking again for an output it asked for before. Drawn from a generator of its
    own: with ``share`` 0 the requests are unchanged and no draw is made."""
    if share <= 0:
        return list(requests)
    rng = random.Random(f"dacirco-sim-repeats-{seed}")
    out: list[Request] = []
    for r in requests:
        if out and rng.random() < share:
            e = out[rng.randrange(len(out))]
            r = Request(r.delay, e.movie, e.bitrate, e.speed)
        out.append(r)
    return out


def distinct(jobs: Sequence[SimJob]) -> list[SimJob]:
    """The jobs that ask for an output no earlier job asked for: with reuse, the only ones
    that need work (the lower bound's jobs)."""
    seen: set[tuple[str, int, str, str, tuple[str, bool, float] | None]] = set()
    out = []
    for j in jobs:
        key = (j.movie.name, j.bitrate, j.speed, j.codec, j.ladder.key if j.ladder else None)
        if key not in seen:
            seen.add(key)
            out.append(j)
    return out


def requests_for(workload: str, n: int, seed: int, **params: float) -> list[Request]:
    """``n`` requests of a generator (classic, poisson, bursty, diurnal) or a scenario file."""
    if workload in GENERATORS:
        return generate(workload, n, random.Random(seed), **params)
    path = Path(workload)
    if path.exists():
        requests = read_scenario(path)
        return requests[:n] if n > 0 else requests
    raise ValueError(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)} or a file")


def make_jobs(
    requests: Sequence[Request],
    models: Models,
    seed: int,
    catalog: CatalogShape | None = None,
    codec: str = "h264",
    priorities: Priorities = (),
    ladder: LadderMix | None = None,
) -> list[SimJob]:
    """Jobs at the requests' absolute times (the first at 0), with their own draws (and
    priorities drawn from the mix ``priorities``, a share of ladder jobs from ``ladder``, if
    given)."""
    return _Draws(requests, models, seed, catalog, codec, priorities, ladder).jobs()


class _Draws:
    """The requests' absolute times and per-job draws, before they become :class:`SimJob`."""

    def __init__(
        self,
        requests: Sequence[Request],
        models: Models,
        seed: int,
        catalog: CatalogShape | None,
        codec: str,
        priorities: Priorities = (),
        ladder: LadderMix | None = None,
    ) -> None:
        catalog = catalog or CatalogShape()
        rng = random.Random(f"dacirco-sim-jobs-{seed}")
        transfer = models.transfer
        seconds = transfer.seconds
        output_bytes = TransferModel.output_bytes
        known: dict[str, tuple[Movie, float]] = {}
        arrivals, movies, downloads, uploads = [], [], [], []
        t = 0.0
        for r in requests:
            t += r.delay
            entry = known.get(r.movie)
            if entry is None:
                movie = catalog.movie(r.movie)
                entry = known[r.movie] = (movie, seconds(movie.size_bytes))
            movie, download = entry
            arrivals.append(t)
            movies.append(movie)
            downloads.append(download)
            uploads.append(seconds(output_bytes(movie.duration, r.bitrate)))
        self.requests = requests
        self.models = models
        self.codec = codec
        self.arrivals = arrivals
        self.movies = movies
        self.noises = models.noises(rng, len(arrivals))  # rng: the noises' alone
        self.downloads = downloads
        self.uploads = uploads
        self.priorities = draw_priorities(priorities, len(requests), seed)
        self.ladders = draw_ladders(movies, ladder, seed)
        if ladder is not None and ladder.share > 0:  # a ladder uploads its folder's files
            for i, lad in enumerate(self.ladders):
                if lad is not None:
                    uploads[i] = lad.upload_seconds(movies[i].duration, transfer)

    def offered_load(self, flavor: str, capacity: float) -> float:
        """:func:`offered_load` of these jobs."""
        arrivals = self.arrivals
        n = len(arrivals)
        if n < 2 or capacity <= 0:
            return 0.0
        span = arrivals[-1] - arrivals[0]
        if span <= 0:
            return float("inf")
        cores = FLAVORS[flavor].cpus
        transcode = self.models.transcode.seconds
        dispatch = self.models.transfer.dispatch_s
        codec = self.codec
        cache: dict[tuple[str, str, int | None], float] = {}
        by_bitrate = self.models.transcode.reads_bitrate
        works = []
        for r, movie, noise, download, upload, lad in zip(
            self.requests,
            self.movies,
            self.noises,
            self.downloads,
            self.uploads,
            self.ladders,
            strict=True,
        ):
            if lad is not None:
                base = _ladder_s(movie, lad, r.speed, self.models, cores)
            else:
                key = (movie.name, r.speed, r.bitrate if by_bitrate else None)
                base = cache.get(key)
                if base is None:
                    base = cache[key] = transcode(movie, codec, r.speed, cores, key[2])
            works.append(cores * (dispatch + download + base * noise + upload))
        work = sum(works) / n
        rate = (n - 1) / span
        return rate * work / capacity

    def jobs(self, factor: float | None = None) -> list[SimJob]:
        """The jobs, their arrival times multiplied by ``factor`` if given."""
        arrivals = self.arrivals
        if factor is not None:
            arrivals = [a * factor for a in arrivals]
        codec = self.codec
        dispatch = self.models.transfer.dispatch_s
        return [
            SimJob(
                f"r{i:06d}",
                arrival,
                movie,
                r.bitrate if ladder is None else ladder.bitrate,
                r.speed,
                codec,
                noise,
                dispatch,
                download,
                upload,
                priority,
                ladder,
            )
            for i, r, arrival, movie, noise, download, upload, priority, ladder in zip(
                range(1, len(arrivals) + 1),
                self.requests,
                arrivals,
                self.movies,
                self.noises,
                self.downloads,
                self.uploads,
                self.priorities,
                self.ladders,
                strict=True,
            )
        ]


def jobs_at_load(
    requests: Sequence[Request],
    models: Models,
    seed: int,
    catalog: CatalogShape | None,
    flavor: str,
    capacity: float,
    load: float | None,
    priorities: Priorities = (),
    ladder: LadderMix | None = None,
) -> tuple[list[SimJob], float]:
    """:func:`make_jobs`, their :func:`offered_load` rho, and, with ``load``, the same jobs
    :func:`at_load` ``load`` (when rho is finite and > 0): the jobs and their offered load."""
    draws = _Draws(requests, models, seed, catalog, "h264", priorities, ladder)
    rho = draws.offered_load(flavor, capacity)
    if load is not None and rho > 0 and math.isfinite(rho):
        if load <= 0:
            raise ValueError("loads must be > 0")
        return draws.jobs(rho / load), load
    return draws.jobs(), rho


def transcode_s(job: SimJob, models: Models, cores: int) -> float:
    """The job's encoding step (a ladder job's: its group of renditions, ``sim.ladder_time``)."""
    if job.ladder is not None:
        return _ladder_s(job.movie, job.ladder, job.speed, models, cores) * job.noise
    return models.transcode.seconds(job.movie, job.codec, job.speed, cores, job.bitrate) * job.noise


def _ladder_s(movie: Movie, ladder: Ladder, speed: str, models: Models, cores: int) -> float:
    """A group of renditions over the whole movie, or over a span of it (the thumbnails,
    with the last span, over the whole)."""
    group, outputs, quality = ladder.group, ladder.outputs, ladder.quality
    if ladder.span >= 1.0:
        return group_seconds(movie, group, outputs, speed, quality, models, cores)
    encoded = [u for u in group if u.output != THUMBNAILS]
    seconds = ladder.span * group_seconds(movie, encoded, outputs, speed, quality, models, cores)
    if len(encoded) < len(group):
        thumbs = [u for u in group if u.output == THUMBNAILS]
        seconds += group_seconds(movie, thumbs, outputs, speed, quality, models, cores)
    return seconds


def service_s(job: SimJob, models: Models, cores: int) -> float:
    """Seconds from assignment to upload on a ready worker of ``cores`` cores."""
    return job.dispatch_s + job.download_s + transcode_s(job, models, cores) + job.upload_s


def offered_load(jobs: Sequence[SimJob], models: Models, flavor: str, capacity: float) -> float:
    """rho = arrival rate x mean work per job (core-seconds on ``flavor``) / capacity (cores)."""
    if len(jobs) < 2 or capacity <= 0:
        return 0.0
    span = jobs[-1].arrival - jobs[0].arrival
    if span <= 0:
        return float("inf")
    cores = FLAVORS[flavor].cpus
    work = sum(cores * service_s(j, models, cores) for j in jobs) / len(jobs)
    rate = (len(jobs) - 1) / span
    return rate * work / capacity


def at_load(jobs: list[SimJob], rho_now: float, rho: float) -> list[SimJob]:
    """The same jobs with their arrival times stretched so that the offered load is ``rho``."""
    if rho <= 0 or rho_now <= 0:
        raise ValueError("loads must be > 0")
    factor = rho_now / rho
    return [replace(j, arrival=j.arrival * factor) for j in jobs]
