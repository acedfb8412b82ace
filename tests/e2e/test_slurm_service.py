"""End to end on SLURM: the real `dacirco serve --runtime slurm` on the session's single-node
cluster (``slurm_cluster``): a job is transcoded by a worker that ran as a SLURM job, on the
node SLURM reports, and once the service has stopped no job is left in the queue.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dacirco.runtimes.slurm_cluster import PARTITION, LocalSlurmCluster
from tests.e2e.test_transcode import download_output, probe

pytestmark = pytest.mark.slow


def test_a_job_is_transcoded_by_a_worker_slurm_ran(
    slurm_cluster: LocalSlurmCluster,
    service_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))  # the service's cluster
    before = set(slurm_cluster.jobs())
    svc = service_factory(
        "--runtime", "slurm", "--slurm-partition", PARTITION, "--slurm-time-limit", "30m",
        "--flavor", "tiny", "--algorithm", "minimize-workers",
    )  # fmt: skip
    job_id = svc.submit(id_video="bbb_2.mp4", bitrate=1500, codec="hevc")
    assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=180) == "Completed"
    codec, duration, _ = probe(download_output(svc, job_id, tmp_path / "out.mp4"))
    _, in_duration, _ = probe(svc.data_dir / "videos" / "input-videos" / "bbb_2.mp4")
    assert codec == "hevc" and abs(duration - in_duration) <= 0.2
    assert svc.stop() in (0, -signal.SIGTERM), svc.tail()
    events = svc.events()
    registered = [e for e in events if e["code"] == "EV11"]
    assert registered and {e["node"] for e in registered} == {slurm_cluster.node}
    assert not [e for e in events if e["code"] == "EV12"]  # no worker lost
    assert set(slurm_cluster.jobs()) <= before  # every worker's job gone with the service
