"""Movie names are checked once, where they enter, against every limit they meet later (their
outputs' and chunks' names, object keys, file names while written); and a task whose names or
URLs cannot be made anyway fails its job at once, with the reason, instead of every poll of
its worker failing."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest

from dacirco.core.errors import InvalidRequest
from dacirco.core.placement import MAX_CHUNKS
from dacirco.domain import (
    MAX_BITRATE_KBPS,
    MAX_FILE_NAME,
    MAX_MOVIE_NAME,
    MAX_OBJECT_NAME,
    Job,
    JobState,
    Speed,
    WorkerState,
    chunk_name,
    movie_name_problem,
    output_name,
)
from dacirco.storage.base import InvalidKey, check_key, output_key, part_path
from dacirco.storage.local import LocalStorage
from tests.unit.conftest import Make


def _job(movie: str) -> Job:
    """A job whose names are the longest ``movie`` can lead to."""
    return Job(str(uuid.uuid4()), movie, MAX_BITRATE_KBPS, Speed.ULTRAFAST, received_at=0.0)


def test_the_longest_name_makes_names_that_every_storage_takes(tmp_path: Path) -> None:
    movie = "n" * MAX_MOVIE_NAME  # no extension: the output keeps all of it
    assert movie_name_problem(movie) is None
    job = _job(movie)
    assert len(output_name(job)) == MAX_OBJECT_NAME  # the limit is tight, not a guess
    storage = LocalStorage(tmp_path / "videos")
    for key in (output_key(output_name(job)), output_key(chunk_name(job, MAX_CHUNKS))):
        assert len(key.encode()) <= 1024  # an S3 key
        # Written for real, under the longest name the local storage gives a file.
        part = part_path(storage.path(key))
        part.write_bytes(b"x")
        assert len(part.name.encode()) <= MAX_FILE_NAME
        part.rename(storage.path(key))
        assert storage.stat(key) is not None


@pytest.mark.parametrize("movie", ["n" * (MAX_MOVIE_NAME + 1), "x" * 200 + ".mp4"])
def test_a_longer_name_is_refused_naming_the_limit(movie: str) -> None:
    problem = movie_name_problem(movie)
    assert problem is not None
    assert f"too long: {len(movie)} characters, at most {MAX_MOVIE_NAME}" in problem


def test_an_object_name_too_long_is_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidKey, match=f"too long: at most {MAX_OBJECT_NAME} characters"):
        check_key("output-videos/" + "o" * (MAX_OBJECT_NAME + 1))
    check_key("output-videos/" + "o" * MAX_OBJECT_NAME)


async def test_submission_refuses_a_name_too_long(make: Make) -> None:
    h = make()
    with pytest.raises(InvalidRequest, match=f"at most {MAX_MOVIE_NAME}"):
        await h.submit("m" * (MAX_MOVIE_NAME + 1))
    assert h.controller.jobs == {}


async def test_a_task_whose_names_cannot_be_made_fails_its_job_at_once(make: Make) -> None:
    """Its output's name too long for the storage (as with a job stored before names were
    limited): the poll answers (no task), the job is in Error with the reason, the worker
    is idle for the next job."""
    ids = itertools.count()
    h = make(new_id=lambda kind: "j" * 250 if kind == "job" else f"{kind}-{next(ids)}")
    job = await h.submit()
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    assert job.state == JobState.STARTED
    assert await h.poll(worker) is None
    assert job.state == JobState.ERROR and job.attempts == 1
    assert job.error is not None and job.error.startswith("cannot be run: object name")
    assert f"at most {MAX_OBJECT_NAME} characters" in job.error
    assert worker.state == WorkerState.IDLE
    assert h.events("EV9")[0]["error_message"] in job.error


async def test_a_storage_that_cannot_sign_fails_the_attempt_not_the_poll(make: Make) -> None:
    h = make()
    job = await h.submit()
    await h.controller.reconcile()
    worker = await h.register(h.runtime.specs[-1])
    await h.controller.reconcile()
    h.controller.storage.base_url = None  # local storage without the API's URL: cannot sign
    assert await h.poll(worker) is None
    assert job.state == JobState.WAITING and job.attempts == 1  # retried, as storage failures
    assert "cannot sign the task's URLs" in job.errors[0]
    assert worker.state == WorkerState.IDLE
