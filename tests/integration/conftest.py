"""Fixtures of the runtime tests: the stand-in controller workers register with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.runtime_contract import Sink, sink_server


@pytest.fixture
def sink() -> Iterator[Sink]:
    with sink_server() as s:
        yield s
