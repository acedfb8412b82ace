"""Ladder jobs in the simulator (``sim/ladder.py``, ``sim/ladder_time.py``): the fields the
controller gives the same request, a seeded mix, the encoding step the model says, their
parts, and ``--ladder-*`` on the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from dacirco.controller.submissions import Request, new_job
from dacirco.core.errors import InvalidRequest
from dacirco.domain import Codec, Speed
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import ThumbnailSpec
from dacirco.sim import ladder_time
from dacirco.sim.ladder import LadderMix
from dacirco.sim.models import Models
from dacirco.sim.options import SimOptions
from dacirco.sim.run import core_job
from dacirco.sim.split import chunk_job, merge_job, work_seconds
from dacirco.sim.workload import CatalogShape, SimJob, transcode_s
from dacirco.storage.base import ObjectInfo

runner = CliRunner()
FIELDS = (
    "id_video", "bitrate", "speed", "codec", "preset", "outputs", "quality", "thumbnails",
    "input_size", "input_duration", "input_pixel_rate", "input_fps", "input_frames",
    "input_height", "work_share",
)  # fmt: skip


def _setup(share: float, **options: object):
    return SimOptions(jobs=120, ladder_share=share, **options).setup()  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("quality", [False, True])
@pytest.mark.parametrize("thumbnails", [None, 10.0])
@pytest.mark.parametrize("max_height", [None, 540])
def test_a_ladder_job_has_the_fields_the_controller_gives_it(
    preset, quality, thumbnails, max_height
):
    catalog = CatalogShape(max_height=max_height)
    mix = LadderMix(1.0, preset, quality, thumbnails).check()
    for index in (8, 9):  # a 720p25 and a 1080p30 movie (540p with max_height)
        movie = catalog.movie(f"bbb_{index}.mp4")
        meta = {"duration": repr(movie.duration), "width": str(movie.width),
                "height": str(movie.height), "fps": str(movie.fps),
                "frames": str(round(movie.duration * movie.fps))}  # fmt: skip
        info = ObjectInfo(f"input-videos/{movie.name}", movie.size_bytes, 0.0, meta)
        every = ThumbnailSpec(every=thumbnails) if thumbnails is not None else None
        request = Request(
            movie.name, 0, Speed.FAST, Codec.H264, outputs=list(PRESETS[preset].outputs),
            preset=preset, quality=quality, thumbnails=every,
        )  # fmt: skip
        try:
            real = new_job(request, info, "j1", None, 10.0, 3)
        except InvalidRequest as refused:  # mp4-720p on a shorter movie: refused by both
            with pytest.raises(ValueError, match="--ladder-preset") as exc:
                mix.ladder(movie)
            assert str(refused).partition(": ")[2] in str(exc.value)
            continue
        ladder = mix.ladder(movie)
        sim = SimJob("j1", 10.0, movie, ladder.bitrate, "fast", "h264", 1.0, 0, 0, 0, 0, ladder)
        simulated = core_job(sim)
        for name in FIELDS:
            assert getattr(simulated, name) == getattr(real, name), name
        assert simulated.work_share > (1.0 if preset.endswith("ladder") else 0.0)


def test_a_mixed_workload_is_drawn_from_the_seed_and_a_share_of_0_is_the_classic_one():
    mixed = _setup(0.3, runtime="pod")
    first, rho = mixed.workload("poisson@0.6", 3)
    again, rho_again = _setup(0.3, runtime="pod").workload("poisson@0.6", 3)
    assert first == again and rho == rho_again
    ladders = [j for j in first if j.ladder is not None]
    assert 0.15 * len(first) < len(ladders) < 0.45 * len(first)
    assert all(j.bitrate == j.ladder.bitrate and j.ladder.preset == "hls-ladder" for j in ladders)
    other, _ = mixed.workload("poisson@0.6", 4)
    assert [j.ladder is None for j in other] != [j.ladder is None for j in first]
    classic, _ = _setup(0.0, runtime="pod").workload("poisson@0.6", 3)
    plain, _ = SimOptions(jobs=120, runtime="pod").setup().workload("poisson@0.6", 3)
    assert classic == plain and all(j.ladder is None for j in classic)
    # The same requests: movies, speeds and noise; at the same load the arrivals stretch.
    assert [(j.movie, j.speed, j.noise) for j in first] == [
        (j.movie, j.speed, j.noise) for j in classic
    ]
    assert first[-1].arrival > classic[-1].arrival


def _ratio_by_hand(job: SimJob) -> float:
    """hls-ladder of a 1080p movie at "ultrafast": five renditions, each with its audio."""
    shares = sum((h / 1080) ** 2 for h, _ in ((1080, 0), (720, 0), (540, 0), (432, 0), (360, 0)))
    m = ladder_time
    return m.DECODE + 5 * (m.SCALE + m.AUDIO) + m.ENCODE["ultrafast"] * shares


def test_each_ladder_task_takes_the_seconds_the_model_says_and_delays_grow():
    setup = _setup(0.5, reuse=False, runtime="pod")
    jobs, _ = setup.workload("poisson@0.5", 2)
    result = setup.run("grace-period", jobs, 2)
    spans = {s.job_id: s for s in result.run.jobs}
    models, cores = setup.models, 2  # small workers
    for job in jobs:
        span = spans[job.id]
        assert span.state == "Completed"
        assert span.transcoded - span.downloaded == pytest.approx(transcode_s(job, models, cores))
    one = next(j for j in jobs if j.ladder and j.movie.height == 1080 and j.speed == "ultrafast")
    classic = replace(one, ladder=None)
    ladder_s, classic_s = transcode_s(one, models, cores), transcode_s(classic, models, cores)
    assert ladder_s / classic_s == pytest.approx(_ratio_by_hand(one))
    # The same requests with more of them ladders: more work, longer delays.
    delays = []
    for share in (0.0, 0.5, 1.0):
        s = _setup(share, reuse=False, runtime="pod")
        js, _ = s.workload("poisson", 2)  # the same arrivals (no stretch)
        run = s.run("grace-period", js, 2).run
        done = [j.delay for j in run.jobs if j.state == "Completed"]
        assert len(done) == len(js)
        delays.append(sum(done) / len(done))
    assert delays[0] < delays[1] < delays[2]


def test_a_ladder_split_in_parts_decodes_in_each_and_packaging_is_small():
    models = Models.build("pod")
    mix = LadderMix(1.0, "hls-ladder", thumbnails=5.0)
    movie = CatalogShape().movie("bbb_9.mp4")
    ladder = mix.ladder(movie)
    job = SimJob("j1", 0.0, movie, ladder.bitrate, "fast", "h264", 1.0, 0.02, 1.0, 1.0, 0, ladder)
    whole = work_seconds(job, None, models, 2)
    parts = [chunk_job(job, n, 3, models) for n in (1, 2, 3)]
    seconds = [work_seconds(p, "chunk", models, 2) for p in parts]
    assert sorted((u for p in parts for u in p.ladder.group), key=str) == sorted(
        ladder.group, key=str
    )
    assert all(s < whole for s in seconds) and sum(seconds) > whole  # a decode each
    assert sum(p.upload_s for p in parts) > job.upload_s  # the same bytes, more rounds
    merge = merge_job(job, 3, models, 50.0)
    assert work_seconds(merge, "merge", models, 2) == ladder_time.PACKAGING_S
    assert merge.download_s < 1.0 and merge.arrival == 50.0


def test_the_oracle_and_adaptive_split_ladder_jobs_in_parts_of_their_renditions():
    setup = _setup(1.0, reuse=False, runtime="pod", flavor="tiny")
    jobs, _ = setup.workload("bursty", 1)
    for policy in ("oracle", "adaptive"):
        result = setup.run(policy, jobs, 1, log=True)
        assert all(s.state == "Completed" for s in result.run.jobs)
        assert not any("split" in why for why in result.stats.refused), result.stats.refused
        assert result.log is not None
        lines = [json.loads(line) for line in result.log.lines()]
        splits = [int(e["chunks"]) for e in lines if e["code"] == "EV15"]
        # Each split within what the ladder is worth (the 1080p and 720p ladders: 2 and 3).
        assert splits and all(2 <= k <= 3 for k in splits), (policy, splits)
        parts_done = sum(1 for e in lines if e["code"] == "EV16")
        assert parts_done == sum(splits)  # every part once, then its packaging (EV7)


def test_compare_mixes_ladder_jobs_and_names_a_bad_option(tmp_path):
    args = ["compare", "--policies", "grace-period", "--workloads", "poisson@0.5", "--seeds",
            "1", "-n", "40", "--no-oracle", "--no-reuse", "--ladder-share", "0.5",
            "--ladder-quality", "--ladder-thumbnails", "10",
            "--plot", str(tmp_path / "p.png")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "grace-period" in result.output and "40/40" in result.output
    for bad, name in (
        (["--ladder-share", "1.5"], "--ladder-share"),
        (["--ladder-preset", "nope"], "--ladder-preset"),
        (["--ladder-share", "0.5", "--ladder-thumbnails", "0.5"], "--ladder-thumbnails"),
    ):
        result = runner.invoke(app, ["simulate", "-n", "5", *bad])
        assert result.exit_code == 2 and name in result.output, result.output
    result = runner.invoke(
        app, ["simulate", "-n", "20", "--ladder-share", "1", "--ladder-preset", "mp4-720p",
              "--max-height", "480"]
    )  # fmt: skip
    assert result.exit_code == 2 and "taller than the input" in result.output
