"""``dacirco jobs``: submit, list, show, cancel, wait for and follow jobs over the public API.

Every command takes ``--url`` (env ``DACIRCO_URL``), ``--api-token`` (env
``DACIRCO_API_TOKEN``) and ``--json``. Exit status: 0 done; 2 bad input or a 4xx answer;
1 the service unreachable, a 5xx answer, or ``wait`` timed out; 3 ``wait``: the job ended in
Error or Canceled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console

from dacirco.auth_options import ClientToken
from dacirco.client import render
from dacirco.client.calls import DEFAULT_URL
from dacirco.client.errors import ApiError, WaitTimeout
from dacirco.client.sse import Event
from dacirco.client.sync import Client

URL_ENV = "DACIRCO_URL"
PLAIN_WIDTH = 160  # into a file or a pipe: wide enough for full ids
NOT_COMPLETED = 3

jobs_app = typer.Typer(
    help="Submit, list, show, cancel, wait for and follow jobs of a running service.",
    no_args_is_help=True,
    add_completion=False,
)

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar=URL_ENV, help=f"the service's public API (env {URL_ENV})", show_envvar=False
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts instead of tables")]
JobId = Annotated[str, typer.Argument(help="the job's id (as `submit` printed it)")]


def _console() -> Console:
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=PLAIN_WIDTH)


def _fail(exc: ApiError | WaitTimeout, as_json: bool) -> NoReturn:
    text = render.error_json(exc) if as_json else f"error: {render.error_text(exc)}"
    Console(stderr=True, highlight=False).print(text, markup=False, soft_wrap=True)
    client_side = isinstance(exc, ApiError) and 400 <= exc.status < 500
    raise typer.Exit(2 if client_side else 1)


@contextmanager
def _api(url: str, token: str | None, as_json: bool) -> Iterator[Client]:
    """A client of ``url``; an error answer ends the command with its message."""
    try:
        with Client(url, token) as api:
            yield api
    except (ApiError, WaitTimeout) as exc:
        _fail(exc, as_json)


def _out(line: str) -> None:
    typer.echo(line)


def _show(model: BaseModel, as_json: bool, plain: Callable[[], None]) -> None:
    """A model the API answered: one line of JSON (--json), else as ``plain`` prints it."""
    if as_json:
        _out(render.dumps(model.model_dump(mode="json")))
    else:
        plain()


@jobs_app.command()
def submit(
    id_video: Annotated[str, typer.Argument(help="a movie of the catalog, e.g. bbb_5.mp4")],
    bitrate: Annotated[
        int | None,
        typer.Option("--bitrate", "-b", help="kbit/s, 500..8000 (not with --preset)"),
    ] = None,
    speed: Annotated[
        str | None,
        typer.Option(
            "--speed", "-s", help="ultrafast or fast [default: ultrafast; a preset's: fast]"
        ),
    ] = None,
    codec: Annotated[str, typer.Option(help="output video codec: h264 or hevc")] = "h264",
    priority: Annotated[
        int | None, typer.Option(help="-50..50, higher first (default 0)", show_default=False)
    ] = None,
    callback_url: Annotated[
        str | None, typer.Option(help="an http(s) URL that gets this job's changes as webhooks")
    ] = None,
    reuse: Annotated[
        bool | None,
        typer.Option(
            "--reuse/--no-reuse",
            help="--no-reuse: run it even if an identical job has completed or is in "
            "progress (the service reuses by default)",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="a streaming job: a preset's outputs (dacirco presets list)"),
    ] = None,
    quality: Annotated[
        bool, typer.Option("--quality", help="measure VMAF, PSNR and SSIM of the output")
    ] = False,
    thumbnails: Annotated[
        float | None,
        typer.Option(
            "--thumbnails", min=1, max=60, help="with --preset: a poster and a frame every N s"
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    api_token: ClientToken = None,
    as_json: Json = False,
) -> None:
    """Submit a job (a classic one: --bitrate; a streaming one: --preset); print its id."""
    if (bitrate is None) == (preset is None):
        raise typer.BadParameter(
            "give --bitrate for one MP4, or --preset for a streaming job (not both)",
            param_hint="--bitrate / --preset",
        )
    if thumbnails is not None and preset is None:
        raise typer.BadParameter("thumbnails come with a --preset", param_hint="--thumbnails")
    if preset is None and speed is None:
        speed = "ultrafast"
    with _api(url, api_token, as_json) as api:
        job_id = api.submit(
            id_video, bitrate, speed, codec, priority, callback_url, reuse,
            preset=preset, quality=quality or None, thumbnails_every=thumbnails,
        )  # fmt: skip
    _out(render.dumps({"id": job_id}) if as_json else job_id)


@jobs_app.command()
def outputs(
    job_id: JobId, url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """A completed streaming job's playlists, thumbnails and files, with signed URLs."""
    with _api(url, api_token, as_json) as api:
        found = api.outputs(job_id)
    _show(found, as_json, lambda: _console().print(render.outputs_table(found)))


@jobs_app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option(min=1, help="jobs in this page, oldest first")] = 50,
    after: Annotated[
        str | None, typer.Option(help="start after this job id (the previous page's last)")
    ] = None,
    ids: Annotated[bool, typer.Option("--ids", help="ids only, without reading each job")] = False,
    url: Url = DEFAULT_URL,
    api_token: ClientToken = None,
    as_json: Json = False,
) -> None:
    """List jobs, a page at a time (--limit, --after), with their state and progress."""
    with _api(url, api_token, as_json) as api:
        page = api.jobs(limit, after)
        jobs = [] if ids else [api.job(job_id) for job_id in page.items]
    if as_json:
        items = page.items if ids else [j.model_dump(mode="json") for j in jobs]
        _out(render.dumps({"items": items, "has_more": page.has_more}))
        return
    if ids:
        for job_id in page.items:
            _out(job_id)
    else:
        console = _console()
        console.print(render.jobs_table(jobs, f"jobs ({len(jobs)})"))
    if page.has_more and page.items:
        print(f"more: --after {page.items[-1]}", file=sys.stderr)


@jobs_app.command()
def show(
    job_id: JobId, url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """Show every field of one job: state, progress, output, errors, timings."""
    with _api(url, api_token, as_json) as api:
        job = api.job(job_id)
    _show(job, as_json, lambda: _console().print(render.job_table(job)))


@jobs_app.command()
def cancel(
    job_id: JobId, url: Url = DEFAULT_URL, api_token: ClientToken = None, as_json: Json = False
) -> None:
    """Cancel a Waiting or Started job (canceling a Canceled one again is fine)."""
    with _api(url, api_token, as_json) as api:
        job = api.cancel(job_id)
    _out(render.dumps(job.model_dump(mode="json")) if as_json else render.job_line(job))


@jobs_app.command()
def wait(
    job_id: JobId,
    timeout: Annotated[
        float | None, typer.Option(min=0.0, help="give up after this many seconds (exit 1)")
    ] = None,
    poll: Annotated[float, typer.Option(min=0.05, help="seconds between two reads")] = 1.0,
    url: Url = DEFAULT_URL,
    api_token: ClientToken = None,
    as_json: Json = False,
) -> None:
    """Wait until the job is Completed (exit 0), or in Error or Canceled (exit 3)."""
    with _api(url, api_token, as_json) as api:
        job = api.wait(job_id, timeout=timeout, poll=poll)
    _out(render.dumps(job.model_dump(mode="json")) if as_json else render.job_line(job))
    if job.state != "Completed":
        raise typer.Exit(NOT_COMPLETED)


@jobs_app.command()
def events(
    job: Annotated[
        str | None, typer.Option(help="this job's events only; ends with its final state")
    ] = None,
    after: Annotated[
        int | None, typer.Option(min=0, help="start after this event number (resume)")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many events")] = None,
    url: Url = DEFAULT_URL,
    api_token: ClientToken = None,
    as_json: Json = False,
) -> None:
    """Follow the event stream, one line per change of a job or worker, until Ctrl-C."""
    with _api(url, api_token, as_json) as api:
        try:
            _follow(api.events(job=job, after=after), count, as_json)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def _follow(stream: Generator[Event, None, None], count: int | None, as_json: bool) -> None:
    try:
        for seen, event in enumerate(stream, 1):
            _out(render.dumps(event.data) if as_json else render.event_line(event))
            if count is not None and seen >= count:
                return
    finally:
        stream.close()
