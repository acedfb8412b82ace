"""Scenario files: round trip, comments, and a file:line error for every malformed line."""

from __future__ import annotations

import random

import pytest

from dacirco.scenario.generate import GENERATORS, generate
from dacirco.scenario.model import Request, ScenarioError, read_scenario, write_scenario


def test_reads_the_classic_example_with_comments_and_blank_lines(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "# a comment\n\n0,bbb_1.mp4,1000,fast\n   \n  # indented comment\n"
        "5.07,bbb_9.mp4,4649,ultrafast\n"
    )
    assert read_scenario(path) == [
        Request(0.0, "bbb_1.mp4", 1000, "fast"),
        Request(5.07, "bbb_9.mp4", 4649, "ultrafast"),
    ]


def test_empty_file_is_an_empty_scenario(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("# nothing\n")
    assert read_scenario(path) == []


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_round_trip_is_exact(tmp_path, name):
    requests = generate(name, 500, random.Random(3))
    path = tmp_path / "s.csv"
    write_scenario(path, requests, header_comment=f"generator {name}\nsecond line")
    assert read_scenario(path) == requests
    lines = path.read_text().splitlines()
    assert lines[:2] == [f"# generator {name}", "# second line"]


def test_round_trip_of_arbitrary_floats(tmp_path):
    requests = [Request(d, "m.mp4", 500, "fast") for d in (0.0, 0.1 + 0.2, 1e-7, 12345.6789)]
    path = tmp_path / "s.csv"
    write_scenario(path, requests)
    assert read_scenario(path) == requests


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("1,bbb_1.mp4,1000", "4 columns"),
        ("1,bbb_1.mp4,1000,fast,extra", "4 columns"),
        ("soon,bbb_1.mp4,1000,fast", "not a number"),
        ("-1,bbb_1.mp4,1000,fast", ">= 0"),
        ("nan,bbb_1.mp4,1000,fast", ">= 0"),
        ("inf,bbb_1.mp4,1000,fast", ">= 0"),
        ("1,bbb_1.mp4,10.5,fast", "not an integer"),
        ("1,bbb_1.mp4,499,fast", "outside 500..8000"),
        ("1,bbb_1.mp4,8001,fast", "outside 500..8000"),
        ("1,bbb_1.mp4,1000,slow", "speed"),
        ("1,,1000,fast", "movie is empty"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(f"# header\n\n0,bbb_1.mp4,1000,fast\n{line}\n1,bbb_2.mp4,1000,fast\n")
    with pytest.raises(ScenarioError) as err:
        read_scenario(path)
    assert f"{path}:4:" in str(err.value)
    assert words in str(err.value)


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        read_scenario(tmp_path / "missing.csv")
