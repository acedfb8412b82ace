"""The event log cut in pieces by size (``X.txt``, ``X.txt.002`` …) reads as the same run,
and a worker's log capped by its worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dacirco.analytics.figures import figures
from dacirco.analytics.logs import log_pieces, piece_path, read_events
from dacirco.analytics.run import from_log
from dacirco.controller.events import EventLog, config_path, event_record
from dacirco.core.machine import Core
from dacirco.core.stimuli import Decide, Registered, Reported, Submitted
from dacirco.worker.logfile import LOG_ENV, LOG_MAX_ENV
from tests.unit.test_core import STEPS, job, new_core


def a_run(cores: list[Core]) -> list[str]:
    """The event lines of a run: 6 jobs, one a second, on the workers the policy starts."""
    core = new_core(cores, max_workers=2)
    lines: list[str] = []

    def step(stimulus: object, now: float) -> None:
        out = core.handle(stimulus, now)  # type: ignore[arg-type]
        lines.extend(json.dumps(event_record(e.code, e.at, e.fields)) for e in out.emits)

    now = 1_700_000_000.0
    for n in range(1, 7):
        step(Submitted(job(n, at=now + n)), now + n)
        step(Decide(), now + n)
    for wid, w in list(core.state.workers.items()):
        step(Registered(wid, "n1", w.flavor.cpus, w.flavor.memory_gb), now + 8)
    t = now + 9
    while core.state.waiting or any(w.task_id for w in core.state.workers.values()):
        step(Decide(), t)
        for wid, w in list(core.state.workers.items()):
            if w.task_id:
                for name in STEPS:
                    t += 1
                    step(Reported(wid, w.task_id, name), t)
    return lines


def write(path: Path, lines: list[str], max_bytes: int) -> EventLog:
    log = EventLog(path, lambda: 0.0, max_bytes)
    log.write_config({"nodes": [{"name": "n1", "cpus": 8, "memory_gb": 32.0}]})
    for i in range(0, len(lines), 3):  # a step writes a few lines at once
        log.write_lines(lines[i : i + 3])
    log.close()
    return log


def test_a_run_in_pieces_gives_the_same_figures_as_in_one_file(
    tmp_path: Path, cores: list[Core]
) -> None:
    lines = a_run(cores)
    assert len(lines) >= 40 and sum('"EV7"' in ln for ln in lines) == 6
    whole, cut = tmp_path / "one" / "tc-events-01.txt", tmp_path / "cut" / "tc-events-01.txt"
    write(whole, lines, 0)
    log = write(cut, lines, 1000)
    pieces = log_pieces(cut)
    assert len(pieces) >= 4 and log.current == pieces[-1]
    assert [p.name for p in pieces[:3]] == [
        "tc-events-01.txt",
        "tc-events-01.txt.002",
        "tc-events-01.txt.003",
    ]
    for piece in pieces:  # each piece holds whole lines: a classic tool reads it alone
        text = piece.read_text()
        assert text.endswith("\n") and all(json.loads(ln)["code"] for ln in text.splitlines())
        assert piece.stat().st_size < 1000 + 3 * 400
    assert b"".join(p.read_bytes() for p in pieces) == whole.read_bytes()
    assert read_events(cut)[0] == read_events(whole)[0]
    assert sorted(p.name for p in cut.parent.glob("tc-events-01.txt*")) == [p.name for p in pieces]
    assert config_path(cut).exists()
    assert figures(from_log(cut)) == figures(from_log(whole))


def test_a_log_opened_again_goes_on_in_its_last_piece(tmp_path: Path) -> None:
    path = tmp_path / "tc-events-01.txt"
    line = json.dumps(event_record("EV17", 0.0, {"request_id": "j", "reason": "r"}))
    log = EventLog(path, lambda: 0.0, 200)
    for _ in range(4):
        log.write_lines([line])
    log.close()
    before = log_pieces(path)
    again = EventLog(path, lambda: 0.0, 200)
    assert again.current == before[-1]
    again.write_lines([line])
    again.close()
    assert piece_path(path, 1) == path and log_pieces(path)[-1].name.startswith(path.name)


def test_a_failed_step_is_cut_back_in_the_piece_it_was_written_to(tmp_path: Path) -> None:
    path = tmp_path / "tc-events-01.txt"
    log = EventLog(path, lambda: 0.0, 10)
    log.write_lines(["{}" * 10])
    start = log.write_lines(['{"a": 1}'])  # a new piece
    log.cut_back(start)
    assert start == 0 and log.current.read_text() == "" and path.read_text() == "{}" * 10 + "\n"
    log.close()


def test_a_worker_caps_its_log_and_its_stray_output_follows(tmp_path: Path) -> None:
    path = tmp_path / "dacirco-worker-001.log"
    script = (
        "import logging, sys\n"
        "from dacirco.worker.cli import _configure_logging\n"
        "_configure_logging('w1', 'info')\n"
        "for i in range(400):\n"
        "    logging.getLogger('t').info('line %d %s', i, 'x' * 40)\n"
        "print('stray at the end', file=sys.stderr, flush=True)\n"
    )
    env = {**os.environ, LOG_ENV: str(path), LOG_MAX_ENV: "5000"}
    with path.open("ab") as out:  # as the local runtime starts it
        subprocess.run([sys.executable, "-c", script], env=env, stdout=out, stderr=out, check=True)
    older = path.with_name(path.name + ".1")
    assert older.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        path.name,
        older.name,
    ]
    assert path.stat().st_size <= 5000 + 200 and older.stat().st_size <= 5000 + 200
    text = path.read_text()
    assert "line 399" in text and text.endswith("stray at the end\n")
