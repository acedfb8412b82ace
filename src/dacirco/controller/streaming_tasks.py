"""What a streaming job's task is told and may write: a whole job's every file, a part's
renditions (``outputs.parts``), a packaging's playlists read from the parts' own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any

from dacirco.domain import Job, Task, rendition_parts
from dacirco.outputs.names import output_dir
from dacirco.outputs.part_files import made_by, partials
from dacirco.outputs.parts import THUMBNAILS
from dacirco.protocol import SpanSpec, UnitSpec
from dacirco.storage.base import Storage, output_key


def task_makes(job: Job, task: Task) -> Callable[[str], bool]:
    """Whether a file of the job's folder is one ``task`` makes (and may upload)."""
    if task.part is None or job.outputs is None:
        return lambda name: True
    return partial(made_by, job.outputs, rendition_parts(job), task.part, task.index)


async def streaming_fields(storage: Storage, job: Job, task: Task, ttl: float) -> dict[str, Any]:
    """The ``TaskSpec`` fields of a streaming task: the thumbnails' interval (for the task
    that makes them), a part's units, a packaging's signed GET URLs of the parts' playlists
    (made in a thread: a storage may sign over the network)."""
    every = (job.thumbnails or {}).get("every")
    if task.part is None:
        return {"thumbnails_every": every}
    assert job.outputs is not None
    parts = rendition_parts(job)
    if task.part == "chunk":
        units = parts.parts[task.index - 1]
        span = parts.spans[task.index - 1] if parts.spans else None
        return {
            "units": [
                UnitSpec(output=u.output, rendition=u.rendition, audio=u.audio) for u in units
            ],
            "span": None if span is None else SpanSpec(**asdict(span)),
            "thumbnails_every": every if any(u.output == THUMBNAILS for u in units) else None,
        }
    folder = output_dir(job.id_video, job.id)

    def sign() -> dict[str, str]:
        return {
            name: storage.get_url(output_key(f"{folder}/{name}"), ttl)
            for name in partials(job.outputs or [], parts)
        }

    return {
        "playlist_urls": await asyncio.to_thread(sign),
        "spans": len(parts.spans or ()),
        "thumbnails_every": None,
    }
