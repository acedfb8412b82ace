"""How soon the dashboard shows a change: from a job's state change in the controller to the
overview page showing it, in a real headless Chromium (Debian's, driven by Playwright).

A real `dacirco serve` on the loopback; the overview open; N short jobs submitted one after
the other through the API. The page records (epoch ms, same machine clock) when each job's
state cell first shows each state; the service's event stream says when each change was
made (its `at`). Prints the median and max of the difference over every change seen, and
first, how long the overview takes to load in the browser (navigation to the page's `load`
event, median of 10 loads) and its weight, with ``--stored`` finished jobs in the database.

    python benchmarks/dashboard_latency.py [--jobs 10] [--stored 10000]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from harness import fill, free_port, start_service

console = Console()
WATCH = """() => {
  window.seen = {};
  new MutationObserver(() => {
    for (const row of document.querySelectorAll('#jobs tr[data-job]')) {
      const state = row.querySelector('[data-field="state"]').textContent.trim().split(' ')[0];
      const key = row.dataset.job + ' ' + state;
      if (!(key in window.seen)) window.seen[key] = performance.timeOrigin + performance.now();
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


LOAD = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {ms: nav.loadEventEnd - nav.startTime,
          bytes: performance.getEntriesByType('resource').concat([nav])
                   .reduce((sum, e) => sum + e.encodedBodySize, 0)};
}"""


def main(
    jobs: Annotated[int, typer.Option(min=1, help="jobs submitted, one at a time")] = 10,
    stored: Annotated[int, typer.Option(min=0, help="finished jobs in the database")] = 10_000,
) -> None:
    """Time the overview's load with many stored jobs, then from a job's state change to the
    dashboard showing it."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium here (Debian: apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="dacirco-ui-latency-"))
    data = work / "data"
    from dacirco.catalog.service import seed
    from dacirco.config import open_local_storage

    seed(open_local_storage(data), count=1)
    asyncio.run(fill(data, stored))
    port = free_port()
    proc = start_service(data, port, work)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p, httpx.Client(base_url=url, timeout=60) as api:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            loads = []
            for _ in range(10):
                page.goto(f"{url}/ui")
                page.wait_for_load_state("load")
                loads.append(page.evaluate(LOAD))
            console.print(
                f"overview with {stored:,} stored jobs: load median "
                f"{statistics.median(x['ms'] for x in loads):.0f} ms, max "
                f"{max(x['ms'] for x in loads):.0f} ms; first load "
                f"{loads[0]['bytes'] / 1000:.1f} KB (page and assets)"
            )
            page.locator("#live.on").wait_for()
            page.evaluate(WATCH)
            ids = []
            for _ in range(jobs):
                body = {"id_video": "bbb_0.mp4", "bitrate": 800, "speed": "ultrafast"}
                job_id = api.post("/jobs", json={**body, "reuse": False}).json()
                ids.append(job_id)
                while api.get(f"/jobs/{job_id}/state").json() not in ("Completed", "Error"):
                    time.sleep(0.05)
            time.sleep(1.0)  # the last change reaches the page
            seen = page.evaluate("window.seen")
            browser.close()
            changes = api.get("/events", params={"after": 0, "follow": "false"}).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    made = {}
    for block in changes.split("\n\n"):
        data_line = next((x for x in block.splitlines() if x.startswith("data: ")), None)
        if data_line is None:
            continue
        change = json.loads(data_line[6:])
        if change.get("kind") == "job" and change["id"] in ids:
            made[f"{change['id']} {change['state']}"] = datetime.fromisoformat(change["at"])
    lags = [seen[key] / 1000 - at.timestamp() for key, at in made.items() if key in seen]
    if not lags:
        raise SystemExit("the page showed none of the changes")
    console.print(
        f"{len(lags)} changes of {len(ids)} jobs seen on the page (of {len(made)} made): "
        f"median {1000 * statistics.median(lags):.0f} ms, max {1000 * max(lags):.0f} ms"
    )


if __name__ == "__main__":
    typer.run(main)
