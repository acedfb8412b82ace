"""What one streaming task makes of each output: the whole job's renditions, or a part's
(``TaskSpec.units``), each with its index in its output, which names its files."""

from __future__ import annotations

from dataclasses import dataclass

from dacirco.outputs.names import DASH_MANIFEST, MASTER_PLAYLIST
from dacirco.outputs.part_files import dash_prefix, partial_manifest, partial_master
from dacirco.outputs.parts import THUMBNAILS
from dacirco.outputs.spans import Span
from dacirco.outputs.spec import OutputSpec, Rendition
from dacirco.protocol import TaskSpec


@dataclass(frozen=True)
class Piece:
    """Renditions of one output (each with its index there, from 0; a DASH one without its
    sound when another part carries it), made by part ``part`` (None: the whole job), over
    the whole input or over ``span``."""

    out: OutputSpec
    items: tuple[tuple[int, Rendition], ...]
    part: int | None = None
    span: Span | None = None  # a part of a job split in time: the span it encodes

    @property
    def master(self) -> str:
        """The HLS master playlist it writes: the job's, or its part's."""
        return MASTER_PLAYLIST if self.part is None else partial_master(self.part)

    @property
    def manifest(self) -> str:
        return DASH_MANIFEST if self.part is None else partial_manifest(self.part)

    @property
    def dash(self) -> str:
        """The prefix of its DASH representations' files."""
        return dash_prefix(self.part)


def as_piece(out: OutputSpec | Piece) -> Piece:
    """An output made whole, as one piece (a piece as it is)."""
    if isinstance(out, Piece):
        return out
    return Piece(out, tuple(enumerate(out.renditions)))


def pieces(spec: TaskSpec) -> list[Piece]:
    """What the task makes, output by output: every rendition (a whole job), or its units."""
    assert spec.outputs is not None
    if not spec.units:
        return [as_piece(out) for out in spec.outputs]
    found = []
    for o, out in enumerate(spec.outputs):
        items = []
        for unit in spec.units:
            if unit.output == o and unit.output != THUMBNAILS:
                r = out.renditions[unit.rendition]
                if not unit.audio and r.video_bitrate is not None:
                    r = r.model_copy(update={"audio_bitrate": None})
                items.append((unit.rendition, r))
        if items:
            span = spec.span.cut() if spec.span else None
            found.append(Piece(out, tuple(items), spec.chunk_index, span))
    return found
