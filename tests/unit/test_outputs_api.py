"""Streaming outputs through the public API, on a real controller: presets and outputs checked
with field-named 422s (the fields alone, then against the input's height), on the service's
app and on the split one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dacirco.api.app import create_controller_app
from tests.unit.api_stub import client, split_app
from tests.unit.conftest import Harness, Make

HLS = {"container": "hls", "renditions": [{"height": 360, "video_bitrate": 800}]}


def add_movie(h: Harness, name: str, height: int) -> None:
    path = h.log_path.with_name(f"{name}.bin")
    path.write_bytes(b"\0" * 100)
    meta = {"duration": "10", "width": str(height * 16 // 9), "height": str(height), "fps": "25"}
    h.controller.storage.put_file(f"input-videos/{name}", path, metadata=meta)


@pytest.fixture(params=["service", "split"])
def api(request, make: Make):
    """An HTTP client on a real controller's app (or the split app in front of it) whose
    catalog holds a 720p movie and a 360p one."""
    h = make()
    add_movie(h, "movie720.mp4", 720)
    add_movie(h, "movie360.mp4", 360)
    app = create_controller_app(h.controller, h.controller.storage)
    return client(app if request.param == "service" else split_app(app)), h


def job(movie: str = "movie720.mp4", **fields: object) -> dict:
    return {"id_video": movie, "speed": "ultrafast", **fields}


def many(n: int) -> list[dict]:
    return [{"height": 144 + 2 * i, "video_bitrate": 200} for i in range(n)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (job(preset="nope"), "preset: unknown preset 'nope' (known: hls-ladder, dash-ladder, "
         "mp4-720p, audio)"),
        (job(outputs=[HLS | {"renditions": many(11)}]),
         "outputs.0.renditions: List should have at most 10 items after validation, not 11"),
        (job(outputs=[HLS | {"renditions": many(6)}, {"container": "dash", "renditions": many(5)}]),
         "outputs: at most 10 renditions in all, not 11"),
        (job(outputs=[HLS | {"segment_seconds": 0.5}]),
         "outputs.0.segment_seconds: Input should be greater than or equal to 1"),
        (job(outputs=[HLS | {"segment_seconds": 21}]),
         "outputs.0.segment_seconds: Input should be less than or equal to 20"),
        (job(outputs=[HLS | {"container": "webm"}]),
         "outputs.0.container: Input should be 'mp4', 'hls' or 'dash'"),
        (job(outputs=[HLS | {"renditions": [{"video_bitrate": 800, "codec": "vp9"}]}]),
         "outputs.0.renditions.0.codec: Input should be 'h264' or 'hevc'"),
        (job(outputs=[HLS | {"renditions": [{"height": 361, "video_bitrate": 800}]}]),
         "outputs.0.renditions.0.height: Input should be a multiple of 2"),
        (job(outputs=[HLS | {"renditions": [{"height": 360}]}]),
         "outputs.0.renditions.0: video_bitrate: required with a height"),
        (job(outputs=[HLS | {"taller_than_input": "crop"}]),
         "outputs.0.taller_than_input: Input should be 'refuse', 'skip' or 'upscale'"),
        (job(outputs=[HLS, HLS]), "outputs: at most one output per container"),
        (job(outputs=[]), "outputs: List should have at least 1 item after validation, not 0"),
        (job(outputs=None), "outputs: must not be null: leave the field out instead"),
        (job(preset="audio", bitrate=None), "bitrate: Input should be a valid integer"),
        (job(preset="hls-ladder", outputs=[HLS]), "outputs: give a preset or outputs, not both"),
        (job(preset="hls-ladder", bitrate=1000), "bitrate: not with a preset or outputs"),
        (job(preset="hls-ladder", codec="hevc"), "codec: not with a preset or outputs"),
        ({"id_video": "movie720.mp4", "speed": "fast"}, "bitrate: Field required"),
        # Against the input (720p): a taller rendition is refused unless the output says so.
        (job(outputs=[HLS | {"renditions": [{"height": 1080, "video_bitrate": 6000}]}]),
         "outputs.0.renditions.0.height: 1080p is taller than the input (720p)"),
        (job("movie360.mp4", preset="mp4-720p"),
         "preset: preset 'mp4-720p': rendition 1, 720p is taller than the input (360p)"),
        (job(outputs=[HLS | {"renditions": [{"height": 1080, "video_bitrate": 6000}],
                             "taller_than_input": "skip"}]),
         "outputs.0.renditions: every rendition is taller than the input (720p)"),
    ],
)  # fmt: skip
async def test_bad_outputs_get_a_422_naming_the_field(api, body, message):
    http, _ = api
    async with http:
        resp = await http.post("/jobs", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"].startswith(message), resp.json()["message"]


async def test_a_preset_is_fitted_to_its_input(api):
    http, _ = api
    async with http:
        resp = await http.post("/jobs", json=job(preset="hls-ladder"))
        assert resp.status_code == 201, resp.text
        shown = (await http.get(f"/jobs/{resp.json()}")).json()
    assert shown["preset"] == "hls-ladder" and shown["speed"] == "ultrafast"
    (out,) = shown["outputs"]
    heights = [r["height"] for r in out["renditions"]]
    assert heights == [720, 540, 432, 360]  # 1080p left out: the ladder never upscales
    assert out["container"] == "hls" and out["segment_seconds"] == 6
    assert shown["bitrate"] == 3000 + 2000 + 1100 + 730 + 4 * 128  # what the files weigh


async def test_upscaling_is_allowed_when_the_output_says_so(api):
    http, _ = api
    tall = {"height": 1080, "video_bitrate": 6000}
    body = job(outputs=[HLS | {"renditions": [tall], "taller_than_input": "upscale"}])
    async with http:
        resp = await http.post("/jobs", json=body)
        assert resp.status_code == 201, resp.text
        shown = (await http.get(f"/jobs/{resp.json()}")).json()
    assert shown["outputs"][0]["renditions"][0]["height"] == 1080
    assert shown["speed"] == "ultrafast"


async def test_a_streaming_job_defaults_to_fast_and_the_classic_body_is_unchanged(api):
    http, _ = api
    async with http:
        streaming = await http.post("/jobs", json={"id_video": "movie720.mp4", "preset": "audio"})
        classic = await http.post(
            "/jobs", json={"id_video": "movie720.mp4", "bitrate": 1000, "speed": "fast"}
        )
        one = (await http.get(f"/jobs/{streaming.json()}")).json()
        two = (await http.get(f"/jobs/{classic.json()}")).json()
    assert one["speed"] == "fast" and one["outputs"][0]["container"] == "mp4"
    assert two["outputs"] is None and two["preset"] is None and two["bitrate"] == 1000


async def test_outputs_of_a_job_not_done_or_classic_are_a_409(api):
    http, _ = api
    async with http:
        ladder = (await http.post("/jobs", json=job(preset="dash-ladder"))).json()
        resp = await http.get(f"/jobs/{ladder}/outputs")
        assert resp.status_code == 409 and "no outputs yet" in resp.json()["message"]
        assert (await http.get("/jobs/nope/outputs")).status_code == 404


def test_a_movie_path_is_never_an_output_folder(tmp_path: Path):
    from dacirco.storage.base import InvalidKey, check_key

    assert check_key("output-videos/bbb_1-j1/master.m3u8")
    for bad in ("input-videos/a/b.mp4", "output-videos/a/b/c.mp4", "output-videos/../x/y.mp4"):
        with pytest.raises(InvalidKey):
            check_key(bad)
