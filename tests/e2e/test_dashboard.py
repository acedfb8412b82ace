"""The dashboard as a person uses it: a real `dacirco serve` (real workers, real ffmpeg) and
Debian's Chromium, headless, driven by Playwright. Sign in, submit through the form, watch
the job complete without a reload, cancel another with its button, open the job's page and
download its output; the form's field errors; screenshots at 1280x800 and 390 px wide."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port, start_service

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "dashboard-test-token-0123456789"
# The README's screenshots, made again only when asked (``DACIRCO_DOC_SHOTS=1 pytest
# tests/e2e/test_dashboard.py``): a run of the suite leaves the tree as it was.
DOC_SHOTS = Path(__file__).parents[2] / "docs" / "img"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOC_SHOTS if os.environ.get("DACIRCO_DOC_SHOTS") == "1" else tmp_path


if CHROMIUM is None:  # `make test` installs it (Debian's chromium); a bare pytest may lack it
    pytest.skip("no chromium on this machine (make test installs it)", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def svc(long_catalog, tmp_path_factory):  # type: ignore[no-untyped-def]
    service = start_service(
        long_catalog, tmp_path_factory.mktemp("ui"), "--api-token", TOKEN, "--max-workers", "2",
        "--max-idle-time", "60",
    )  # fmt: skip
    service.client.headers["Authorization"] = f"Bearer {TOKEN}"
    yield service
    service.stop()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def signed_in(browser, svc, **context):  # type: ignore[no-untyped-def]
    page = browser.new_context(accept_downloads=True, **context).new_page()
    page.goto(f"{svc.url}/ui")
    assert page.url.endswith("/ui/login")
    page.get_by_label("API token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{svc.url}/ui")
    page.locator("#live.on").wait_for(timeout=10_000)  # the event stream is open
    return page


def test_submit_watch_cancel_and_download_in_a_real_browser(browser, svc, tmp_path, shots):
    page = signed_in(browser, svc, viewport={"width": 1280, "height": 800})
    cookie = next(c for c in page.context.cookies() if c["name"] == "dacirco_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # Field errors come from the API, next to their field.
    page.get_by_label("Bitrate (kbit/s)").fill("100")
    page.get_by_role("button", name="Submit").click()
    # The slots are on the page (empty) before the answer comes: wait for their text.
    expect = playwright.expect
    expect(page.locator('[data-error-for="bitrate"]')).to_contain_text(
        "greater than or equal to 500"
    )
    page.get_by_label("Movie").fill("nope.mp4")
    page.get_by_label("Bitrate (kbit/s)").fill("1500")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator('[data-error-for="id_video"]')).to_contain_text("catalog")
    expect(page.locator('[data-error-for="bitrate"]')).to_have_text("")

    # A job through the form: its row appears and reaches Completed at 100 %, no reload.
    page.get_by_label("Movie").fill("bbb_1.mp4")
    page.get_by_label("Reuse an identical output").uncheck()
    page.get_by_role("button", name="Submit").click()
    row = page.locator("#jobs tbody tr").first
    row.locator('[data-field="state"]', has_text="Completed").wait_for(timeout=120_000)
    assert row.locator("progress").get_attribute("value") == "100"
    job_id = row.get_attribute("data-job")
    assert svc.client.get(f"/jobs/{job_id}").json()["state"] == "Completed"
    page.screenshot(path=str(shots / "dashboard-1280.png"), full_page=True)

    # A long one, canceled with its button.
    page.get_by_label("Movie").fill("long.mp4")
    page.get_by_label("Speed").select_option("fast")
    page.get_by_role("button", name="Submit").click()
    long_row = page.locator("#jobs tbody tr", has_text="long.mp4").first
    long_row.locator('[data-field="state"]', has_text="Started").wait_for(timeout=60_000)
    long_id = long_row.get_attribute("data-job")
    long_row.get_by_role("button", name="Cancel").click()
    long_row.locator('[data-field="state"]', has_text="Canceled").wait_for(timeout=10_000)
    assert svc.client.get(f"/jobs/{long_id}/state").json() == "Canceled"

    # The job's page: its timeline and attempts; the output downloads.
    page.locator(f'tr[data-job="{job_id}"]').get_by_role("link").click()
    page.wait_for_url(f"{svc.url}/ui/jobs/{job_id}")
    assert page.locator(".timeline .bar").count() >= 2
    assert "Done" in page.locator("table").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the output").click()
    path = tmp_path / "out.mp4"
    info.value.save_as(path)
    from tests.e2e.test_transcode import probe

    codec, duration, _ = probe(path)
    assert codec == "h264" and duration > 0.5


def test_readable_on_a_phone_and_no_traceback_anywhere(browser, svc, shots):
    page = signed_in(browser, svc, viewport={"width": 390, "height": 844}, is_mobile=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    page.screenshot(path=str(shots / "dashboard-390.png"), full_page=True)
    resp = page.goto(f"{svc.url}/ui/jobs/no-such-job")
    assert resp is not None and resp.status == 404
    assert "not found" in page.get_by_role("alert").inner_text()
    assert "Traceback" not in page.content()


def test_changes_need_the_pages_csrf_token(svc):
    """With only the session cookie, reading works; a change without the CSRF header is
    refused (another site could make the browser send the cookie, not the header)."""
    import httpx

    with httpx.Client(base_url=svc.url, cookies={"dacirco_session": TOKEN}) as c:
        assert c.get("/jobs").status_code == 200
        refused = c.post("/jobs", json={"id_video": "bbb_1.mp4", "bitrate": 900, "speed": "fast"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    with httpx.Client(base_url=svc.url, cookies={"dacirco_session": "forged"}) as c:
        assert c.get("/jobs").status_code == 403


def test_the_runs_page_shows_this_runs_report(browser, svc):
    job_id = svc.submit(id_video="bbb_0.mp4")
    assert svc.wait_state(job_id, {"Completed", "Error"}, timeout=120) == "Completed"
    page = signed_in(browser, svc, viewport={"width": 1280, "height": 800})
    page.get_by_role("link", name="Runs").click()
    page.wait_for_url(f"{svc.url}/ui/runs")
    figures = page.locator("#figures").inner_text()
    assert "jobs" in figures and "reused" in figures and "delay avg" in figures
    images = page.locator(".plots img")
    assert images.count() >= 3
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle()
        )
    resp = page.goto(f"{svc.url}/ui/runs?run=../../etc/passwd")
    assert resp is not None and resp.status == 404
    assert "no run named" in page.get_by_role("alert").inner_text()


ACTIVE = "document.activeElement.id || document.activeElement.textContent.trim()"


def test_the_keyboard_alone_submits_a_job_and_opens_its_page(browser, svc):
    page = signed_in(browser, svc, viewport={"width": 1280, "height": 800})
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button, a[href]')]
          .filter((e) => !e.closest('template'))
          .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim())
          .map((e) => e.outerHTML)"""
    )
    assert unlabelled == [], f"controls without a label: {unlabelled}"

    focused = []  # Tab from the top of the page reaches the form's first field
    while "id_video" not in focused and len(focused) < 30:
        page.keyboard.press("Tab")
        focused.append(page.evaluate(ACTIVE))
    assert focused[-1] == "id_video", f"Tab went through {focused}"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows no focus ring"
    page.keyboard.press("Control+A")
    page.keyboard.type("bbb_2.mp4")
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(page.evaluate(ACTIVE))
        if order[-1] == "reuse":
            page.keyboard.press("Space")  # unchecked: this job runs on its own
    assert order == ["bitrate", "speed", "codec", "priority", "reuse", "Submit"], order
    page.keyboard.press("Enter")
    row = page.locator("#jobs tbody tr", has_text="bbb_2.mp4").first
    row.locator('[data-field="state"]', has_text="Completed").wait_for(timeout=120_000)
    job_id = row.get_attribute("data-job")
    assert svc.client.get(f"/jobs/{job_id}").json()["reuse"] is False

    row.get_by_role("link").focus()  # the job's link, then Enter: its page
    page.keyboard.press("Enter")
    page.wait_for_url(f"{svc.url}/ui/jobs/{job_id}")
    assert "Completed" in page.locator("#job").inner_text()


def test_a_lost_connection_shows_reconnecting_and_recovers(browser, long_catalog, tmp_path):
    """The service stopped under an open page, then started again on the same port and data:
    the page says "reconnecting…", then follows the new process's changes with no reload."""
    port = free_port()
    args = ("--api-token", TOKEN, "--max-workers", "1")
    service = start_service(long_catalog, tmp_path, *args, port=port)
    try:
        page = signed_in(browser, service, viewport={"width": 1280, "height": 800})
        service.stop()
        page.locator("#live.off").wait_for(timeout=30_000)
        assert page.locator("#live").inner_text() == "reconnecting…"
        service = start_service(long_catalog, tmp_path, *args, port=port)
        service.client.headers["Authorization"] = f"Bearer {TOKEN}"
        page.locator("#live.on").wait_for(timeout=60_000)
        job_id = service.submit(id_video="bbb_3.mp4")
        row = page.locator(f'#jobs tr[data-job="{job_id}"]')
        row.locator('[data-field="state"]', has_text="Completed").wait_for(timeout=120_000)
        assert "Traceback" not in page.content()
    finally:
        service.stop()


def test_a_job_deleted_by_retention_leaves_the_open_page(browser, catalog_dir, tmp_path):
    """Under ``--retention``, a finished job's row goes from an open page when the service
    deletes it (its change to Deleted comes on the event stream), and its count with it."""
    service = start_service(
        catalog_dir, tmp_path, "--api-token", TOKEN, "--retention", "5s",
        "--algorithm", "minimize-workers",
    )  # fmt: skip
    service.client.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        page = signed_in(browser, service, viewport={"width": 1280, "height": 800})
        job_id = service.submit(id_video="bbb_2.mp4", bitrate=900, speed="ultrafast")
        row = page.locator(f'#jobs tr[data-job="{job_id}"]')
        row.wait_for(state="attached", timeout=60_000)
        completed = page.locator('[data-count="Completed"]')
        playwright.expect(completed).to_have_text("1", timeout=120_000)
        row.wait_for(state="detached", timeout=120_000)
        assert service.client.get(f"/jobs/{job_id}").status_code == 404
        playwright.expect(completed).to_have_text("0")
        assert "Traceback" not in page.content()
    finally:
        service.stop()


def stored_jobs(data_dir: Path, n: int) -> None:
    """``n`` completed jobs written straight into the service's database, as months of work
    would have left them."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from dacirco.config import database_path
    from dacirco.controller.store import Store
    from dacirco.domain import Job, JobState, Speed

    async def fill() -> None:
        store = Store(database_path(data_dir))
        try:
            jobs = []
            for i in range(n):
                job = Job(f"old-{i:05d}", "bbb_1.mp4", 500 + i, Speed.FAST, 1.7e9 + i)
                job.transition(JobState.STARTED, 1.7e9 + i + 1, "assigned")
                job.transition(JobState.COMPLETED, 1.7e9 + i + 9, "done")
                job.output = f"bbb_1-{job.bitrate}k-fast-{job.id}.mp4"
                jobs.append(job)
            await store.save(jobs=tuple(jobs))
        finally:
            store.close()

    # In a thread of its own: Playwright's loop already runs in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, fill()).result()


def test_ten_thousand_stored_jobs_are_paged_and_counted(browser, catalog_dir, tmp_path):
    shutil.copytree(catalog_dir, tmp_path / "data")
    stored_jobs(tmp_path / "data", 10_000)
    service = start_service(catalog_dir, tmp_path, "--api-token", TOKEN)
    try:
        page = signed_in(browser, service, viewport={"width": 1280, "height": 800})
        assert page.locator('[data-count="Completed"]').inner_text() == "10000"
        rows = page.locator("#jobs tbody tr")
        assert rows.count() == 50
        assert rows.first.get_attribute("data-job") == "old-09999"  # newest first
        assert "page 1 of 200" in page.locator("#jobs-title").inner_text()
        page.get_by_role("link", name="Older").click()
        page.wait_for_url(f"{service.url}/ui?page=1")
        assert page.locator("#jobs tbody tr").first.get_attribute("data-job") == "old-09949"
        resp = page.goto(f"{service.url}/ui?page=199")
        assert resp is not None and resp.status == 200
        assert page.locator("#jobs tbody tr").last.get_attribute("data-job") == "old-00000"
        assert len(resp.body()) < 200_000
    finally:
        service.stop()
