"""A long streaming job split in time (``outputs.spans``): when a job may be split so, in how
many spans, which files each span makes, and what the core and the controller make of it."""

from __future__ import annotations

import pytest

from dacirco.analytics.logs import build
from dacirco.analytics.quality import quality_rows
from dacirco.analytics.run import JobSpan, RunData
from dacirco.core.effects import Step
from dacirco.core.quality import measured
from dacirco.core.work import split_into
from dacirco.domain import Job, Speed, Task, rendition_parts, task_output
from dacirco.outputs import part_files, parts, spans
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import dump, fit
from dacirco.protocol import QualityReport


def ladder(preset: str = "hls-ladder", height: int = 720) -> list[dict]:
    return dump(fit(PRESETS[preset].outputs, height))


def job(duration: float, preset: str = "hls-ladder", **fields) -> Job:
    return Job(
        id="j1",
        id_video="bbb_1.mp4",
        bitrate=4000,
        speed=Speed.ULTRAFAST,
        outputs=ladder(preset),
        input_height=720,
        input_duration=duration,
        input_fps=25,
        input_frames=round(duration * 25),
        received_at=0.0,
        **fields,
    )


@pytest.mark.parametrize(
    ("duration", "most"),
    [(10, 1), (39.9, 1), (47.9, 1), (48, 2), (60, 2), (72, 3), (600, 16), (None, 1)],
)
def test_a_span_holds_at_least_twenty_seconds_of_whole_segments(duration, most) -> None:
    # hls-ladder: 6 s segments, so a span is at least 4 segments (24 s).
    assert spans.most_spans(ladder(), duration) == most


def test_mp4_outputs_and_mixed_segments_keep_a_job_whole_in_time() -> None:
    assert spans.most_spans(ladder("mp4-720p"), 600) == 1
    mixed = [*ladder(), {**ladder("dash-ladder")[0], "segment_seconds": 4}]
    assert spans.most_spans(mixed, 600) == 1
    both = ladder() + ladder("dash-ladder")
    assert spans.most_spans(both, 600) == 16


def test_spans_cut_whole_segments_the_last_to_the_end() -> None:
    cut = spans.spans(ladder(), 100.5, 3)  # 17 segments, the last one 4.5 s
    assert [(s.first, s.last, s.final) for s in cut] == [
        (0, 5, False),
        (5, 11, False),
        (11, 17, True),
    ]
    assert [s.start for s in cut] == [0, 30, 66]
    assert [s.length for s in cut] == [30, 36, None]


def test_a_long_job_splits_in_time_before_splitting_its_renditions() -> None:
    outs = ladder(height=720)  # 720p..360p: worth 3 groups of renditions
    assert parts.most_groups(outs, True, 720) == 3
    assert parts.most_parts(outs, True, 720, 180) == 7  # 30 segments, 4 a span at least
    made = parts.layout(outs, True, 720, 4, duration=180)
    assert made.spans is not None and len(made) == 4
    assert all(
        len(p) == len(parts.units(outs, False, 720)) + (n == 4) for n, p in enumerate(made, 1)
    )
    assert made.parts[3][-1].output == parts.THUMBNAILS  # by the last span, from the whole input
    assert sum(parts.share(made, n) for n in (1, 2, 3, 4)) == pytest.approx(1.0)
    assert parts.share(made, 4) > parts.share(made, 1)  # the thumbnails
    # Fewer spans than asked for are possible only by renditions: a short movie.
    short = parts.layout(outs, True, 720, 3, duration=40)
    assert short.spans is None and len(short) == 3


def test_each_span_owns_its_segments_and_playlists_and_the_first_the_init_segments() -> None:
    outs = ladder(height=720)
    made = parts.layout(outs, False, 720, 3, duration=90)  # 15 segments of 6 s
    assert [(s.first, s.last) for s in made.spans or []] == [(0, 5), (5, 10), (10, 15)]

    def owner(name: str) -> list[int]:
        return [n for n in (1, 2, 3) if part_files.owns(outs, made, n, name)]

    assert owner("hls-0-00000.m4s") == [1]
    assert owner("hls-2-00005.m4s") == [2]
    assert owner("hls-1-00014.m4s") == [3]
    assert owner("hls-1-00015.m4s") == [3]  # the last span runs to the end
    assert owner("hls-0-init.mp4") == [1]
    assert owner("hls-3-s2.m3u8") == [2]
    assert owner("master-p3.m3u8") == [3]
    assert owner("hls-0.m3u8") == [] and owner("master.m3u8") == []
    assert part_files.packaged(outs, made) == [f"hls-{i}.m3u8" for i in range(4)] + ["master.m3u8"]
    assert part_files.partials(outs, made)[:5] == [
        "master-p1.m3u8", "hls-0-s1.m3u8", "hls-1-s1.m3u8", "hls-2-s1.m3u8", "hls-3-s1.m3u8"
    ]  # fmt: skip
    assert len(part_files.partials(outs, made)) == 15
    assert part_files.made_by(outs, made, "merge", 0, "hls-2.m3u8")


def test_the_core_and_the_controller_see_the_spans() -> None:
    long = job(120.0)
    assert split_into(long) == 5  # 20 segments of 6 s, 4 a span at least
    assert split_into(job(30.0)) == 3  # by renditions: 720p | 540p | 432p + 360p
    assert split_into(job(120.0, quality=True)) == 5  # quality: measured span by span
    long.chunks = 2
    made = rendition_parts(long)
    assert made.spans is not None and [s.final for s in made.spans] == [False, True]
    task = Task(id="t", job_id="j1", worker_id="w", assigned_at=0, part="chunk", index=2)
    assert task_output(long, task).endswith("/master-p2.m3u8")


def _figures(vmaf: float, psnr: float, ssim: float, frames: int) -> dict:
    return {"output": "hls", "rendition": 1, "height": 720, "video_bitrate": 3000,
            "vmaf": vmaf, "psnr": psnr, "ssim": ssim, "frames": frames, "every": 12}  # fmt: skip


def test_the_spans_quality_is_pooled_by_frames_and_a_span_measured_again_replaces_its_own() -> None:
    long = job(120.0, quality=True)
    long.chunks = 2  # two spans in time

    def report(index: int, *figures: dict) -> Step:
        out = Step()
        task = Task(id=f"t{index}", job_id="j1", worker_id="w", assigned_at=0, part="chunk",
                    index=index)  # fmt: skip
        measured(out, long, task, {"renditions": list(figures), "seconds": 2.0}, 1.0)
        return out

    report(1, _figures(90.0, 40.0, 0.98, 10))
    out = report(2, _figures(100.0, 44.0, 0.99, 30))
    (pooled,) = long.quality_figures["renditions"]  # type: ignore[index]
    assert pooled["frames"] == 40 and pooled["vmaf"] == 97.5 and pooled["psnr"] == 43.0
    assert pooled["ssim"] == round((0.98 * 10 + 0.99 * 30) / 40, 5)
    assert long.quality_figures["seconds"] == 4.0  # type: ignore[index]
    assert [e.fields["span"] for e in out.emits] == [2] and out.emits[0].code == "EV21"
    report(2, _figures(80.0, 36.0, 0.97, 30))  # span 2 again: its figures replace its own
    (pooled,) = long.quality_figures["renditions"]  # type: ignore[index]
    assert pooled["frames"] == 40 and pooled["vmaf"] == 82.5
    # The API's model reads the pooled figures (the per-span ones are the job's own record).
    assert QualityReport.model_validate(long.quality_figures).renditions[0].vmaf == 82.5


def test_the_log_keeps_each_span_s_latest_quality_line() -> None:
    lines = [
        {"code": "EV21", "request_id": "j1", "task_id": t, "output": "hls", "rendition": 1,
         "span": span, "vmaf": vmaf}
        for t, span, vmaf in (("t1", 1, 90.0), ("t2", 2, 70.0), ("t3", 2, 80.0))
    ]  # fmt: skip
    events = [{**line, "time": f"2026-01-01T00:00:0{i}+00:00"} for i, line in enumerate(lines)]
    _, requests = build(events)
    assert [q["vmaf"] for q in requests["j1"].quality] == [90.0, 80.0]


def test_the_report_shows_a_rendition_measured_in_spans_once_pooled() -> None:
    lines = [
        {**_figures(90.0, 40.0, 0.98, 10), "span": 1},
        {**_figures(100.0, 44.0, 0.99, 30), "span": 2},
        {**_figures(70.0, 30.0, 0.90, 20), "rendition": 2},
    ]
    done = JobSpan("j1", 0.0, movie="bbb_1.mp4", state="Completed", quality=lines)
    rows = dict(quality_rows([RunData("run", 0.0, 1.0, nodes=[], workers=[], jobs=[done])]))
    assert rows["renditions measured (quality)"] == ["2"]
    assert rows["VMAF avg / min"] == [f"{(97.5 + 70.0) / 2:.2f} / 70.00"]
