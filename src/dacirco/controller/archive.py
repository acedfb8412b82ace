"""Finished jobs, read from the database when asked: the controller keeps in memory the jobs
under way and the last finished ones (``Shell.keep_finished``), not every job it ever had.

Every job is in the store as soon as its step is (write-through), so the store answers for
any job; memory answers first for the ones it holds (their progress is the freshest). At a
restart only the unfinished jobs are loaded; of the finished ones the controller needs only
a summary (``Finished``): the counts and delays for ``/metrics``, the outputs that identical
requests may reuse, and when each ended, for retention. Each function runs on the store's
thread (``Store.run``) with its connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass

from dacirco.controller import done
from dacirco.controller.store import job_from, task_from
from dacirco.core.stimuli import Finished
from dacirco.domain import Job, JobState, Task

log = logging.getLogger(__name__)

# From the index of the ``done`` columns alone (no row is read, nothing sorted).
_SUMMARY = f"SELECT seq, id, state, {', '.join(done.NAMES)} FROM jobs WHERE state IN {done.FINAL}"


@dataclass(frozen=True)
class Summary:
    """The finished jobs as a restart needs them, without a ``Job`` object each."""

    counts: dict[str, int]  # state -> jobs, every job stored
    delays: list[float]  # the transcoded completed jobs' delays (request to uploaded)
    finished: Finished  # for the core: outputs to reuse, when each job ended


def summary(db: sqlite3.Connection) -> Summary:
    counts = {state: n for state, n in db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY 1")}
    delays: list[float] = []
    outputs: dict[tuple[object, ...], tuple[int, str, str | None]] = {}  # key -> the first
    ended: list[tuple[str, float, str | None]] = []
    completed = JobState.COMPLETED.value
    for seq, job_id, state, at, delay, source, output, *key in db.execute(_SUMMARY):
        if at is None:
            continue  # a row whose JSON could not be read (set aside when it is asked for)
        ended.append((job_id, at, source))
        if state != completed or source is not None:
            continue
        if delay is not None:
            delays.append(delay)
        first = outputs.get(k := tuple(key))
        if first is None or seq < first[0]:
            outputs[k] = (seq, job_id, output)
    reusable = [(k, i, o) for k, (_, i, o) in sorted(outputs.items(), key=lambda kv: kv[1][0])]
    finished = Finished(tuple(reusable), tuple(ended))  # type: ignore[arg-type]
    return Summary(counts, delays, finished)


def job(db: sqlite3.Connection, job_id: str) -> tuple[Job, list[Task]] | None:
    """A stored job and its tasks; None if there is none (or its row cannot be read)."""
    row = db.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    try:
        found = job_from(json.loads(row[0]))
        tasks = [
            task_from(json.loads(data))
            for (data,) in db.execute(
                "SELECT data FROM tasks WHERE job_id = ? ORDER BY seq", (job_id,)
            )
        ]
    except Exception as exc:  # a damaged row: as if it were not there, and said
        log.error("stored job %r cannot be read: %s: %s", job_id, type(exc).__name__, exc)
        return None
    return found, tasks


def jobs(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[Job, list[Task]]]:
    """Several stored jobs with their tasks (the readable ones), by id."""
    return {i: found for i in ids if (found := job(db, i)) is not None}


class UnknownAfter(LookupError):
    """``after`` names no stored job."""


def ids(db: sqlite3.Connection, after: str | None, limit: int) -> tuple[list[str], bool]:
    """A page of job ids in the order they came, after the job ``after``; whether more follow."""
    start = 0
    if after:
        row = db.execute("SELECT seq FROM jobs WHERE id = ?", (after,)).fetchone()
        if row is None:
            raise UnknownAfter(after)
        start = row[0]
    rows = db.execute(
        "SELECT id FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?", (start, limit + 1)
    ).fetchall()
    return [r[0] for r in rows[:limit]], len(rows) > limit


def newest(db: sqlite3.Connection, offset: int, limit: int) -> list[Job]:
    """Jobs newest first, from the ``offset``-th; unreadable rows left out."""
    out = []
    for (data,) in db.execute(
        "SELECT data FROM jobs ORDER BY seq DESC LIMIT ? OFFSET ?", (limit, offset)
    ):
        try:
            out.append(job_from(json.loads(data)))
        except Exception:  # said when the job itself is asked for (``job``)
            continue
    return out


__all__ = ["Summary", "UnknownAfter", "ids", "job", "jobs", "newest", "summary"]
