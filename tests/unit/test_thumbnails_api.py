"""Thumbnails asked for: ``"thumbnails": {"every": N}`` checked with field-named 422s, kept
with the job and sent to its worker; the WebVTT index's cues (pure)."""

from __future__ import annotations

import pytest

from dacirco.api.app import create_controller_app
from dacirco.worker.thumbnails import grid, tile_count, webvtt
from tests.unit.api_stub import client
from tests.unit.conftest import Make
from tests.unit.test_outputs_api import add_movie

HLS = {"container": "hls", "renditions": [{"height": 360, "video_bitrate": 800}]}


def body(**fields: object) -> dict:
    return {"id_video": "movie720.mp4", "speed": "fast", "outputs": [HLS], **fields}


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (body(thumbnails={"every": 0.5}),
         "thumbnails.every: Input should be greater than or equal to 1"),
        (body(thumbnails={"every": 61}),
         "thumbnails.every: Input should be less than or equal to 60"),
        (body(thumbnails={"every": "often"}), "thumbnails.every: Input should be a valid number"),
        (body(thumbnails={}), "thumbnails.every: Field required"),
        (body(thumbnails={"every": 5, "size": 3}),
         "thumbnails.size: Extra inputs are not permitted"),
        (body(thumbnails=None), "thumbnails: must not be null"),
        ({"id_video": "movie720.mp4", "bitrate": 1000, "speed": "fast", "thumbnails": {"every": 5}},
         "thumbnails: only with a preset or outputs"),
    ],
)  # fmt: skip
async def test_bad_thumbnails_get_a_422_naming_the_field(make: Make, job, message):
    h = make()
    add_movie(h, "movie720.mp4", 720)
    async with client(create_controller_app(h.controller, h.controller.storage)) as http:
        resp = await http.post("/jobs", json=job)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"].startswith(message), resp.json()["message"]


async def test_thumbnails_are_kept_with_the_job_and_sent_to_its_worker(make: Make):
    h = make()
    add_movie(h, "movie720.mp4", 720)
    async with client(create_controller_app(h.controller, h.controller.storage)) as http:
        resp = await http.post("/jobs", json=body(thumbnails={"every": 4}))
        assert resp.status_code == 201, resp.text
        shown = (await http.get(f"/jobs/{resp.json()}")).json()
        # The same request without thumbnails asks for other files: it does not reuse.
        other = (await http.post("/jobs", json=body())).json()
        assert (await http.get(f"/jobs/{other}")).json()["reused_from"] is None
    assert shown["thumbnails"] == {"every": 4.0}
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    task = await h.poll(worker)
    assert task is not None and task.thumbnails_every == 4.0


def test_the_index_covers_the_movie_tile_by_tile_across_sheets():
    assert tile_count(10.0, 3.0) == 4 and tile_count(9.0, 3.0) == 3 and tile_count(0.5, 5) == 1
    assert grid(4) == (4, 1) and grid(25) == (10, 3) and grid(250) == (10, 10)
    text = webvtt(250.0, 1.0, (160, 90))
    cues = text.strip().split("\n\n")[1:]
    assert text.startswith("WEBVTT\n\n") and len(cues) == 250
    assert cues[0] == "00:00:00.000 --> 00:00:01.000\nsprite-1.jpg#xywh=0,0,160,90"
    assert cues[11] == "00:00:11.000 --> 00:00:12.000\nsprite-1.jpg#xywh=160,90,160,90"
    assert cues[100] == "00:01:40.000 --> 00:01:41.000\nsprite-2.jpg#xywh=0,0,160,90"
    assert cues[249] == "00:04:09.000 --> 00:04:10.000\nsprite-3.jpg#xywh=1440,360,160,90"
    last = webvtt(10.5, 4.0, (160, 90)).strip().split("\n\n")[-1]
    assert last == "00:00:08.000 --> 00:00:10.500\nsprite-1.jpg#xywh=320,0,160,90"
