"""Per-job node statistics (classic ``dacirco_get_node_stats``): the host each completed job
ran on and the min/avg/max CPU % of that host while the job was transcoding.

``X-ok-requests.csv`` (from process-logs) gives ``X-ok-requests-node-stats.csv``; the host comes
from the event log ``X.txt`` (EV11 ``node``; else ``X-workers.csv``), the load from
``X.samples.jsonl`` (node samples of that host, see ``dacirco.sampling``).
"""

from __future__ import annotations

import csv
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from dacirco.analytics.logs import parse_log, parse_time
from dacirco.analytics.samples import Series, read_samples, samples_path

SUFFIX = "-ok-requests.csv"
EXTRA_COLUMNS = ("host", "load_min", "load_avg", "load_max")
NEEDED = ("worker_id", "time_file_downloaded", "time_transcoding_done")


class NodeStatsError(ValueError):
    """The input cannot be used (one line, naming the file)."""


@dataclass
class NodeStatsResult:
    out: Path
    rows: list[dict[str, str]]
    log: Path | None
    samples: Path | None  # None: no samples file, the load cells are empty
    warnings: list[str] = field(default_factory=list)


def output_path(requests_csv: Path) -> Path:
    """``X-ok-requests.csv`` -> ``X-ok-requests-node-stats.csv``, beside it."""
    p = Path(requests_csv)
    return p.with_name(p.stem + "-node-stats.csv")


def default_log(requests_csv: Path) -> Path | None:
    """``X.txt`` for ``X-ok-requests.csv``; None for a name without that suffix."""
    p = Path(requests_csv)
    if not p.name.endswith(SUFFIX):
        return None
    return p.with_name(p.name[: -len(SUFFIX)] + ".txt")


def load_window(
    series: Series, t0: float, t1: float, interval: float = 1.0
) -> tuple[float, float, float] | None:
    """Min, average and max of the node samples that measured ``[t0, t1]``.

    A node sample gives the CPU % of the ``interval`` before it, so those taken in
    ``[t0, t1 + interval]`` are kept; with none there, the nearest one before and after.
    """
    times = series.times
    lo, hi = bisect_left(times, t0), bisect_right(times, t1 + interval)
    values = series.values[lo:hi]
    if not values:
        near = [i for i in (lo - 1, hi) if 0 <= i < len(times)]
        values = [series.values[i] for i in near]
    if not values:
        return None
    return min(values), sum(values) / len(values), max(values)


def _hosts_from_workers_csv(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["worker_id"]: r.get("node") or "" for r in csv.DictReader(f)}


def _hosts(log: Path | None, requests_csv: Path) -> dict[str, str]:
    if log is not None and log.is_file():
        parsed = parse_log(log)  # raises NotAnEventLog (a ValueError) or OSError
        return {w: "" if r.node is None else str(r.node) for w, r in parsed.workers.items()}
    workers_csv = requests_csv.with_name(requests_csv.name.replace(SUFFIX, "-workers.csv"))
    if log is None or not workers_csv.is_file() or workers_csv == requests_csv:
        where = f"{log} is missing" if log is not None else "it cannot be found from the CSV's name"
        raise NodeStatsError(f"{requests_csv}: the event log {where}; give it with --log")
    return _hosts_from_workers_csv(workers_csv)


def _read_requests(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error):
        raise NodeStatsError(f"{path} is not a CSV file") from None
    missing = [c for c in NEEDED if c not in columns]
    if missing:
        raise NodeStatsError(
            f"{path} is not an ok-requests CSV of process-logs: no column {', '.join(missing)}"
        )
    return columns, rows


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def node_stats(
    requests_csv: Path,
    log: Path | None = None,
    samples: Path | None = None,
    out: Path | None = None,
) -> NodeStatsResult:
    """Write the node-stats CSV of ``requests_csv`` and return what was written.

    Raises NodeStatsError (or NotAnEventLog, OSError) for input that cannot be used.
    """
    requests_csv = Path(requests_csv)
    columns, rows = _read_requests(requests_csv)
    log = Path(log) if log is not None else default_log(requests_csv)
    hosts = _hosts(log, requests_csv)
    if samples is None:
        samples = samples_path(log) if log is not None else None
    data = read_samples(samples) if samples is not None else None
    warnings: list[str] = []
    if data is None:
        warnings.append(f"no samples file ({samples}): load_min/avg/max left empty")
    unknown_hosts: set[str] = set()
    out_rows = []
    for row in rows:
        host = hosts.get(row["worker_id"], "")
        cells = {"host": host, "load_min": "", "load_avg": "", "load_max": ""}
        series = data.node_cpu_percent.get(host) if data is not None else None
        if data is not None and series is None:
            unknown_hosts.add(host or "?")
        t0, t1 = row["time_file_downloaded"], row["time_transcoding_done"]
        if series is not None and t0 and t1:
            load = load_window(series, parse_time(t0).timestamp(), parse_time(t1).timestamp())
            if load is not None:
                cells.update(zip(EXTRA_COLUMNS[1:], map(_fmt, load), strict=True))
        out_rows.append({**row, **cells})
    if unknown_hosts:
        warnings.append(f"no node samples of host {', '.join(sorted(unknown_hosts))}")
    out = Path(out) if out is not None else output_path(requests_csv)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*columns, *EXTRA_COLUMNS])
        writer.writeheader()
        writer.writerows(out_rows)
    return NodeStatsResult(out, out_rows, log, samples if data is not None else None, warnings)
