"""Split jobs in the simulator: a job encoded as K chunks on any workers, then merged.

- A chunk encodes 1/K of the movie's frames: the transcode model's time for a movie 1/K as
  long, plus ``CHUNK_OVERHEAD_S`` (ffmpeg's start and the seek to the chunk's first frame);
  it downloads the whole input (the worker seeks in it) and uploads 1/K of the output.
- The merge downloads the input (its audio is taken once, from the input) and the chunks,
  joins them without re-encoding (concat demuxer, stream copy: ``MERGE_FIXED_S`` plus the
  output's bytes at ``MERGE_MB_S``) and uploads the output.

The costs are ``Models.split``: measured on this machine by ``dacirco calibrate`` when the
simulator has a calibration, else by ``benchmarks/chunked.py`` (see docs/simulator.md); they
are small next to a transcode, which is what makes splitting pay.

A streaming job (``SimJob.ladder``) splits as the core splits it (``outputs.parts.layout``):
part ``n`` of ``k`` decodes the whole input and encodes its group of renditions, or, for a
long movie, decodes and encodes its span of the movie alone, every rendition (``Ladder.part_of``,
its seconds from ``sim.ladder_time``), uploads its files; the packaging part reads the parts'
playlists and writes the master playlist or the MPD (``PACKAGING_S``, a few small files).
"""

from __future__ import annotations

from dataclasses import replace

from dacirco.outputs.part_files import partials
from dacirco.sim.ladder_time import PACKAGING_S
from dacirco.sim.models import Models, Movie, TransferModel
from dacirco.sim.workload import SimJob, transcode_s


def chunk_job(job: SimJob, index: int, chunks: int, models: Models) -> SimJob:
    """Part ``index`` (1..chunks) of ``job``."""
    if job.ladder is not None:
        ladder = job.ladder.part_of(index, chunks, job.movie.duration)
        upload = ladder.upload_seconds(job.movie.duration, models.transfer)
        return replace(job, id=f"{job.id}#{index}", ladder=ladder, upload_s=upload)
    m = job.movie
    movie = Movie(f"{m.name}/{chunks}", m.duration / chunks, m.width, m.height, m.fps, m.size_bytes)
    out = TransferModel.output_bytes(m.duration, job.bitrate) / chunks
    return replace(job, id=f"{job.id}#{index}", movie=movie, upload_s=models.transfer.seconds(out))


def merge_job(job: SimJob, chunks: int, models: Models, now: float) -> SimJob:
    """The merge of ``job``'s chunks, waiting from ``now``."""
    if job.ladder is not None:  # packaging: the parts' playlists in, the main one out
        lad, latency = job.ladder, models.transfer.latency_s
        download = latency * len(partials(lad.outputs, lad.layout(chunks, job.movie.duration)))
        return replace(
            job, id=f"{job.id}#merge", arrival=now, download_s=download, upload_s=latency
        )
    out = TransferModel.output_bytes(job.movie.duration, job.bitrate)
    download = (
        job.download_s
        + chunks * models.transfer.latency_s
        + out / (models.transfer.bandwidth_mb_s * 1e6)
    )
    return replace(job, id=f"{job.id}#merge", arrival=now, download_s=download)


def work_seconds(job: SimJob, part: str | None, models: Models, cores: int) -> float:
    """The encoding step of a job or of a part, on a worker of ``cores`` cores."""
    if part == "merge" and job.ladder is not None:
        return PACKAGING_S
    if part == "merge":
        return models.split.merge_seconds(
            TransferModel.output_bytes(job.movie.duration, job.bitrate)
        )
    seconds = transcode_s(job, models, cores)
    if part == "chunk" and job.ladder is None:
        return seconds + models.split.chunk_overhead_s
    return seconds
