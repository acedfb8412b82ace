"""Measured quality end to end: a real service and worker transcode with ``"quality": true``;
a rendition encoded at a much lower bitrate scores lower than a good one of the same input;
the figures are in ``GET /jobs/{id}``, in the event log (EV21, while the classic CSV files
are still made) and in ``dacirco report``."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from dacirco.cli import app

pytestmark = pytest.mark.slow

LADDER = {
    "container": "hls",
    "segment_seconds": 1,
    "renditions": [
        {"height": 360, "video_bitrate": 1500},
        {"height": 360, "video_bitrate": 100},  # deliberately bad
    ],
}


def test_quality_is_measured_stored_logged_and_reported(service_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    svc = service_factory("--max-workers", "1")
    body = {"id_video": "bbb_5.mp4", "outputs": [LADDER], "quality": True, "speed": "ultrafast"}
    resp = svc.client.post("/jobs", json=body)
    assert resp.status_code == 201, resp.text
    ladder = resp.json()
    classic = svc.submit(id_video="bbb_5.mp4", bitrate=6000, quality=True)
    for job in (ladder, classic):
        assert svc.wait_state(job, {"Completed", "Error"}, timeout=180) == "Completed", (
            svc.client.get(f"/jobs/{job}").json()["error"]
        )

    shown = svc.client.get(f"/jobs/{ladder}").json()
    assert shown["quality"] is True
    good, bad = shown["quality_figures"]["renditions"]
    assert (good["output"], good["rendition"], good["height"]) == ("hls", 1, 360)
    assert good["vmaf"] > bad["vmaf"] + 10, (good, bad)
    assert good["psnr"] > bad["psnr"] and good["ssim"] > bad["ssim"], (good, bad)
    (whole,) = svc.client.get(f"/jobs/{classic}").json()["quality_figures"]["renditions"]
    assert whole["output"] == "mp4" and whole["height"] is None and whole["video_bitrate"] == 6000
    assert whole["vmaf"] > bad["vmaf"] and whole["frames"] >= 1

    lines = [e for e in svc.events() if e["code"] == "EV21"]
    assert [(e["request_id"], e["rendition"]) for e in lines] == [
        (ladder, 1), (ladder, 2), (classic, 1)
    ]  # fmt: skip
    assert lines[0]["description"] == "Quality measured" and lines[0]["vmaf"] == good["vmaf"]

    runner = CliRunner()
    done = runner.invoke(app, ["process-logs", str(svc.event_log)])
    assert done.exit_code == 0, done.output
    ok = svc.event_log.with_name(svc.event_log.stem + "-ok-requests.csv")
    with ok.open(newline="") as f:
        assert {r["request_id"] for r in csv.DictReader(f)} == {ladder, classic}
    report = runner.invoke(
        app, ["report", str(svc.event_log), "--out", str(tmp_path / "report")], terminal_width=200
    )
    assert report.exit_code == 0, report.output
    assert "renditions measured (quality)" in report.output and "VMAF avg / min" in report.output
    assert f"{bad['vmaf']:.2f}" in report.output  # the worst rendition, and its own row
    assert "measured quality" in report.output
