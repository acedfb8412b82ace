"""End to end on SLURM: the real `dacirco serve --runtime slurm` on the session's single-node
cluster (``slurm_cluster``). Another user's job holds every core at first: the worker's job
waits in SLURM's queue, is given back as "no room" (not counted against the job, which waits);
once the cores are free the job is transcoded by a worker that ran as a SLURM job, on the node
SLURM reports, and after the service has stopped no job is left in the queue.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from dacirco.runtimes.slurm_cluster import PARTITION, LocalSlurmCluster
from tests.e2e.test_transcode import download_output, probe

pytestmark = pytest.mark.slow


def test_a_job_waits_for_room_then_a_worker_slurm_ran_transcodes_it(
    slurm_cluster: LocalSlurmCluster,
    service_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))  # the service's cluster
    before = set(slurm_cluster.jobs())
    cpus = slurm_cluster.run("sinfo", "--noheader", "--Node", "--format=%c").split()[0]
    hog = slurm_cluster.run(
        "sbatch", "--parsable", f"--cpus-per-task={cpus}", "--mem=100M", "--output=/dev/null",
        f"--chdir={tmp_path}", "--job-name=someone-else", "--wrap=sleep 600",
    ).strip()  # fmt: skip
    try:
        # --boot-timeout 16: a worker's job pending 8 s is given back as "no room".
        svc = service_factory(
            "--runtime", "slurm", "--slurm-partition", PARTITION, "--slurm-time-limit", "30m",
            "--flavor", "tiny", "--algorithm", "minimize-workers", "--boot-timeout", "16",
        )  # fmt: skip
        job_id = svc.submit(id_video="bbb_2.mp4", bitrate=1500, codec="hevc")
        svc.wait_for(
            lambda: any(e["code"] == "EV12" for e in svc.events()), 90, "a worker given back"
        )
        assert svc.client.get(f"/jobs/{job_id}/state").json() == "Waiting"
    finally:
        slurm_cluster.run("scancel", hog, check=False)
    assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed"
    codec, duration, _ = probe(download_output(svc, job_id, tmp_path / "out.mp4"))
    _, in_duration, _ = probe(svc.data_dir / "videos" / "input-videos" / "bbb_2.mp4")
    assert codec == "hevc" and abs(duration - in_duration) <= 0.2
    figures = svc.client.get(f"/jobs/{job_id}").json()["figures"]
    assert [a["state"] for a in figures["attempts"]] == ["Done"]  # "no room" cost no attempt
    assert svc.stop() in (0, -signal.SIGTERM), svc.tail()
    events = svc.events()
    lost = [e for e in events if e["code"] == "EV12"]
    assert lost and all("no room for it" in e["reason"] for e in lost), json.dumps(lost)
    registered = [e for e in events if e["code"] == "EV11"]
    assert registered and {e["node"] for e in registered} == {slurm_cluster.node}
    assert set(slurm_cluster.jobs()) <= before  # every worker's job gone with the service
