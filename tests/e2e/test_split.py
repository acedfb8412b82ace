"""The controller and the REST API as two processes, as users who run them apart do."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, run_command, start_service

pytestmark = pytest.mark.slow


def test_rest_api_forwards_to_a_controller_running_apart(catalog_dir, tmp_path):
    controller = start_service(catalog_dir, tmp_path, "--max-idle-time", "1", command="controller")
    api_port = free_port()
    api = run_command(
        tmp_path,
        "rest-api",
        api_port,
        ["--port", str(api_port), "--controller-url", controller.url],
        controller.data_dir,
        controller.event_log,
    )
    try:
        resp = api.client.post(
            "/jobs", json={"id_video": "bbb_2.mp4", "bitrate": 2000, "speed": "ultrafast"}
        )
        assert resp.status_code == 201, resp.text
        job_id = resp.json()
        assert resp.headers["location"] == f"{api.url}/jobs/{job_id}"
        assert api.wait_state(job_id, {"Completed", "Error"}) == "Completed"
        assert api.client.get("/jobs").json()["items"] == [job_id]
        worker_id = api.client.get(f"/jobs/{job_id}").json()["worker_id"]
        assert api.client.get(f"/workers/{worker_id}").json()["id"] == worker_id
        output = api.client.get(f"/jobs/{job_id}/output")
        assert output.status_code == 307
        assert api.client.get(output.headers["location"]).status_code == 200

        # The controller's refusals come through with their status and message.
        unknown = api.client.post(
            "/jobs", json={"id_video": "nope.mp4", "bitrate": 2000, "speed": "fast"}
        )
        assert unknown.status_code == 422 and "nope.mp4" in unknown.json()["detail"]
        assert api.client.get("/jobs/missing").status_code == 404
        bad = api.client.post("/jobs", json={"id_video": "bbb_2.mp4", "bitrate": 1, "speed": "x"})
        assert bad.status_code == 422 and "bitrate" in bad.json()["message"]

        # Ids that are not plain words: the same 404 as the controller's own API, never a
        # 500 and never a redirect to a made-up URL.
        for odd, name in [("%3F", "?"), ("%23", "#"), ("%2e", "."), ("%2E%2E", ".."),
                          ("%3Fafter%3D", "?after="), ("a%2Fb", None)]:  # fmt: skip
            for route in ("/jobs/{}", "/jobs/{}/state", "/jobs/{}/output", "/workers/{}"):
                path = route.format(odd)
                resp = api.client.get(path)
                direct = controller.client.get(path)
                assert (resp.status_code, resp.json()) == (direct.status_code, direct.json()), path
                assert resp.status_code == 404 and "location" not in resp.headers, path
                if name is not None:
                    kind = route.split("/")[1][:-1]
                    assert resp.json()["message"] == f"{kind} {name!r} not found", path

        # Lists: complete without a limit; an empty `after` is no `after`, as in process.
        for path in ("/jobs", "/jobs?after=", "/workers", "/workers?after="):
            resp = api.client.get(path)
            assert resp.status_code == 200 and resp.json()["has_more"] is False, path
            assert resp.json() == controller.client.get(path).json(), path

        # Controller gone: a clear 503, not a 500.
        controller.stop()
        down = api.client.get("/jobs")
        assert down.status_code == 503 and "controller unreachable" in down.json()["detail"]
    finally:
        api.stop()
        controller.stop()
