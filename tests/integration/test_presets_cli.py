"""`dacirco presets` against a real `dacirco serve`: an operator's preset added from a JSON
file, listed, shown, refused when bad (one line naming the field, exit 2), the shipped ones
kept; a job naming it runs on a real worker with its outputs, quality and thumbnails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from tests.conftest import start_service

pytestmark = pytest.mark.slow

PRESET = {
    "description": "360p and 180p HLS, measured, with thumbnails",
    "outputs": [
        {
            "container": "hls",
            "segment_seconds": 1,
            "renditions": [
                {"height": 360, "video_bitrate": 800},
                {"height": 180, "video_bitrate": 200},
            ],
        }
    ],
    "quality": True,
    "thumbnails": {"every": 1},
}


def test_presets_commands_on_a_real_service(catalog_dir: Path, tmp_path: Path) -> None:
    svc = start_service(catalog_dir, tmp_path)
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["presets", *args, "--url", svc.url], terminal_width=200)

    try:
        good = tmp_path / "small-ladder.json"
        good.write_text(json.dumps(PRESET))
        added = run("add", "small-ladder", str(good))
        assert added.exit_code == 0, added.output
        assert added.output.strip() == (
            "small-ladder: hls: 360p 800k, 180p 200k (+ quality, thumbnails)"
        )
        listed = run("list")
        assert listed.exit_code == 0 and "small-ladder" in listed.output
        assert "operator" in listed.output and "hls-ladder" in listed.output
        shown = run("show", "small-ladder")
        assert json.loads(shown.output)["outputs"][0]["renditions"][1]["height"] == 180

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(PRESET | {"thumbnails": {"every": 90}}))
        refused = run("add", "bad-one", str(bad))
        assert refused.exit_code == 2
        assert refused.stderr.strip() == (
            "error: thumbnails.every: Input should be less than or equal to 60"
        )
        shipped = run("remove", "hls-ladder")
        assert shipped.exit_code == 2
        assert "'hls-ladder' is a shipped preset: it cannot be replaced or removed" in (
            shipped.stderr
        )
        missing = run("add", "x", str(tmp_path / "nope.json"))
        assert missing.exit_code == 2 and missing.stderr.startswith("error: cannot read ")

        # A job naming it: its outputs, quality and thumbnails, for real.
        resp = svc.client.post("/jobs", json={"id_video": "bbb_5.mp4", "preset": "small-ladder"})
        assert resp.status_code == 201, resp.text
        job_id = resp.json()
        assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed"
        job = svc.client.get(f"/jobs/{job_id}").json()
        assert job["preset"] == "small-ladder"
        heights = [r["height"] for r in job["quality_figures"]["renditions"]]
        assert heights == [360, 180]
        listing = svc.client.get(f"/jobs/{job_id}/outputs").json()
        assert {"poster.jpg", "thumbnails.vtt", "master.m3u8"} <= {
            f["name"] for f in listing["files"]
        }

        removed = run("remove", "small-ladder")
        assert removed.exit_code == 0 and removed.output.strip() == "small-ladder: removed"
        assert run("show", "small-ladder").exit_code == 2
    finally:
        svc.stop()
