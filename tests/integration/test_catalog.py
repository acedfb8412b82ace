"""The generated catalog with the real ffmpeg: content, determinism, add, list and seed CLI."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from dacirco.catalog import generate
from dacirco.catalog.cli import catalog_app
from dacirco.catalog.generate import (
    GenerationError,
    MovieSpec,
    default_specs,
    generate_movie,
    movie_spec,
)
from dacirco.catalog.probe import MovieInfo, NotAVideo, from_metadata, probe
from dacirco.catalog.service import InvalidMovieName, add, list_movies, seed
from dacirco.config import open_local_storage, storage_root
from dacirco.domain import MAX_MOVIE_NAME
from tests.conftest import Bait, hls_playlist

pytestmark = pytest.mark.slow

SCALE, HEIGHT, COUNT = 0.25, 144, 3  # 1 s, 1.25 s, 1.75 s at 256x144
SPECS = default_specs(COUNT, duration_scale=SCALE, max_height=HEIGHT)


def movie_path(data_dir: Path, name: str) -> Path:
    return storage_root(data_dir) / "input-videos" / name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("seeded")
    frames: dict[str, list[int]] = {}

    class Recorder:
        def planned(self, specs: list[MovieSpec]) -> None:
            assert [s.name for s in specs] == [s.name for s in SPECS]

        def movie_started(self, spec: MovieSpec) -> None:
            frames[spec.name] = []

        def frames(self, spec: MovieSpec, done: int, total: int) -> None:
            assert total == spec.frames
            frames[spec.name].append(done)

        def movie_done(self, spec: MovieSpec, info: MovieInfo | None, skipped: bool) -> None:
            assert not skipped and info is not None and info.name == spec.name

    report = seed(
        open_local_storage(data_dir),
        duration_scale=SCALE,
        max_height=HEIGHT,
        count=COUNT,
        progress=Recorder(),
    )
    assert [m.name for m in report.generated] == [s.name for s in SPECS] and not report.skipped
    for spec in SPECS:
        done = frames[spec.name]
        # ffmpeg's own progress lines (at least its final one), then the end
        assert len(done) >= 2 and done == sorted(done) and done[-1] == spec.frames
    return data_dir


def test_seeded_movies_are_h264_aac_as_specified(seeded: Path) -> None:
    for spec in SPECS:
        info = probe(movie_path(seeded, spec.name))
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert (info.width, info.height) == (spec.width, spec.height) == (256, 144)
        assert info.fps == spec.fps
        assert info.frames == spec.frames
        assert abs(info.duration - spec.duration) <= 1 / spec.fps
        with av.open(str(movie_path(seeded, spec.name))) as container:
            assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_seed_stores_the_probe_as_metadata(seeded: Path) -> None:
    storage = open_local_storage(seeded)
    for obj in storage.list("input-videos/"):
        stored = from_metadata(obj.name, obj.size, obj.metadata)
        assert stored is not None
        assert stored == probe(movie_path(seeded, obj.name))


def test_seeding_twice_gives_the_same_bytes(seeded: Path, tmp_path: Path) -> None:
    seed(open_local_storage(tmp_path), duration_scale=SCALE, max_height=HEIGHT, count=COUNT)
    for spec in SPECS:
        assert sha256(movie_path(tmp_path, spec.name)) == sha256(movie_path(seeded, spec.name))


def test_movies_differ_from_one_another(seeded: Path) -> None:
    assert len({sha256(movie_path(seeded, s.name)) for s in SPECS}) == COUNT


def test_keyframes_every_two_seconds(tmp_path: Path) -> None:
    spec = movie_spec(3, duration_scale=0.5, max_height=72)  # 5 s at 30 fps
    generate_movie(spec, tmp_path / spec.name)
    with av.open(str(tmp_path / spec.name)) as container:
        stream = container.streams.video[0]
        keys = sorted(
            float(p.pts * stream.time_base) for p in container.demux(stream) if p.is_keyframe
        )
    assert keys == pytest.approx([0.0, 2.0, 4.0], abs=0.01)


def test_ffmpeg_failure_carries_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate, "filter_graph", lambda spec: "nosuchfilter=1[v];sine[a]")
    dest = tmp_path / "broken.mp4"
    with pytest.raises(GenerationError, match=r"bbb_0\.mp4[\s\S]*nosuchfilter"):
        generate_movie(movie_spec(0, max_height=72), dest)
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_add_accepts_a_movie_and_refuses_a_text_file(seeded: Path, tmp_path: Path) -> None:
    storage = open_local_storage(tmp_path / "data")
    movie = movie_path(seeded, "bbb_1.mp4")
    [info] = add(storage, [movie], name="mine.mp4")
    assert info.name == "mine.mp4" and info.video_codec == "h264"
    assert [m.name for m in list_movies(storage)] == ["mine.mp4"]
    text = tmp_path / "notes.txt"
    text.write_text("not a movie\n")
    with pytest.raises(NotAVideo, match=r"notes\.txt"):
        add(storage, [movie, text])
    assert [m.name for m in list_movies(storage)] == ["mine.mp4"]  # nothing stored
    with pytest.raises(InvalidMovieName):
        add(storage, [movie], name="../escape.mp4")


def test_add_refuses_a_playlist_without_reading_what_it_names(tmp_path: Path, bait: Bait) -> None:
    """An HLS playlist (ffmpeg reads it as a movie made of what it names) is refused, naming
    its format, and nothing it names is opened; nothing is stored."""
    storage = open_local_storage(tmp_path / "data")
    playlist = hls_playlist(tmp_path / "movie.m3u8", bait.path)
    with pytest.raises(NotAVideo, match=r"movie\.m3u8: container format 'hls' refused"):
        add(storage, [playlist])
    assert not bait.was_read()
    assert list_movies(storage) == []


def test_cli_add_refuses_a_playlist_in_one_line(tmp_path: Path, bait: Bait) -> None:
    playlist = hls_playlist(tmp_path / "movie.m3u8", bait.path)
    result = CliRunner().invoke(
        catalog_app, ["add", str(playlist), "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "container format 'hls' refused" in result.output and "Traceback" not in result.output
    assert not bait.was_read()


def test_add_refuses_a_name_too_long_naming_the_limit(seeded: Path, tmp_path: Path) -> None:
    """A name that its outputs could not be stored under is refused here, not on a worker's
    poll; nothing is stored. The CLI says so in one line."""
    storage = open_local_storage(tmp_path / "data")
    movie = movie_path(seeded, "bbb_1.mp4")
    too_long = "m" * (MAX_MOVIE_NAME - 3) + ".mp4"
    with pytest.raises(InvalidMovieName, match=f"at most {MAX_MOVIE_NAME} "):
        add(storage, [movie], name=too_long)
    assert list_movies(storage) == []
    args = ["add", str(movie), "--name", too_long, "--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(catalog_app, args)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert f"too long: {MAX_MOVIE_NAME + 1} characters, at most {MAX_MOVIE_NAME}" in result.output
    [info] = add(storage, [movie], name=too_long[1:])  # at the limit
    assert info.name == too_long[1:]


def test_list_probes_movies_without_metadata(seeded: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(seeded, data_dir)
    shutil.rmtree(storage_root(data_dir) / ".meta")
    movies = list_movies(open_local_storage(data_dir))
    assert [m.name for m in movies] == [s.name for s in SPECS]
    assert [m.frames for m in movies] == [s.frames for s in SPECS]


def test_cli_add_and_list(seeded: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    text = tmp_path / "notes.txt"
    text.write_text("not a movie\n")
    result = runner.invoke(catalog_app, ["add", str(text), *data])
    assert result.exit_code == 1
    assert "notes.txt" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1

    movie = movie_path(seeded, "bbb_2.mp4")
    result = runner.invoke(catalog_app, ["add", str(movie), "--name", "clip.mp4", *data])
    assert result.exit_code == 0, result.output
    result = runner.invoke(catalog_app, ["list", *data])
    assert result.exit_code == 0, result.output
    assert "clip.mp4" in result.output and "256x144" in result.output
    assert "h264/aac" in result.output


def test_cli_seed_skip_existing_and_force(seeded: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(seeded, data_dir)
    runner = CliRunner()
    args = ["seed", "--data-dir", str(data_dir), "--duration-scale", str(SCALE)]
    args += ["--max-height", str(HEIGHT), "--count", str(COUNT)]
    before = {s.name: movie_path(data_dir, s.name).stat().st_mtime_ns for s in SPECS}

    result = runner.invoke(catalog_app, [*args, "--skip-existing"])
    assert result.exit_code == 0, result.output
    assert "0 generated, 3 already there" in result.output
    after = {s.name: movie_path(data_dir, s.name).stat().st_mtime_ns for s in SPECS}
    assert after == before

    movie_path(data_dir, "bbb_1.mp4").unlink()
    result = runner.invoke(catalog_app, [*args, "--skip-existing"])
    assert "1 generated, 2 already there" in result.output
    assert sha256(movie_path(data_dir, "bbb_1.mp4")) == sha256(movie_path(seeded, "bbb_1.mp4"))

    result = runner.invoke(catalog_app, [*args, "--force"])
    assert result.exit_code == 0, result.output
    assert "3 generated, 0 already there" in result.output
    assert movie_path(data_dir, "bbb_0.mp4").stat().st_mtime_ns != before["bbb_0.mp4"]


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in ("seed", "add", "list"):
        result = runner.invoke(catalog_app, [command, "--help"])
        assert result.exit_code == 0 and "--data-dir" in result.output
