"""A streaming job split in parts of its renditions: the plan (``outputs.parts``), the core's
lifecycle of its parts and packaging, the controller's view of what each task makes, and the
packaging's merge of the parts' playlists."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest

from dacirco.controller.streaming_tasks import task_makes
from dacirco.core.effects import Delete
from dacirco.core.machine import Core
from dacirco.core.state import part_id
from dacirco.core.stimuli import (
    Cancel,
    Decide,
    Failed,
    Recover,
    Registered,
    Reported,
    Submitted,
)
from dacirco.core.work import job_work
from dacirco.domain import Job, JobState, Speed, Task, task_output
from dacirco.outputs import part_files, parts
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import OutputSpec, dump, fit
from dacirco.policies.base import Assign, Decisions, Split, StartWorker
from dacirco.protocol import TaskSpec
from dacirco.worker.packaging import merge_manifests, merge_masters
from dacirco.worker.pieces import pieces
from tests.unit.test_core import Scripted, codes, launched, new_core, run_task

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def ladder(preset: str = "hls-ladder", height: int = 720) -> list[dict]:
    return dump(fit(PRESETS[preset].outputs, height))


def streaming_job(
    preset: str = "hls-ladder", *, thumbnails: bool = False, quality: bool = False
) -> Job:
    return Job(
        "j1", "bbb_1.mp4", 7000, Speed.FAST, 0.0, input_duration=10.0,
        input_pixel_rate=1280 * 720 * 25.0, input_height=720, outputs=ladder(preset),
        thumbnails={"every": 5} if thumbnails else None, quality=quality, preset=preset,
        work_share=2.17,
    )  # fmt: skip


# ---- the plan --------------------------------------------------------------------------


def test_the_plan_balances_the_work_and_keeps_each_unit_once() -> None:
    outs = ladder()  # 720p, 540p, 432p, 360p: pixels 1, 0.56, 0.36, 0.25
    found = parts.Plan(parts.plan(outs, True, 720, 3))
    assert [[u.rendition for u in p] for p in found] == [[0], [1, -1], [2, 3]]
    assert sorted((u.output, u.rendition) for p in found for u in p) == sorted(
        (u.output, u.rendition) for u in parts.units(outs, True, 720)
    )
    assert sum(parts.share(found, n) for n in (1, 2, 3)) == pytest.approx(1.0)
    assert parts.share(found, 1) == pytest.approx(1 / (1 + 0.5625 + 0.36 + 0.25 + 0.05))
    # More parts than units: one unit each.
    assert len(parts.plan(outs, False, 720, 9)) == 4


@pytest.mark.parametrize(
    ("preset", "height", "thumbnails", "most"),
    [
        ("hls-ladder", 1080, False, 2),  # 1080p is half the ladder: two parts are enough
        ("hls-ladder", 1080, True, 2),
        ("hls-ladder", 720, False, 3),
        ("dash-ladder", 720, True, 3),
        ("hls-ladder", 360, True, 1),  # one rendition: nothing to gain
        ("mp4-720p", 1080, True, 1),  # thumbnails alone are not worth a decode
        ("audio", 720, False, 1),
    ],
)
def test_a_job_is_worth_the_parts_that_shorten_it(preset, height, thumbnails, most) -> None:
    assert parts.most_parts(ladder(preset, height), thumbnails, height) == most
    assert parts.most_parts(None, True, height) == 1


def test_dash_sound_is_carried_once_by_the_first_rendition_that_asks_for_it() -> None:
    units = parts.units(ladder("dash-ladder"), False, 720)
    assert [u.audio for u in units] == [True, False, False, False]


def test_each_file_of_the_folder_belongs_to_one_task() -> None:
    outs = ladder()
    found = parts.Plan(parts.plan(outs, True, 720, 3))
    files = ["hls-0.m3u8", "hls-0-init.mp4", "hls-1-00002.m4s", "hls-3.m3u8", "poster.jpg",
             "sprite-2.jpg", "thumbnails.vtt", "master-p1.m3u8", "master-p3.m3u8",
             "master.m3u8"]  # fmt: skip
    owners = {f: [n for n in (1, 2, 3) if part_files.owns(outs, found, n, f)] for f in files}
    assert owners == {
        "hls-0.m3u8": [1], "hls-0-init.mp4": [1], "hls-1-00002.m4s": [2], "hls-3.m3u8": [3],
        "poster.jpg": [2], "sprite-2.jpg": [2], "thumbnails.vtt": [2],
        "master-p1.m3u8": [1], "master-p3.m3u8": [3], "master.m3u8": [],
    }  # fmt: skip
    partials = part_files.partials(outs, found)
    assert partials == ["master-p1.m3u8", "master-p2.m3u8", "master-p3.m3u8"]
    assert [part_files.part_main(outs, found, n) for n in (1, 2, 3)] == partials
    assert part_files.packaged(outs) == ["master.m3u8"]


# ---- the core ----------------------------------------------------------------------------


def split_and_start(core: Core, policy: Scripted, k: int) -> list[str]:
    """Split j1 in ``k`` parts, start a worker for each, register them, assign the parts."""
    policy.answers = [
        Decisions(split=(Split("j1", k),)),
        Decisions(start=tuple(StartWorker("small") for _ in range(k))),
    ]
    step = core.handle(Decide(), 0.0)
    assert codes(step)[0] == "EV15"
    workers = [w.worker_id for w in launched(step)]
    for w in workers:
        core.handle(Registered(w, "n1", 2, 4.0), 1.0)
    policy.answers = [
        Decisions(assign=tuple(Assign(f"j1#{i}", w) for i, w in enumerate(workers, 1)))
    ]
    core.handle(Decide(), 1.0)
    return workers


def test_a_ladder_in_parts_then_its_packaging(cores: list[Core]) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=4)
    core.handle(Submitted(streaming_job(thumbnails=True, quality=True)), 0.0)
    assert core.state.view(0.0).waiting[0].frames == 3  # the parts it is worth
    workers = split_and_start(core, policy, 3)
    job = core.state.jobs["j1"]
    # Each part's work is its renditions' share of the whole; the view says so.
    plan = parts.Plan(parts.plan(job.outputs or [], True, 720, 3))
    busy = sorted(w.job_work or 0.0 for w in core.state.view(1.0).busy)
    want = sorted(job_work(job) * parts.share(plan, n) for n in (1, 2, 3))
    assert busy == pytest.approx(want) and sum(busy) == pytest.approx(job_work(job))
    task = core.state.tasks[core.state.workers[workers[0]].task_id or ""]
    assert task_output(job, task).endswith("/master-p1.m3u8")
    # Each part reports the quality of its own renditions: the job keeps them all.
    for n, w in enumerate(workers, 1):
        tid = core.state.workers[w].task_id or ""
        core.handle(Reported(w, tid, "started"), 2.0)
        core.handle(Reported(w, tid, "downloaded"), 2.0)
        figures = [
            {"output": "hls", "rendition": u.rendition + 1, "vmaf": 90.0 + u.rendition}
            for u in parts.plan(job.outputs or [], True, 720, 3)[n - 1]
            if u.output >= 0
        ]
        core.handle(Reported(w, tid, "transcoded", 1.0, {"renditions": figures, "seconds": 1}), 3.0)
        step = core.handle(Reported(w, tid, "uploaded"), 4.0)
        assert codes(step) == ["EV16"]
    quality = core.state.jobs["j1"].quality_figures or {}
    assert [r["rendition"] for r in quality["renditions"]] == [1, 2, 3, 4]
    assert quality["seconds"] == 3
    assert list(core.state.waiting) == [part_id("j1", "merge", 0)]
    policy.answers = [Decisions(assign=(Assign("j1#merge", workers[1]),))]
    core.handle(Decide(), 5.0)
    done = run_task(core, workers[1], 6.0)
    folder = "bbb_1-j1"
    assert codes(done) == ["EV7"]
    partials = tuple(f"{folder}/master-p{n}.m3u8" for n in (1, 2, 3))
    assert Delete(partials, files=True) in done.actions
    j = core.state.jobs["j1"]
    assert (j.state, j.output) == (JobState.COMPLETED, f"{folder}/master.m3u8")


def test_mp4_renditions_in_parts_complete_with_the_last_one(cores: list[Core]) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=4)
    renditions = [{"height": 720, "video_bitrate": 3000}, {"height": 480, "video_bitrate": 1500}]
    two = OutputSpec.model_validate({"container": "mp4", "renditions": renditions})
    j = streaming_job()
    j.outputs = dump(fit([two], 720))
    core.handle(Submitted(j), 0.0)
    a, b = split_and_start(core, policy, 2)
    first = run_task(core, a, 2.0)
    assert codes(first) == ["EV16"]  # a part, not the job's output
    last = run_task(core, b, 3.0)
    assert codes(last) == ["EV7"] and not core.state.waiting
    done = core.state.jobs["j1"]
    assert done.state is JobState.COMPLETED and done.ready_at() == 6.0


def test_a_part_that_fails_is_retried_alone_and_a_cancel_deletes_the_folder(
    cores: list[Core],
) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=4)
    core.handle(Submitted(streaming_job()), 0.0)
    a, b = split_and_start(core, policy, 2)
    run_task(core, a, 2.0)
    tid = core.state.workers[b].task_id or ""
    core.handle(Failed(b, tid, "storage", "upload refused"), 3.0)
    assert list(core.state.waiting) == ["j1#2"]
    step = core.handle(Cancel("j1", "asked"), 4.0)
    (delete,) = [a for a in step.actions if isinstance(a, Delete)]
    assert delete.names == ("bbb_1-j1/master.m3u8",)  # the folder, through its main file


def test_a_split_ladder_is_refused_beyond_its_worth_and_restored_after_a_restart(
    cores: list[Core],
) -> None:
    policy = Scripted()
    core = new_core(cores, policy, max_workers=4)
    core.handle(Submitted(streaming_job()), 0.0)
    policy.answers = [Decisions(split=(Split("j1", 4),))]  # worth 3 at most
    core.handle(Decide(), 0.0)
    assert core.state.refused == {"split: this job's outputs are worth 2..3 parts": 1}
    a, _b = split_and_start(core, policy, 2)
    run_task(core, a, 2.0)
    job = core.state.jobs["j1"]
    again = new_core(cores, Scripted(), max_workers=4)
    again.handle(Recover((copy.deepcopy(job),), (), ()), 10.0)
    assert list(again.state.waiting) == ["j1#2"]


# ---- the controller and the worker ---------------------------------------------------------


def test_a_part_may_write_its_own_files_alone() -> None:
    job = streaming_job(thumbnails=True)
    job.chunks, job.state = 3, JobState.STARTED
    mine = task_makes(job, Task("t1", "j1", "w1", 0.0, part="chunk", index=3))
    assert mine("hls-2-00001.m4s") and mine("master-p3.m3u8")
    assert not mine("hls-0-00001.m4s") and not mine("master.m3u8") and not mine("poster.jpg")
    merge = task_makes(job, Task("t2", "j1", "w1", 0.0, part="merge"))
    assert merge("master.m3u8") and not merge("master-p1.m3u8")


def test_a_part_encodes_its_units_with_the_names_the_whole_job_would_give() -> None:
    outs = ladder("dash-ladder")
    spec = TaskSpec(
        task_id="t", job_id="j", input_name="a.mp4", output_name="a-j/manifest-p2.mpd",
        input_url="http://x", bitrate_kbps=1, speed="fast", kind="chunk", chunk_index=2,
        chunks=2, outputs=outs, units=[{"output": 0, "rendition": 1, "audio": False},
                                       {"output": 0, "rendition": 3, "audio": False}],
    )  # fmt: skip
    (piece,) = pieces(spec)
    assert [i for i, _ in piece.items] == [1, 3]
    assert all(r.audio_bitrate is None for _, r in piece.items)
    assert (piece.manifest, piece.dash) == ("manifest-p2.mpd", "dash-p2-")


MASTER_1 = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-STREAM-INF:BANDWIDTH=3300000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
hls-0.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"
hls-3.m3u8
"""
MASTER_2 = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-STREAM-INF:BANDWIDTH=2100000,RESOLUTION=960x540,CODECS="avc1.64001f,mp4a.40.2"
hls-1.m3u8
"""


def test_packaging_lists_every_variant_in_rendition_order() -> None:
    merged = merge_masters([MASTER_1, MASTER_2])
    lines = merged.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:7"]
    assert [x for x in lines if x.endswith(".m3u8")] == ["hls-0.m3u8", "hls-1.m3u8", "hls-3.m3u8"]
    assert merged.count("#EXT-X-STREAM-INF") == 3
    with pytest.raises(Exception, match="EXTM3U"):
        merge_masters(["not a playlist"])


def mpd(prefix: str, reps: list[tuple[str, str, int]]) -> str:
    sets: dict[str, list[str]] = {}
    for rid, kind, height in reps:
        size = f' width="{height * 16 // 9}" height="{height}"' if kind == "video" else ""
        sets.setdefault(kind, []).append(
            f'<Representation id="{rid}" mimeType="{kind}/mp4" bandwidth="1"{size}>'
            f'<SegmentTemplate timescale="1" initialization="{prefix}$RepresentationID$-init.m4s"'
            f' media="{prefix}$RepresentationID$-$Number%05d$.m4s"/></Representation>'
        )
    body = "".join(
        f'<AdaptationSet id="{i}" contentType="{k}">{"".join(r)}</AdaptationSet>'
        for i, (k, r) in enumerate(sets.items())
    )
    return f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period id="0">{body}</Period></MPD>'


def test_packaging_puts_every_representation_in_one_mpd_with_its_own_files() -> None:
    one = mpd("dash-p1-", [("0", "video", 720), ("1", "audio", 0)])
    two = mpd("dash-p2-", [("0", "video", 360), ("1", "video", 540)])
    root = ET.fromstring(merge_manifests([one, two]))
    sets = root.findall(f"{MPD}Period/{MPD}AdaptationSet")
    assert [s.get("contentType") for s in sets] == ["video", "audio"]
    video = sets[0].findall(f"{MPD}Representation")
    assert [r.get("height") for r in video] == ["720", "540", "360"]
    assert sets[0].get("maxHeight") == "720"
    inits = [r.find(f"{MPD}SegmentTemplate").get("initialization") for r in video]  # type: ignore[union-attr]
    assert inits == ["dash-p1-0-init.m4s", "dash-p2-1-init.m4s", "dash-p2-0-init.m4s"]
    ids = [r.get("id") for r in root.iter(f"{MPD}Representation")]
    assert len(set(ids)) == len(ids) == 4


def test_a_jobs_figures_say_what_each_part_made(cores: list[Core]) -> None:
    from dacirco.api.job_figures import job_figures

    policy = Scripted()
    core = new_core(cores, policy, max_workers=4)
    core.handle(Submitted(streaming_job(thumbnails=True)), 0.0)
    split_and_start(core, policy, 3)
    st = core.state
    job = st.jobs["j1"]
    tasks = [st.tasks[t] for t in st.job_tasks["j1"]]
    made = [a.renditions for a in job_figures(job, tasks, st.workers, 2.0).attempts]
    assert made == [["hls 720p"], ["hls 540p", "thumbnails"], ["hls 432p", "hls 360p"]]
