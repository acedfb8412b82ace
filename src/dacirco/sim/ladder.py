"""Streaming jobs in the simulator: a share of the requests asks for a preset (a bitrate
ladder, a single MP4, the sound alone), as ``"preset": "<name>"`` in a job's body does.

A simulated ladder job gets what the controller gives the same request on the same movie
(``controller.submissions.new_job``), with the same functions: the preset's outputs fitted to
the movie's height (``outputs.spec.fitted``: taller renditions left out, the bitrate the sum of
every rendition's), ``work_share`` (``outputs.names.encode_share``, times ``1 + QUALITY_COST``
when its quality is measured), ``input_height``, ``preset``, ``quality`` and ``thumbnails``.
So a policy sees exactly what it would see in production. Its seconds are
``sim.ladder_time``'s, its upload every file of its folder (``upload_seconds``).

Which requests are ladder jobs is drawn from a generator of its own (``dacirco-sim-ladder-<seed>``),
so with a share of 0 no draw is made and the workload is exactly the classic one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dacirco.outputs.names import encode_share
from dacirco.outputs.parts import THUMBNAILS, Plan, Unit, layout, units
from dacirco.outputs.presets import PRESETS, known
from dacirco.outputs.spec import (
    MAX_THUMBNAIL_EVERY,
    MIN_THUMBNAIL_EVERY,
    OutputsError,
    ThumbnailSpec,
    fitted,
)
from dacirco.policies.work import QUALITY_COST
from dacirco.sim.models import Movie, TransferModel

# A streaming task uploads its files this many at a time (worker.ladder.UPLOADS_AT_ONCE).
UPLOADS_AT_ONCE = 4
THUMBNAIL_FILES = 3  # a poster, a sprite sheet (a movie of the catalog fills one), the index


@dataclass(frozen=True)
class LadderMix:
    """``--ladder-share``, ``--ladder-preset``, ``--ladder-quality``, ``--ladder-thumbnails``:
    the share of the requests that ask for ``preset`` (a shipped one), measuring their quality
    or making thumbnails every ``thumbnails`` seconds if asked (else as the preset says)."""

    share: float = 0.0
    preset: str = "hls-ladder"
    quality: bool = False
    thumbnails: float | None = None

    def check(self) -> LadderMix:
        """Itself, or a ``ValueError`` naming the option that is wrong."""
        if not (0.0 <= self.share <= 1.0):
            raise ValueError(f"--ladder-share {self.share}: must be a share in 0..1")
        if self.preset not in PRESETS:
            raise ValueError(f"--ladder-preset {self.preset!r}: not a shipped preset ({known()})")
        every = self.thumbnails
        if every is not None and not MIN_THUMBNAIL_EVERY <= every <= MAX_THUMBNAIL_EVERY:
            raise ValueError(
                f"--ladder-thumbnails {every:g}: seconds between two thumbnails, "
                f"{MIN_THUMBNAIL_EVERY:g}..{MAX_THUMBNAIL_EVERY:g}"
            )
        return self

    def ladder(self, movie: Movie) -> Ladder:
        """What the controller stores of this preset for ``movie`` (a ``ValueError`` naming
        ``--ladder-preset`` when the preset cannot fit the movie, as the service's 422)."""
        preset = PRESETS[self.preset]
        quality = self.quality or preset.quality
        thumbnails = (
            ThumbnailSpec(every=self.thumbnails) if self.thumbnails is not None else None
        ) or preset.thumbnails
        try:
            outputs, bitrate = fitted(list(preset.outputs), movie.height, self.preset)
        except OutputsError as exc:
            why = str(exc).removeprefix(f"{exc.field}: ")
            raise ValueError(f"--ladder-preset {self.preset}: on {movie.name}: {why}") from None
        share = encode_share(outputs, movie.height)
        return Ladder(
            preset=self.preset,
            outputs=outputs,
            bitrate=bitrate,
            quality=quality,
            thumbnails=thumbnails.model_dump() if thumbnails is not None else None,
            input_height=float(movie.height),
            work_share=share * (1 + QUALITY_COST if quality else 1.0),
            group=tuple(units(outputs, thumbnails is not None, movie.height)),
        )


@dataclass(frozen=True)
class Ladder:
    """A ladder job's own fields, as the controller sets them (one per movie and mix, shared by
    its jobs); ``group``: the units its task encodes (all of them, unless it is a part)."""

    preset: str
    outputs: list[dict[str, Any]]
    bitrate: int  # kbit/s: every rendition's, summed (the job's bitrate)
    quality: bool
    thumbnails: dict[str, Any] | None
    input_height: float
    work_share: float
    group: tuple[Unit, ...] = field(default=())
    part: int = 0  # 1..k for a group of a split job (``part_of``), 0 for the whole job
    span: float = 1.0  # the share of the movie its task encodes (a span in time: less)

    @property
    def key(self) -> tuple[str, bool, float]:
        """What tells two ladder requests of one movie apart (output reuse)."""
        every = self.thumbnails["every"] if self.thumbnails else 0.0
        return (self.preset, self.quality, every)

    def __hash__(self) -> int:  # its outputs are JSON (lists): equal ladders, equal keys
        return hash((self.key, self.input_height, self.part, self.span))

    def layout(self, k: int, duration: float) -> Plan:
        """This job in ``k`` parts, as the core splits it (``outputs.parts.layout``)."""
        thumbs = self.thumbnails is not None
        return layout(self.outputs, thumbs, self.input_height, k, duration)

    def part_of(self, n: int, k: int, duration: float) -> Ladder:
        """Part ``n`` (1..k) of this job split in ``k`` parts (of ``duration`` seconds): the
        same job, its task encoding that group of renditions, over its span in time."""
        made = self.layout(k, duration)
        span = 1.0
        if made.spans is not None:
            piece = made.spans[n - 1]
            span = (piece.last - piece.first) / made.spans[-1].last
        return replace(self, group=tuple(made.parts[n - 1]), part=n, span=span)

    def kbps(self) -> int:
        """The bitrate of what its task writes: its group's renditions."""
        total = 0
        for u in self.group:
            if u.output != THUMBNAILS:
                r = self.outputs[u.output]["renditions"][u.rendition]
                total += (r.get("video_bitrate") or 0) + (r.get("audio_bitrate") or 0) * u.audio
        return total

    def files(self, duration: float) -> int:
        """How many files its task uploads: segments, init segments and playlists of each
        HLS or DASH rendition, one file per MP4 rendition, the thumbnails."""
        count = 0
        kinds = set()
        for u in self.group:
            if u.output == THUMBNAILS:
                count += THUMBNAIL_FILES
                continue
            out = self.outputs[u.output]
            kind = out["container"]
            kinds.add(kind)
            if kind == "mp4":
                count += 1
                continue
            segments = max(1, math.ceil(duration / out["segment_seconds"]))
            streams = (1 if out["renditions"][u.rendition].get("video_bitrate") else 0) + (
                1 if u.audio and kind == "dash" else 0
            )
            per = (segments + 1) * max(1, streams)  # an init segment each
            count += per + (1 if kind == "hls" else 0)  # HLS: a media playlist each
        return count + len(kinds & {"hls", "dash"})  # the master playlist, the MPD

    def upload_seconds(self, duration: float, transfer: TransferModel) -> float:
        """Its files, ``UPLOADS_AT_ONCE`` at a time: a latency per round, the bytes at the
        bandwidth."""
        rounds = math.ceil(self.files(duration * self.span) / UPLOADS_AT_ONCE)
        size = duration * self.span * self.kbps() * 1000 / 8
        return rounds * transfer.latency_s + size / (transfer.bandwidth_mb_s * 1e6)


def draw_ladders(movies: Sequence[Movie], mix: LadderMix | None, seed: int) -> list[Ladder | None]:
    """For each request (its movie), its ladder, or None for a classic request: each one is a
    ladder job with probability ``mix.share``, drawn from a generator of its own."""
    if mix is None or mix.share <= 0:
        return [None] * len(movies)
    rng = random.Random(f"dacirco-sim-ladder-{seed}")
    made: dict[str, Ladder] = {}
    out: list[Ladder | None] = []
    for movie in movies:
        if rng.random() >= mix.share:
            out.append(None)
            continue
        ladder = made.get(movie.name)
        if ladder is None:
            ladder = made[movie.name] = mix.ladder(movie)
        out.append(ladder)
    return out
