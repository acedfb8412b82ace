"""A request made a job (``controller/submissions.py``): the checks that need no storage call,
the movie's metadata on the job, and the job's predicted work counting every rendition of a
ladder and the measure of its quality."""

from __future__ import annotations

import pytest

from dacirco.controller.submissions import Request, checked, new_job
from dacirco.core.errors import InvalidRequest
from dacirco.core.work import job_work, work_pixel_rate
from dacirco.domain import Codec, Speed
from dacirco.outputs.names import AUDIO_SHARE
from dacirco.outputs.presets import PRESETS
from dacirco.policies.work import QUALITY_COST, work_units
from dacirco.storage.base import ObjectInfo

META_1080 = {"duration": "60", "width": "1920", "height": "1080", "fps": "25", "frames": "1500"}


def info(**meta: str) -> ObjectInfo:
    return ObjectInfo("input-videos/bbb_9.mp4", 1000, 0.0, {**META_1080, **meta})


def job_of(request: Request, meta: ObjectInfo | None = None):
    return new_job(request, meta or info(), "j1", None, 10.0, 3)


def test_a_classic_job_carries_its_movie_and_one_encode_of_work():
    job = job_of(Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264))
    assert (job.input_duration, job.input_fps, job.input_frames) == (60.0, 25.0, 1500)
    assert job.input_pixel_rate == 1920 * 1080 * 25 and job.work_share == 1.0
    assert job_of(Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264, quality=True)).work_share == (
        1 + QUALITY_COST
    )


def test_a_ladder_counts_each_rendition_by_its_pixels():
    ladder = list(PRESETS["hls-ladder"].outputs)
    request = Request("bbb_9.mp4", 0, Speed.FAST, Codec.H264, outputs=ladder, preset="hls-ladder")
    heights = [1080, 720, 540, 432, 360]
    expected = sum((h / 1080) ** 2 for h in heights)
    assert job_of(request).work_share == pytest.approx(expected)  # about 1.97 encodes
    # On a 720p input the ladder is cut at 720p, and each rendition weighs more of the input.
    small = job_of(request, info(width="1280", height="720"))
    assert small.work_share == pytest.approx(sum((h / 720) ** 2 for h in heights[1:]))
    with_quality = Request(
        "bbb_9.mp4", 0, Speed.FAST, Codec.H264, outputs=ladder, preset="hls-ladder", quality=True
    )
    assert job_of(with_quality).work_share == pytest.approx(expected * (1 + QUALITY_COST))
    audio = Request("bbb_9.mp4", 0, Speed.FAST, Codec.H264, outputs=list(PRESETS["audio"].outputs))
    assert job_of(audio).work_share == AUDIO_SHARE  # no video to encode: little work


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (Request("../x.mp4", 1000, Speed.FAST, Codec.H264), "id_video"),
        (Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264, priority=99), "priority: 99"),
        (
            Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264, callback_url="ftp://x"),
            "callback_url",
        ),
    ],
)
def test_what_needs_no_storage_call_is_refused_naming_the_field(request_, words):
    with pytest.raises(InvalidRequest, match=words):
        checked(request_, allow_private=False)


def test_a_movie_not_in_the_catalog_is_refused_naming_it():
    with pytest.raises(InvalidRequest, match=r"movie 'bbb_9\.mp4' is not in the catalog"):
        new_job(Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264), None, "j1", None, 0.0, 3)


def test_the_scheduler_predicts_a_ladder_as_the_work_of_all_its_renditions():
    classic = job_of(Request("bbb_9.mp4", 1000, Speed.FAST, Codec.H264))
    ladder = job_of(
        Request(
            "bbb_9.mp4", 0, Speed.FAST, Codec.H264,
            outputs=list(PRESETS["hls-ladder"].outputs), preset="hls-ladder",
        )
    )  # fmt: skip
    assert job_work(classic) == work_units(60.0, 1920 * 1080 * 25, "fast") > 0
    assert job_work(ladder) == pytest.approx(job_work(classic) * ladder.work_share)
    assert work_pixel_rate(ladder) == pytest.approx(1920 * 1080 * 25 * ladder.work_share)
