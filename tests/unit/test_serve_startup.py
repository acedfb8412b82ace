"""`dacirco serve` takes its port, then its data dir, before anything else: when either is taken
it says so in one line (exit 2) having written nothing."""

from __future__ import annotations

import errno
import os
import socket

import pytest
from typer.testing import CliRunner

from dacirco.cli import app
from dacirco.service import DataDirInUse, lock_data_dir
from dacirco.service_cli import listen
from tests.conftest import free_port

runner = CliRunner()


def _serve(tmp_path, port: int):  # type: ignore[no-untyped-def]
    return runner.invoke(
        app,
        ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--event-log-file", str(tmp_path / "tc-events-01.txt")],
    )  # fmt: skip


def test_a_taken_port_is_refused_before_the_data_dir_is_touched(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(tmp_path, port)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: port {port} on 127.0.0.1 is already in use"
    assert list(tmp_path.iterdir()) == []


def test_a_locked_data_dir_is_refused_and_the_port_is_given_back(tmp_path):
    (tmp_path / "data").mkdir()
    lock = lock_data_dir(tmp_path / "data")  # as a running DaCirco holds it
    try:
        port = free_port()
        result = _serve(tmp_path, port)
    finally:
        lock.close()
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: data dir {tmp_path / 'data'} is in use by another DaCirco (pid {os.getpid()})"
    )
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".lock"]
    assert not (tmp_path / "tc-events-01.txt").exists()
    for sock in listen("127.0.0.1", port):  # free again
        sock.close()


def test_the_lock_is_exclusive_until_closed(tmp_path):
    first = lock_data_dir(tmp_path)
    assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(DataDirInUse, match="is in use by another DaCirco"):
        lock_data_dir(tmp_path)
    first.close()
    lock_data_dir(tmp_path).close()


def test_listen_holds_the_port_at_once(tmp_path):
    port = free_port()
    socks = listen("127.0.0.1", port)
    try:
        with pytest.raises(OSError) as err:
            listen("127.0.0.1", port)
        assert err.value.errno == errno.EADDRINUSE
    finally:
        for sock in socks:
            sock.close()
