"""Storage reads shared by concurrent submissions (``controller/single_flight.py``): one call
for the requests that wait together, a fresh call for a request that comes after, errors
given to every waiter, and a waiter that gives up does not cancel the others' call."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dacirco.controller.single_flight import SingleFlight


class Slow:
    """A storage read that blocks until released, counting its calls per key."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()

    def __call__(self, key: str) -> str:
        self.calls.append(key)
        if not self.release.wait(30):
            raise TimeoutError("never released")
        if key == "bad":
            raise OSError("disk on fire")
        return f"info of {key} #{len(self.calls)}"


async def test_requests_that_wait_together_share_one_call():
    fetch = Slow()
    flight = SingleFlight(fetch)
    waiting = [asyncio.create_task(flight("a")) for _ in range(50)]
    other = asyncio.create_task(flight("b"))
    await asyncio.sleep(0.05)
    assert len(flight) == 2  # one call per key in flight
    fetch.release.set()
    answers = await asyncio.gather(*waiting)
    assert set(answers) == {answers[0]} and answers[0].startswith("info of a")
    assert (await other).startswith("info of b")
    assert sorted(fetch.calls) == ["a", "b"]
    assert len(flight) == 0  # nothing kept once answered
    # A request after the answer asks again: an answer is never older than its request.
    assert await flight("a") == "info of a #3"


async def test_an_error_reaches_every_waiter_and_is_not_kept():
    fetch = Slow()
    flight = SingleFlight(fetch)
    waiting = [asyncio.create_task(flight("bad")) for _ in range(5)]
    await asyncio.sleep(0.05)
    fetch.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, OSError) and "disk on fire" in str(r) for r in results)
    assert fetch.calls == ["bad"]
    with pytest.raises(OSError):
        await flight("bad")
    assert fetch.calls == ["bad", "bad"]


async def test_a_waiter_that_gives_up_leaves_the_call_to_the_others():
    fetch = Slow()
    flight = SingleFlight(fetch)
    quitter = asyncio.create_task(flight("a"))
    stayer = asyncio.create_task(flight("a"))
    await asyncio.sleep(0.05)
    quitter.cancel()
    await asyncio.sleep(0)
    fetch.release.set()
    assert (await stayer).startswith("info of a")
    assert quitter.cancelled() and fetch.calls == ["a"]


class Stamped:
    """A quick storage read that notes when each call started."""

    def __init__(self) -> None:
        self.started: list[float] = []

    def __call__(self, key: str) -> str:
        self.started.append(time.monotonic())
        return f"info of {key} #{len(self.started)}"


async def test_calls_for_one_key_start_a_spacing_apart_and_answer_what_came_meanwhile():
    fetch = Stamped()
    # A spacing that the ten requests below (5 ms apart, about 50 ms in all) fit in by far,
    # even on a busy machine where each sleep lasts longer.
    spacing = 1.0
    flight = SingleFlight(fetch, spacing=spacing)
    assert await flight("a") == "info of a #1"  # nothing before it: asked at once
    first = flight._started["a"]  # when the call started, by the loop's clock
    asked, tasks = [], []
    for _ in range(10):  # within the spacing: they wait for the next call, together
        asked.append(time.monotonic())
        tasks.append(asyncio.create_task(flight("a")))
        await asyncio.sleep(0.005)
    other = asyncio.create_task(flight("b"))  # another key is not held back
    await asyncio.sleep(0)
    assert flight.calls == 2 and (await other) == "info of b #2"
    answers = await asyncio.gather(*tasks)
    assert set(answers) == {"info of a #3"} and flight.calls == 3
    assert flight._started["a"] - first >= spacing
    assert fetch.started[2] >= max(asked)  # no answer older than the request it answers
    await asyncio.sleep(spacing + 0.05)
    quiet = asyncio.create_task(flight("a"))  # past the spacing: asked at once again
    await asyncio.sleep(0)
    assert flight.calls == 4
    assert await quiet == "info of a #4"


async def test_without_spacing_a_request_after_an_answer_asks_at_once():
    fetch = Stamped()
    flight = SingleFlight(fetch)
    assert [await flight("a") for _ in range(3)] == [f"info of a #{i}" for i in (1, 2, 3)]


async def test_many_keys_do_not_grow_what_is_remembered():
    flight = SingleFlight(Stamped(), spacing=0.001)
    for i in range(3000):
        await flight(f"k{i}")
    await asyncio.sleep(0.01)
    await flight("last")
    assert len(flight._started) <= 1024 and flight.calls == 3001
