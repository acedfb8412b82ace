"""Operators' presets through the public API, on a real controller and SQLite (and through
the split app): added, listed, shown, replaced and removed; checked on add as a job's body is
(422 naming the field); the shipped ones neither replaced nor removed (409); a job naming an
operator's preset gets its outputs, quality and thumbnails; kept in the database."""

from __future__ import annotations

import pytest

from dacirco.api.app import create_controller_app
from dacirco.controller.presets import PresetBook
from tests.unit.api_stub import client, split_app
from tests.unit.conftest import Make
from tests.unit.test_outputs_api import add_movie

MINE = {
    "description": "two HLS rungs, measured, with thumbnails",
    "outputs": [
        {
            "container": "hls",
            "renditions": [
                {"height": 1080, "video_bitrate": 5000},
                {"height": 480, "video_bitrate": 1200},
            ],
            "taller_than_input": "skip",
        }
    ],
    "quality": True,
    "thumbnails": {"every": 10},
}


@pytest.fixture(params=["service", "split"])
def api(request, make: Make):
    h = make()
    add_movie(h, "movie720.mp4", 720)
    app = create_controller_app(h.controller, h.controller.storage)
    return client(app if request.param == "service" else split_app(app)), h


async def test_a_preset_added_is_listed_shown_used_replaced_and_removed(api):
    http, _ = api
    async with http:
        added = await http.put("/presets/my-ladder", json=MINE)
        assert added.status_code == 201, added.text
        assert added.json()["name"] == "my-ladder" and added.json()["shipped"] is False
        names = [p["name"] for p in (await http.get("/presets")).json()["items"]]
        assert names == ["hls-ladder", "dash-ladder", "mp4-720p", "audio", "my-ladder"]
        shown = (await http.get("/presets/my-ladder")).json()
        assert shown["outputs"][0]["renditions"][1]["height"] == 480 and shown["quality"]

        job = await http.post("/jobs", json={"id_video": "movie720.mp4", "preset": "my-ladder"})
        assert job.status_code == 201, job.text
        body = (await http.get(f"/jobs/{job.json()}")).json()
        assert body["preset"] == "my-ladder" and body["quality"] is True
        assert [r["height"] for r in body["outputs"][0]["renditions"]] == [480]  # 1080p skipped
        assert body["thumbnails"] == {"every": 10.0}

        replaced = await http.put("/presets/my-ladder", json=MINE | {"quality": False})
        assert replaced.status_code == 200 and replaced.json()["quality"] is False
        assert (await http.delete("/presets/my-ladder")).status_code == 204
        gone = await http.post("/jobs", json={"id_video": "movie720.mp4", "preset": "my-ladder"})
        assert gone.status_code == 422
        assert gone.json()["message"].startswith("preset: unknown preset 'my-ladder' (known: ")
        assert (await http.get("/presets/my-ladder")).status_code == 404
        assert (await http.delete("/presets/my-ladder")).status_code == 404


@pytest.mark.parametrize(
    ("name", "body", "status", "message"),
    [
        ("mine", MINE | {"outputs": [{"container": "webm", "renditions": [{"audio_bitrate": 64}]}]},
         422, "outputs.0.container: Input should be 'mp4', 'hls' or 'dash'"),
        ("mine", MINE | {"outputs": [{"container": "hls", "renditions": [{"height": 361,
                                                                          "video_bitrate": 800}]}]},
         422, "outputs.0.renditions.0.height: Input should be a multiple of 2"),
        ("mine", MINE | {"thumbnails": {"every": 0}},
         422, "thumbnails.every: Input should be greater than or equal to 1"),
        ("mine", MINE | {"quality": "yes"}, 422, "quality: Input should be a valid boolean"),
        ("mine", {"description": "nothing"}, 422, "outputs: Field required"),
        ("mine", MINE | {"bitrate": 1000}, 422, "bitrate: Extra inputs are not permitted"),
        ("Mine!", MINE, 422, "name: String should match pattern"),
        ("hls-ladder", MINE, 409, "name: 'hls-ladder' is a shipped preset: it cannot be replaced"),
    ],
)  # fmt: skip
async def test_a_bad_preset_is_refused_naming_the_field(api, name, body, status, message):
    http, _ = api
    async with http:
        resp = await http.put(f"/presets/{name}", json=body)
        assert resp.status_code == status, resp.text
        assert resp.json()["message"].startswith(message), resp.json()["message"]
        assert (await http.get("/presets/mine")).status_code == 404  # nothing stored


async def test_shipped_presets_cannot_be_removed_and_operators_ones_are_stored(make: Make):
    h = make()
    async with client(create_controller_app(h.controller, h.controller.storage)) as http:
        refused = await http.delete("/presets/audio")
        assert refused.status_code == 409
        assert "'audio' is a shipped preset" in refused.json()["message"]
        assert (await http.put("/presets/keep-me", json=MINE)).status_code == 201
    again = PresetBook(h.controller.store)  # read back from SQLite, as after a restart
    kept = await again.get("keep-me")
    assert kept is not None and kept.quality and kept.thumbnails is not None
    assert kept.outputs[0].renditions[0].height == 1080


async def test_preset_routes_need_the_client_token(make: Make):
    h = make()
    app = create_controller_app(h.controller, h.controller.storage, api_tokens=["secret"])
    async with client(app) as http:
        assert (await http.put("/presets/mine", json=MINE)).status_code == 401
        assert (await http.get("/presets")).status_code == 401
        http.headers["Authorization"] = "Bearer secret"
        assert (await http.put("/presets/mine", json=MINE)).status_code == 201


@pytest.mark.parametrize("command", ["add", "list", "show", "remove"])
def test_every_presets_command_has_help(command):
    from typer.testing import CliRunner

    from dacirco.cli import app

    result = CliRunner().invoke(app, ["presets", command, "--help"], prog_name="dacirco")
    assert result.exit_code == 0, result.output
    assert f"Usage: dacirco presets {command}" in " ".join(result.output.split())
    assert "--url" in result.output and "--api-token" in result.output


async def test_the_python_clients_add_show_and_remove_a_preset(make: Make):
    import httpx

    from dacirco.client import AsyncClient
    from dacirco.client.errors import ApiError

    h = make()
    app = create_controller_app(h.controller, h.controller.storage)
    transport = httpx.ASGITransport(app=app)
    async with AsyncClient("http://api.test", transport=transport) as api:
        stored = await api.put_preset("mine", MINE)
        assert stored.name == "mine" and not stored.shipped and stored.quality
        assert [p.name for p in (await api.presets()).items][-1] == "mine"
        assert (await api.preset("mine")).thumbnails == {"every": 10.0}
        await api.delete_preset("mine")
        with pytest.raises(ApiError) as refused:
            await api.delete_preset("hls-ladder")
        assert refused.value.status == 409
