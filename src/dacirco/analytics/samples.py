"""Read ``tc-events-NN.samples.jsonl`` (format: ``dacirco.sampling``) into time series.

Several sources may sample the same machine (the controller and local workers share it): node
samples are kept per host and averaged per whole second, so a host counts once.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dacirco.analytics.logs import parse_time, piece_path


def samples_path(log: Path) -> Path:
    """``X.samples.jsonl`` beside the event log ``X.txt``."""
    return Path(log).with_name(Path(log).stem + ".samples.jsonl")


def sample_pieces(path: Path) -> list[tuple[int, Path]]:
    """The pieces of the samples file ``path`` that exist, by number: ``X.samples.jsonl`` (1),
    then ``X.samples.jsonl.002`` … (``analytics.logs.piece_path``). Unlike the event log's,
    the oldest pieces may be gone (``--retention`` deletes them): numbers may start past 1."""
    path = Path(path)
    found = [(1, path)] if path.exists() else []
    suffix = re.compile(re.escape(path.name) + r"\.(\d{3,})")
    for other in path.parent.glob(path.name + ".*"):
        if (m := suffix.fullmatch(other.name)) and piece_path(path, int(m[1])) == other:
            found.append((int(m[1]), other))
    return sorted(found)


@dataclass
class Series:
    """Times (seconds) and values, in time order."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class Samples:
    node_cpu_percent: dict[str, Series]  # host -> CPU % of the whole machine
    node_memory_gb: dict[str, Series]  # host -> memory in use
    node_cpus: dict[str, float]  # host -> cores
    node_memory_total_gb: dict[str, float]
    worker_cpu_cores: dict[str, Series]  # worker id -> cores used by its process tree
    worker_rss_gb: dict[str, Series]
    controller_cpu_cores: Series
    skipped: int = 0  # lines that were not samples

    @property
    def empty(self) -> bool:
        return not (
            self.node_cpu_percent or self.worker_cpu_cores or self.controller_cpu_cores.times
        )


def _per_second(points: list[tuple[float, float]]) -> Series:
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in points:
        buckets[int(t)].append(v)
    series = Series()
    for second in sorted(buckets):
        series.times.append(float(second))
        series.values.append(sum(buckets[second]) / len(buckets[second]))
    return series


def _sorted(points: list[tuple[float, float]]) -> Series:
    points.sort()
    return Series([t for t, _ in points], [v for _, v in points])


def read_samples(path: Path) -> Samples | None:
    """The samples at ``path`` and in its next pieces (``sample_pieces``), or None when there
    is none of them."""
    texts = []
    for _, piece in sample_pieces(path):
        try:
            texts.append(piece.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    if not texts:
        return None
    text = "".join(t if t.endswith("\n") or not t else t + "\n" for t in texts)
    cpu: dict[str, list[tuple[float, float]]] = defaultdict(list)
    mem: dict[str, list[tuple[float, float]]] = defaultdict(list)
    wcpu: dict[str, list[tuple[float, float]]] = defaultdict(list)
    wrss: dict[str, list[tuple[float, float]]] = defaultdict(list)
    ccpu: list[tuple[float, float]] = []
    cpus: dict[str, float] = {}
    total: dict[str, float] = {}
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            t = parse_time(r["time"]).timestamp()
            if r["kind"] == "node":
                host = str(r["host"])
                cpu[host].append((t, float(r["cpu_percent"])))
                mem[host].append((t, float(r["memory_used_gb"])))
                cpus[host] = float(r["cpus"])
                total[host] = float(r["memory_total_gb"])
            elif r["kind"] == "process" and r.get("role") == "worker":
                wid = str(r["worker_id"])
                wcpu[wid].append((t, float(r["cpu_cores"])))
                wrss[wid].append((t, float(r["rss_gb"])))
            elif r["kind"] == "process":
                ccpu.append((t, float(r["cpu_cores"])))
            else:
                skipped += 1
        except (ValueError, KeyError, TypeError):
            skipped += 1
    return Samples(
        node_cpu_percent={h: _per_second(p) for h, p in cpu.items()},
        node_memory_gb={h: _per_second(p) for h, p in mem.items()},
        node_cpus=cpus,
        node_memory_total_gb=total,
        worker_cpu_cores={w: _sorted(p) for w, p in wcpu.items()},
        worker_rss_gb={w: _sorted(p) for w, p in wrss.items()},
        controller_cpu_cores=_sorted(ccpu),
        skipped=skipped,
    )
