"""Quality asked for and reported, on a real controller (stand-in runtime): ``"quality"``
checked with a field-named 422, sent to the worker, its figures stored with the job (across a
restart), shown in ``GET /jobs/{id}`` and logged as EV21 lines; a reused job shows its
source's figures."""

from __future__ import annotations

import pytest

from dacirco.api.app import create_controller_app
from dacirco.domain import Codec, Speed
from dacirco.outputs import presets
from dacirco.protocol import QualityReport
from tests.unit.api_stub import client
from tests.unit.conftest import Make

FIGURES = {
    "renditions": [
        {"output": "mp4", "rendition": 1, "height": None, "video_bitrate": 1000, "vmaf": 93.5,
         "psnr": 41.25, "ssim": 0.9871, "frames": 12, "every": 12},
    ],
    "seconds": 2.5,
}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "quality: Input should be a valid boolean"),
        (1, "quality: Input should be a valid boolean"),
        (None, "quality: Input should be a valid boolean"),
    ],
)
async def test_a_quality_that_is_not_a_boolean_is_a_422_naming_it(make: Make, value, message):
    h = make()
    body = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast", "quality": value}
    async with client(create_controller_app(h.controller, h.controller.storage)) as http:
        resp = await http.post("/jobs", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"].startswith(message), resp.json()["message"]


async def test_quality_figures_go_from_the_worker_to_the_job_and_the_log(make: Make):
    h = make()
    job = await h.controller.submit("bbb_1.mp4", 1000, Speed.FAST, Codec.H264, quality=True)
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    task = await h.poll(worker)
    assert task is not None and task.quality
    for step in ("started", "downloaded"):
        await h.report(worker, task, step)
    await h.report(worker, task, "transcoded", quality=QualityReport.model_validate(FIGURES))
    h.upload(task.output_name)
    await h.report(worker, task, "uploaded")
    assert h.controller.jobs[job.id].quality_figures == FIGURES
    (line,) = h.events("EV21")
    assert line["request_id"] == job.id and line["task_id"] == task.task_id
    assert (line["vmaf"], line["psnr"], line["ssim"], line["frames"]) == (93.5, 41.25, 0.9871, 12)
    assert h.codes().index("EV21") == h.codes().index("EV6") + 1

    # Shown by the API, and kept in the store (a finished job read back from SQLite).
    app = create_controller_app(h.controller, h.controller.storage)
    async with client(app) as http:
        shown = (await http.get(f"/jobs/{job.id}")).json()
        assert shown["quality"] is True and shown["quality_figures"] == FIGURES
        # An identical request asking for quality is served with this output and its figures.
        body = {"id_video": "bbb_1.mp4", "bitrate": 1000, "speed": "fast", "quality": True}
        twin = (await http.post("/jobs", json=body)).json()
        again = (await http.get(f"/jobs/{twin}")).json()
        assert again["reused_from"] == job.id and again["quality_figures"] == FIGURES
        # One that does not ask is another request: it runs on its own.
        plain = (await http.post("/jobs", json=body | {"quality": False})).json()
        assert (await http.get(f"/jobs/{plain}")).json()["reused_from"] is None
    stored = await h.controller.store.run(
        lambda db: db.execute("SELECT data FROM jobs WHERE id = ?", (job.id,)).fetchone()[0]
    )
    assert '"quality_figures": {"renditions": [{"output": "mp4"' in stored


async def test_a_preset_may_turn_quality_on_and_a_job_may_turn_it_off(make: Make, monkeypatch):
    h = make()
    measured = presets.Preset("audio-q", "audio, measured", presets.PRESETS["audio"].outputs, True)
    monkeypatch.setitem(presets.PRESETS, "audio-q", measured)
    async with client(create_controller_app(h.controller, h.controller.storage)) as http:
        on = (await http.post("/jobs", json={"id_video": "bbb_1.mp4", "preset": "audio-q"})).json()
        off = await http.post(
            "/jobs", json={"id_video": "bbb_1.mp4", "preset": "audio-q", "quality": False}
        )
        assert (await http.get(f"/jobs/{on}")).json()["quality"] is True
        assert (await http.get(f"/jobs/{off.json()}")).json()["quality"] is False
