"""The worker protocol's bodies refuse what no worker can be: zero or absurd CPUs and memory,
names longer than a host name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dacirco.protocol import RegisterRequest

GOOD = {"worker_id": "w1", "name": "worker-1", "node": "host", "cpus": 2, "memory_gb": 4.0}


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"cpus": 1}, True),
        ({"cpus": 4096}, True),
        ({"cpus": 0}, False),
        ({"cpus": -3}, False),
        ({"cpus": 4097}, False),
        ({"cpus": 10**12}, False),
        ({"memory_gb": 0.5}, True),
        ({"memory_gb": 1e6}, True),
        ({"memory_gb": 0}, False),
        ({"memory_gb": -1.0}, False),
        ({"memory_gb": 1e6 + 1}, False),
        ({"memory_gb": float("inf")}, False),
        ({"memory_gb": float("nan")}, False),
        ({"name": "n" * 255, "node": "h" * 255}, True),
        ({"name": "n" * 256}, False),
        ({"node": "h" * 256}, False),
    ],
)
def test_register_request_bounds(change, accepted):
    body = {**GOOD, **change}
    if accepted:
        assert RegisterRequest.model_validate(body).model_dump(exclude={"pid"}) == body
    else:
        with pytest.raises(ValidationError) as err:
            RegisterRequest.model_validate(body)
        assert [e["loc"] for e in err.value.errors()] == [(next(iter(change)),)]


def test_register_request_bounds_hold_for_json_bodies_too():
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate_json(
            '{"worker_id": "w", "name": "n", "node": "h", "cpus": 2, "memory_gb": 1e999}'
        )
