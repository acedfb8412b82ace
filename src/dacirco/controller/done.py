"""The columns a finished job's row carries beside its JSON, so that a restart reads what it
needs of the finished jobs (``archive.summary``) without parsing a single one of them.

Schema 2 added them; a database of an earlier schema gets them on open, filled from the JSON
of its finished rows once (``migrate``).
"""

from __future__ import annotations

import sqlite3

from dacirco.domain import FINAL_JOB_STATES, Job, JobState, reuse_key

# (name, type): when it ended, the transcoded delay (request to uploaded), the job whose
# output it reused, its output, and its reuse key (domain.reuse_key).
COLUMNS = (
    ("ended", "REAL"),
    ("delay", "REAL"),
    ("source", "TEXT"),
    ("output", "TEXT"),
    ("movie", "TEXT"),
    ("bitrate", "INTEGER"),
    ("speed", "TEXT"),
    ("codec", "TEXT"),
    ("size", "INTEGER"),
)
NAMES = tuple(name for name, _ in COLUMNS)
FINAL = "(" + ", ".join(sorted(f"'{s.value}'" for s in FINAL_JOB_STATES)) + ")"
_NONE = (None,) * len(COLUMNS)
_FROM_JSON = (  # the same values, from a row's JSON (for a database of an earlier schema)
    "coalesce(data->>'$.history[#-1].at', data->>'$.received_at')",
    "CASE WHEN state = 'Completed' AND data->>'$.reused_from' IS NULL THEN "
    "data->>'$.timings.uploaded' - data->>'$.received_at' END",
    "data->>'$.reused_from'",
    "data->>'$.output'",
    "data->>'$.id_video'",
    "data->>'$.bitrate'",
    "data->>'$.speed'",
    "data->>'$.codec'",
    "data->>'$.input_size'",
)


def values(job: Job) -> tuple[object, ...]:
    """The columns of ``job``'s row: all NULL while it is not finished."""
    if job.state not in FINAL_JOB_STATES:
        return _NONE
    ended = job.history[-1].at if job.history else job.received_at
    delay = None
    uploaded = job.timings.get("uploaded")
    if job.state is JobState.COMPLETED and job.reused_from is None and uploaded is not None:
        delay = uploaded - job.received_at
    return (
        ended,
        delay,
        job.reused_from,
        job.output,
        job.id_video,
        job.bitrate,
        job.speed.value,
        reuse_key(job)[3],  # the codec, with a streaming job's outputs' fingerprint
        job.input_size,
    )


# The columns again, in an index: added after ``data`` (a large value, in overflow pages),
# they would be read by walking it; from the index, a restart reads nothing else.
INDEX = f"CREATE INDEX IF NOT EXISTS jobs_done ON jobs (state, {', '.join(NAMES)}, id)"


def migrate(conn: sqlite3.Connection) -> None:
    """Add the columns to ``jobs`` if missing, filled for its finished rows, and their index."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    missing = [(name, kind) for name, kind in COLUMNS if name not in have]
    conn.execute("BEGIN")
    try:
        for name, kind in missing:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
        if missing:
            sets = ", ".join(f"{n} = {expr}" for n, expr in zip(NAMES, _FROM_JSON, strict=True))
            conn.execute(f"UPDATE jobs SET {sets} WHERE state IN {FINAL} AND json_valid(data)")
        conn.execute(INDEX)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
