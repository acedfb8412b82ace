"""process-logs: reading event logs (tolerantly) and the two CSV files of SPEC §6."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dacirco.analytics.csvs import REQUEST_COLUMNS, WORKER_COLUMNS, output_paths, write_csvs
from dacirco.analytics.logs import NotAnEventLog, parse_log, read_events

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ev(seconds: float, code: str, **fields: object) -> dict[str, object]:
    return {"time": (T0 + timedelta(seconds=seconds)).isoformat(), "code": code, **fields}


def write_log(path: Path, events: list[dict[str, object]], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail)
    return path


def steps(t: float, rid: str, wid: str, tid: str, gaps=(1.0, 0.5, 2.0, 3.0, 0.25)):  # type: ignore[no-untyped-def]
    out = []
    for code, gap in zip(("EV3", "EV4", "EV5", "EV6", "EV7"), gaps, strict=True):
        t += gap
        out.append(ev(t, code, request_id=rid, worker_id=wid, task_id=tid))
    return out


def worker(t: float, wid: str, boot: float = 2.0) -> list[dict[str, object]]:
    return [
        ev(t, "EV2", name=f"dacirco-{wid}", worker_id=wid),
        ev(t + boot, "EV11", name=f"dacirco-{wid}", worker_id=wid, node="n1", cpus=2, memory=4),
    ]


def received(t: float, rid: str) -> dict[str, object]:
    return ev(t, "EV1", request_id=rid, input_video="bbb_0.mp4", bitrate=1000, speed="fast")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def simple_log(tmp_path: Path) -> Path:
    events = [
        received(0, "r1"),
        *worker(0.1, "w1", boot=2.5),
        *steps(2.6, "r1", "w1", "t1"),
        ev(20, "EV8", name="dacirco-w1", worker_id="w1"),
    ]
    return write_log(tmp_path / "tc-events-07.txt", events)


def test_columns_are_exactly_those_of_spec(simple_log: Path) -> None:
    workers_csv, requests_csv = write_csvs(parse_log(simple_log))
    assert workers_csv == simple_log.parent / "tc-events-07-workers.csv"
    assert requests_csv == simple_log.parent / "tc-events-07-ok-requests.csv"
    assert read_csv(workers_csv)[0] == [
        "worker_id", "time_created", "time_registered", "time_destroyed", "name", "node",
        "cpus", "memory", "timediff_registered", "timediff_destroyed",
    ]  # fmt: skip
    assert read_csv(requests_csv)[0] == [
        "request_id", "time_received", "time_assigned", "time_started",
        "time_file_downloaded", "time_transcoding_done", "time_file_uploaded", "input_video",
        "bitrate", "speed", "worker_id", "task_id", "timediff_assigned", "timediff_started",
        "timediff_file_downloaded", "timediff_transcoding_done", "timediff_file_uploaded",
    ]  # fmt: skip
    assert list(WORKER_COLUMNS) == read_csv(workers_csv)[0]
    assert list(REQUEST_COLUMNS) == read_csv(requests_csv)[0]


def test_timediffs_and_times(simple_log: Path) -> None:
    workers_csv, requests_csv = write_csvs(parse_log(simple_log))
    [w] = read_csv(workers_csv)[1]
    assert w["worker_id"] == "w1" and w["node"] == "n1" and w["cpus"] == "2"
    assert w["time_created"] == (T0 + timedelta(seconds=0.1)).isoformat()
    assert w["timediff_registered"] == "2.500"
    assert w["timediff_destroyed"] == "17.400"  # destroyed - registered
    [r] = read_csv(requests_csv)[1]
    assert r["time_received"] == T0.isoformat()
    assert (r["worker_id"], r["task_id"], r["input_video"]) == ("w1", "t1", "bbb_0.mp4")
    assert r["bitrate"] == "1000" and r["speed"] == "fast"
    diffs = [r[f"timediff_{s}"] for s in ("assigned", "started", "file_downloaded")]
    assert diffs == ["3.600", "0.500", "2.000"]
    assert r["timediff_transcoding_done"] == "3.000" and r["timediff_file_uploaded"] == "0.250"


def test_worker_never_registered_counts_from_creation(tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "x.txt",
        [ev(1, "EV2", name="n", worker_id="w9"), ev(4, "EV8", name="n", worker_id="w9")],
    )
    [w] = read_csv(write_csvs(parse_log(log))[0])[1]
    assert w["time_registered"] == "" and w["node"] == "" and w["timediff_registered"] == ""
    assert w["timediff_destroyed"] == "3.000"


def test_requeued_request_uses_last_attempt(tmp_path: Path) -> None:
    events = [
        received(0, "r1"),
        *worker(0, "w1"),
        *worker(0, "w2"),
        ev(3, "EV3", request_id="r1", worker_id="w1", task_id="t1"),
        ev(4, "EV4", request_id="r1", worker_id="w1", task_id="t1"),
        ev(9, "EV12", name="dacirco-w1", worker_id="w1", reason="heartbeat"),
        ev(9, "EV8", name="dacirco-w1", worker_id="w1"),
        ev(9, "EV14", request_id="r1", reason="worker lost"),
        *steps(10, "r1", "w2", "t2"),
    ]
    parsed = parse_log(write_log(tmp_path / "tc-events-01.txt", events))
    assert [a.task_id for a in parsed.requests["r1"].attempts] == ["t1", "t2"]
    [r] = read_csv(write_csvs(parsed)[1])[1]
    assert (r["worker_id"], r["task_id"]) == ("w2", "t2")
    assert r["time_assigned"] == (T0 + timedelta(seconds=11)).isoformat()
    assert r["timediff_assigned"] == "11.000"  # queueing includes the lost attempt
    assert parsed.workers["w1"].lost_reason == "heartbeat"


def test_crashed_log_converts_and_reports_incomplete(tmp_path: Path) -> None:
    events = [
        received(0, "r1"),
        received(0.5, "r2"),
        received(0.7, "r3"),
        received(0.8, "r4"),
        *worker(0, "w1"),
        *steps(2, "r1", "w1", "t1"),
        ev(9, "EV3", request_id="r2", worker_id="w1", task_id="t2"),
        ev(9.5, "EV4", request_id="r2", worker_id="w1", task_id="t2"),
        ev(10, "EV9", worker_id="w1", task_id="t3", error_message="x"),
        ev(10, "EV13", request_id="r3", error_message="bad input"),
    ]
    log = write_log(tmp_path / "tc-events-02.txt", events, tail='\n{"time": "2024-05-01T12:0')
    parsed = parse_log(log)
    assert parsed.stats.truncated == 1 and parsed.stats.blank == 1
    assert [r.request_id for r in parsed.ok_requests] == ["r1"]
    assert parsed.incomplete_by_state() == {"Started": 1, "Error": 1, "Waiting": 1}
    assert parsed.requests["r3"].error_message == "bad input"
    workers_csv, requests_csv = write_csvs(parsed)
    assert [r["request_id"] for r in read_csv(requests_csv)[1]] == ["r1"]
    [w] = read_csv(workers_csv)[1]
    assert w["time_destroyed"] == "" and w["timediff_destroyed"] == ""


def test_json_without_time_or_code_is_malformed(tmp_path: Path) -> None:
    log = tmp_path / "l.txt"
    lines = [json.dumps(received(0, "r1")), '{"code": "EV2"}', "[1, 2]", "garbage", "{}"]
    log.write_text("\n".join(lines) + "\n" + json.dumps(received(1, "r2")) + "\n")
    events, stats = read_events(log)
    assert len(events) == 2 and stats.malformed == 4 and stats.truncated == 0


def test_text_file_is_not_an_event_log(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nthis is not json\n")
    with pytest.raises(NotAnEventLog, match=r"notes\.txt"):
        parse_log(path)
    path.write_text('{"a": 1}\n')
    with pytest.raises(NotAnEventLog, match=r"notes\.txt"):
        parse_log(path)


def test_empty_file_is_not_an_event_log(tmp_path: Path) -> None:
    path = tmp_path / "tc-events-03.txt"
    path.write_text("")
    with pytest.raises(NotAnEventLog, match=r"tc-events-03\.txt"):
        parse_log(path)


def test_rows_follow_first_appearance_and_out_dir(tmp_path: Path) -> None:
    events = [
        received(0, "b"),
        received(0.1, "a"),
        *worker(0, "wz"),
        *worker(0, "wa"),
        *steps(1, "a", "wa", "ta"),
        *steps(2, "b", "wz", "tb"),
    ]
    log = write_log(tmp_path / "run.txt", events)
    out = tmp_path / "out" / "deep"
    workers_csv, requests_csv = write_csvs(parse_log(log), out)
    assert (workers_csv, requests_csv) == output_paths(log, out)
    assert workers_csv == out / "run-workers.csv"
    assert [w["worker_id"] for w in read_csv(workers_csv)[1]] == ["wz", "wa"]
    assert [r["request_id"] for r in read_csv(requests_csv)[1]] == ["b", "a"]


def test_timediffs_sum_to_delay_within_a_millisecond(tmp_path: Path) -> None:
    gaps = (0.0004, 0.0004, 1.0004, 0.0006, 0.0004)
    log = write_log(
        tmp_path / "t.txt", [received(0.0003, "r"), *steps(0.0003, "r", "w", "t", gaps)]
    )
    [r] = read_csv(write_csvs(parse_log(log))[1])[1]
    names = ("assigned", "started", "file_downloaded", "transcoding_done", "file_uploaded")
    total = sum(float(r[f"timediff_{s}"]) for s in names)
    delay = (datetime.fromisoformat(r["time_file_uploaded"]) - T0).total_seconds() - 0.0003
    assert abs(total - delay) <= 0.001


def test_reused_requests_are_counted_apart_from_the_transcoded_ones(tmp_path: Path) -> None:
    from dacirco.analytics.figures import figures
    from dacirco.analytics.run import from_parsed

    events = [
        received(0, "r1"),
        *worker(0.1, "w1"),
        received(1, "r2"),
        ev(1, "EV18", request_id="r2", source="r1"),
        *steps(2.1, "r1", "w1", "t1"),  # r1's output at 8.85
        ev(8.85, "EV19", request_id="r2", source="r1", output="o.mp4"),
        received(9, "r3"),
        ev(9, "EV19", request_id="r3", source="r1", output="o.mp4"),
        received(10, "r4"),
        ev(10, "EV18", request_id="r4", source="r1"),  # attached, then on its own
        ev(11, "EV14", request_id="r4", reason="job r1 was canceled: it runs on its own"),
    ]
    parsed = parse_log(write_log(tmp_path / "tc-events-01.txt", events))
    assert [r.request_id for r in parsed.ok_requests] == ["r1"]
    assert [r.request_id for r in parsed.reused_requests] == ["r2", "r3"]
    assert [r.request_id for r in parsed.incomplete_requests] == ["r4"]
    _, requests_csv = write_csvs(parsed)
    assert [row["request_id"] for row in read_csv(requests_csv)[1]] == ["r1"]
    f = figures(from_parsed(parsed))
    assert (f.jobs, f.completed, f.reused, f.unfinished) == (4, 1, 2, 1)
    assert f.delay.n == 1 and f.delay.avg == pytest.approx(8.85)
    assert f.reused_delay is not None and f.reused_delay.avg == pytest.approx((7.85 + 0) / 2)
