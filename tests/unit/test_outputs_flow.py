"""A streaming job through a real controller (fake runtime, fake clock): its task, its folder's
upload URLs, the upload checked as a whole, its files listed and served through play URLs,
and its folder deleted with it; and the worker's ffmpeg commands."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from dacirco.api.app import create_controller_app
from dacirco.core.errors import ReportRefused
from dacirco.domain import Codec, JobState, Speed
from dacirco.outputs.presets import PRESETS
from dacirco.outputs.spec import Container, OutputSpec, Rendition
from dacirco.worker.ffmpeg import TranscodeError
from dacirco.worker.ladder import build_streaming_command
from tests.unit.api_stub import client
from tests.unit.conftest import Harness, Make

FILES = {
    "hls-0-init.mp4": b"init",
    "hls-0-00000.m4s": b"segment",
    "hls-0.m3u8": b'#EXTM3U\n#EXT-X-MAP:URI="hls-0-init.mp4"\n#EXTINF:6.0,\nhls-0-00000.m4s\n',
    "master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhls-0.m3u8\n",
}


async def streaming_task(h: Harness):
    job = await h.controller.submit(
        "bbb_1.mp4",
        0,
        Speed.ULTRAFAST,
        Codec.H264,
        reuse=False,
        outputs=list(PRESETS["hls-ladder"].outputs),
        preset="hls-ladder",
    )
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    task = await h.poll(worker)
    assert task is not None
    return job, worker, task


async def test_a_streaming_task_uploads_a_folder_and_is_played_from_it(make: Make):
    h = make()
    job, worker, task = await streaming_task(h)
    folder = f"bbb_1-{job.id}"
    assert task.output_name == f"{folder}/master.m3u8"
    assert task.outputs is not None and task.outputs[0].container is Container.HLS
    # No input height in this catalog: the whole ladder, 1080p included.
    assert [r.height for r in task.outputs[0].renditions] == [1080, 720, 540, 432, 360]

    grant = await h.controller.upload_url(h.auth(worker.id), task.task_id, list(FILES))
    assert set(grant.urls) == set(FILES) and not grant.url
    for url in grant.urls.values():
        key = urlsplit(url).path.removeprefix("/files/")
        assert h.controller.upload_refusal(task.task_id, key) is None
    assert h.controller.upload_refusal(task.task_id, "output-videos/other/x.m4s")
    with pytest.raises(ReportRefused):
        await h.controller.upload_url(h.auth(worker.id), task.task_id, ["../x.m4s"])

    for step in ("started", "downloaded", "transcoded"):
        await h.report(worker, task, step)
    for name, data in FILES.items():
        h.upload(f"{folder}/{name}", data)
    with pytest.raises(ReportRefused, match="not the 5 reported"):
        await h.report(worker, task, "uploaded", bytes=5)
    await h.report(worker, task, "uploaded", bytes=sum(map(len, FILES.values())))
    assert h.controller.jobs[job.id].state is JobState.COMPLETED

    app = create_controller_app(h.controller, h.controller.storage)
    async with client(app) as http:
        listing = (await http.get(f"/jobs/{job.id}/outputs")).json()
        assert {f["name"]: f["size"] for f in listing["files"]} == {
            n: len(d) for n, d in FILES.items()
        }
        play = urlsplit(listing["playlists"]["hls"]).path
        assert "dash" not in listing["playlists"]
        master = await http.get(play)
        assert master.status_code == 200 and master.content == FILES["master.m3u8"]
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        segment = await http.get(play.replace("master.m3u8", "hls-0-00000.m4s"))
        assert segment.status_code == 307
        assert urlsplit(segment.headers["location"]).path.endswith(f"{folder}/hls-0-00000.m4s")
        got = await http.get(urlsplit(segment.headers["location"]).path, params=dict(
            httpx.QueryParams(urlsplit(segment.headers["location"]).query)
        ))  # fmt: skip
        assert got.content == b"segment"
        # A player in another site's page may read them (CORS), the API stays closed to it.
        page = {"Origin": "https://player.example.org"}
        preflight = {**page, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "range"}  # fmt: skip
        for url in (play, urlsplit(segment.headers["location"]).path):
            pre = await http.options(url, headers=preflight)
            assert pre.status_code == 200, pre.text
            assert pre.headers["access-control-allow-origin"] == "*"
            assert "GET" in pre.headers["access-control-allow-methods"]
            assert "range" in pre.headers["access-control-allow-headers"].lower()
        for answer in (
            await http.get(play, headers=page),
            await http.get(play.replace("master.m3u8", "hls-0-00000.m4s"), headers=page),
            await http.get(play.replace(folder, "bbb_1-other"), headers=page),  # a 403 too
        ):
            assert answer.headers["access-control-allow-origin"] == "*", answer.status_code
        api = await http.get(f"/jobs/{job.id}/outputs", headers=page)
        assert "access-control-allow-origin" not in api.headers
        assert (await http.options(f"/jobs/{job.id}", headers=preflight)).status_code == 405
        # Another folder, a stale or forged signature, a file that is not there: refused.
        assert (await http.get(play.replace(folder, "bbb_1-other"))).status_code == 403
        _, _, name, expires, sig, file = play.split("/")
        assert (await http.get(f"/play/{name}/{expires}/{'0' * 64}/{file}")).status_code == 403
        assert (await http.get(f"/play/{name}/x/{sig}/{file}")).status_code == 401
        assert (await http.get(play.replace("master", "other"))).status_code == 404
        h.clock.advance(7 * 3600)
        assert (await http.get(play)).status_code == 403
        # The classic route leads to the master playlist, through a play URL.
        out = await http.get(f"/jobs/{job.id}/output")
        assert out.status_code == 307 and "/play/" in out.headers["location"]


async def test_a_canceled_streaming_job_leaves_no_file_behind(make: Make):
    h = make()
    job, worker, task = await streaming_task(h)
    folder = f"bbb_1-{job.id}"
    await h.report(worker, task, "started")
    for name, data in FILES.items():
        h.upload(f"{folder}/{name}", data)
    await h.controller.cancel(job.id)
    for _ in range(200):  # the deletion runs in a thread, after the step: up to 10 s
        if not h.controller.storage.list(f"output-videos/{folder}"):
            break
        await asyncio.sleep(0.05)
    assert h.controller.storage.list(f"output-videos/{folder}") == []


async def test_a_classic_request_never_gets_a_streaming_jobs_output(make: Make):
    h = make()
    ladder, _, _ = await streaming_task(h)
    classic = await h.controller.submit("bbb_1.mp4", ladder.bitrate, Speed.ULTRAFAST, Codec.H264)
    assert classic.reused_from is None and classic.outputs is None


async def test_identical_streaming_requests_share_one_encode(make: Make):
    h = make()

    async def ladder(preset: str):
        outputs = list(PRESETS[preset].outputs)
        return await h.controller.submit(
            "bbb_1.mp4", 0, Speed.FAST, Codec.H264, outputs=outputs, preset=preset
        )

    first, second, other = (
        await ladder("hls-ladder"),
        await ladder("hls-ladder"),
        await ladder("dash-ladder"),
    )
    assert second.reused_from == first.id and other.reused_from is None


def test_the_hls_command_aligns_keyframes_and_muxes_audio_per_variant():
    out = PRESETS["hls-ladder"].outputs[0]
    cmd = build_streaming_command("in.mp4", out, speed="fast", fps=25)
    text = " ".join(cmd)
    assert "split=5[s0][s1][s2][s3][s4]" in text and "[s4]scale=-2:360[v4]" in text
    assert cmd[cmd.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*6)"
    assert cmd[cmd.index("-g") + 1] == "150" and "-sc_threshold:v:4" in cmd
    variants = "v:0,a:0,name:0 v:1,a:1,name:1 v:2,a:2,name:2 v:3,a:3,name:3 v:4,a:4,name:4"
    assert cmd[cmd.index("-var_stream_map") + 1] == variants  # files named by rendition
    assert cmd[cmd.index("-b:v:1") + 1] == "3000k" and cmd[cmd.index("-bufsize:v:1") + 1] == "1500k"
    assert cmd[-1] == "hls-%v.m3u8" and "master.m3u8" in cmd


def test_the_dash_command_shares_one_audio_representation_per_bitrate():
    out = OutputSpec(
        container=Container.DASH,
        renditions=[
            Rendition(height=720, video_bitrate=3000, codec="hevc"),
            Rendition(height=360, video_bitrate=700),
            Rendition(audio_bitrate=64),
        ],
        segment_seconds=2,
    )
    cmd = build_streaming_command("in.mp4", out, speed="ultrafast")
    assert cmd.count("0:a:0") == 2  # 128k (shared by both videos) and 64k
    assert cmd[cmd.index("-c:v:0") + 1] == "libx265" and "-forced-idr:v:0" in cmd
    assert cmd[cmd.index("-adaptation_sets") + 1] == "id=0,streams=v id=1,streams=a"
    assert "-g" not in cmd  # no frame rate known: the forced keyframes alone
    with pytest.raises(TranscodeError, match="no audio"):
        build_streaming_command("in.mp4", out, speed="ultrafast", has_audio=False)


def test_mp4_renditions_are_files_of_their_own():
    cmd = build_streaming_command("in.mp4", PRESETS["audio"].outputs[0], speed="fast")
    assert "-filter_complex" not in cmd and cmd[-1] == "1-audio-128k.m4a"
    cmd = build_streaming_command("in.mp4", PRESETS["mp4-720p"].outputs[0], speed="fast")
    assert cmd[-1] == "1-720p-3000k.mp4" and "+faststart" in cmd


def test_retention_deletes_a_streaming_jobs_whole_folder(tmp_path):
    from dacirco.controller.retention import delete_objects
    from dacirco.storage.local import LocalStorage

    storage = LocalStorage(tmp_path)
    source = tmp_path / "file.bin"
    for name, data in FILES.items():
        source.write_bytes(data)
        storage.put_file(f"output-videos/bbb_1-j1/{name}", source)
    assert delete_objects(storage, ["bbb_1-j1/master.m3u8", "bbb_1-j2/master.m3u8"]) == (
        1,
        sum(map(len, FILES.values())),
    )
    assert not (tmp_path / "output-videos" / "bbb_1-j1").exists()
