"""A real single-node SLURM cluster on this machine, to try ``--runtime slurm`` (and for the
tests): Debian's ``munged``, ``slurmctld`` and ``slurmd``, run as the current user (root)
on 127.0.0.1 and free ports, with their configuration, key, state and logs in one temporary
folder. It touches no system configuration: clients find it through ``SLURM_CONF``.

The node is this machine as ``slurmd -C`` sees it (its CPUs and memory); ``select/cons_tres``
with ``CR_Core_Memory`` lets several one-core jobs share it. Two partitions: ``debug`` (the
default) and ``closed`` (drained: SLURM refuses every submission to it, for the tests).

    python -m dacirco.runtimes.slurm_cluster      # prints the SLURM_CONF to export; Ctrl-C stops it
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dacirco.runtimes.local import _die_with_parent

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
PARTITION = "debug"
CLOSED_PARTITION = "closed"


class ClusterUnavailable(RuntimeError):
    """The SLURM packages are missing here, or the cluster did not come up (the reason)."""


def missing_programs() -> list[str]:
    """The SLURM and munge programs this machine lacks (Debian: slurmctld, slurmd, munge,
    slurm-client)."""
    search = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p, path=search) is None]


def _which(program: str) -> str:
    found = shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise ClusterUnavailable(f"{program} is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_line() -> str:
    """This machine as a slurm.conf node (``slurmd -C``: name, CPUs, cores, memory)."""
    out = subprocess.run(
        [_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("NodeName=")), None)
    if line is None:
        raise ClusterUnavailable(f"slurmd -C printed no node: {out.strip()!r}")
    return line


def slurm_conf(root: Path, node: str, ctld_port: int, slurmd_port: int) -> str:
    name = node.split()[0].removeprefix("NodeName=")
    return "\n".join(
        [
            "ClusterName=dacirco",
            f"SlurmctldHost={name}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthInfo=socket={root / 'munge.socket'}",
            f"StateSaveLocation={root / 'ctld'}",
            f"SlurmdSpoolDir={root / 'slurmd'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=5",
            "MinJobAge=300",
            "SlurmdTimeout=60",
            "InactiveLimit=0",
            f"{node} NodeAddr=127.0.0.1 State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={CLOSED_PARTITION} Nodes=ALL MaxTime=INFINITE State=DRAIN",
            "",
        ]
    )


@dataclass
class LocalSlurmCluster:
    """munged, slurmctld and slurmd under ``root``; ``start`` waits until the node is idle."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dslurm-")))
    conf: Path = field(init=False)
    node: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster (``sbatch``, ``squeue``, a service)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _spawn(self, label: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (self.root / f"{label}.out").open("ab") as out:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.root, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        self._procs.append(proc)
        return proc

    def start(self, timeout: float = 120.0) -> LocalSlurmCluster:
        if missing := missing_programs():
            raise ClusterUnavailable(f"not installed: {', '.join(missing)}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        for sub in ("ctld", "slurmd"):
            (self.root / sub).mkdir(exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        line = node_line()
        self.node = line.split()[0].removeprefix("NodeName=")
        self.conf.write_text(slurm_conf(self.root, line, _free_port(), _free_port()))
        socket_path = self.root / "munge.socket"
        self._spawn(
            "munged",
            [
                _which("munged"), "--foreground", "--force",
                f"--socket={socket_path}", f"--key-file={key}",
                f"--pid-file={self.root / 'munged.pid'}",
                f"--log-file={self.root / 'munged.log'}",
                f"--seed-file={self.root / 'munged.seed'}",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        self._wait(lambda: socket_path.exists(), deadline, "munged did not create its socket")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(self._node_idle, deadline, "the node did not become idle")
        atexit.register(self.stop)
        return self

    def _wait(self, ready: object, deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    self.stop()
                    label = Path(proc.args[0]).name  # type: ignore[index]
                    raise ClusterUnavailable(f"{label} exited: {self._log_tail(label)}")
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        tail = self._log_tail("slurmctld")
        self.stop()
        raise ClusterUnavailable(f"{what} in time: {tail}")

    def _log_tail(self, label: str) -> str:
        text = ""
        for name in (f"{label}.log", f"{label}.out"):
            with contextlib.suppress(OSError):
                text += (self.root / name).read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-3:])

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return out.strip().split("\n")[0] == "idle"

    def run(self, program: str, *args: str, check: bool = True) -> str:
        """A client command against this cluster; its standard output."""
        done = subprocess.run(
            [_which(program), *args], capture_output=True, text=True, env=self.env, timeout=60
        )
        if check and done.returncode != 0:
            raise ClusterUnavailable(f"{program} {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[str]:
        """The ids of the jobs the cluster runs or queues."""
        return self.run("squeue", "--noheader", "--format=%i", check=False).split()

    def stop(self) -> None:
        """Cancel every job, wait for them to end, then stop the daemons (and nothing else)."""
        if not self._procs:
            return
        if self._procs[-1].poll() is None:
            with contextlib.suppress(Exception):
                self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
                deadline = time.monotonic() + 30
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.2)
        for proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


_SHARED: LocalSlurmCluster | ClusterUnavailable | None = None


def shared_cluster() -> LocalSlurmCluster:
    """One cluster for this whole process (the test session), started on first use and
    stopped by ``stop_shared`` or at exit; ``ClusterUnavailable`` (every time) if it cannot."""
    global _SHARED
    if _SHARED is None:
        try:
            _SHARED = LocalSlurmCluster().start()
        except (ClusterUnavailable, OSError, subprocess.SubprocessError) as exc:
            _SHARED = exc if isinstance(exc, ClusterUnavailable) else ClusterUnavailable(str(exc))
    if isinstance(_SHARED, ClusterUnavailable):
        raise _SHARED
    return _SHARED


def stop_shared() -> None:
    global _SHARED
    if isinstance(_SHARED, LocalSlurmCluster):
        _SHARED.stop()
    _SHARED = None


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cluster = LocalSlurmCluster()
    t0 = time.monotonic()
    cluster.start()
    print(f"SLURM cluster up in {time.monotonic() - t0:.1f} s, node {cluster.node}")
    print(f"export SLURM_CONF={cluster.conf}")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
