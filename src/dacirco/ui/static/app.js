// DaCirco's dashboard: follows the event stream (GET /events) and changes things through the
// public API, with the session cookie and the page's CSRF token. No build step, no library.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
const live = document.getElementById("live");
const jobsTable = document.getElementById("jobs");
const jobPage = document.getElementById("job");

async function call(method, path, body) {
  const headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {  // no answer at all: say so like an error answer
    const message = "the service is out of reach; try again in a moment";
    return new Response(JSON.stringify({ message }), { status: 503 });
  }
}

async function errorOf(resp) {
  try { return await resp.json(); } catch { return { message: `HTTP ${resp.status}` }; }
}

// ---- rows ------------------------------------------------------------------------------
function setState(cell, state, reused) {
  cell.textContent = state;
  if (reused) cell.insertAdjacentHTML("beforeend", " <small>(reused)</small>");
  cell.className = "state " + state.toLowerCase();
}

function fillJob(row, job) {
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  if (field("state")) setState(field("state"), job.state, job.reused_from);
  const bar = field("progress");
  if (bar) {
    const pct = Math.round(100 * (job.progress || 0));
    bar.value = pct; bar.textContent = pct + "%";
  }
  const final = ["Completed", "Error", "Canceled"].includes(job.state);
  row.querySelectorAll("[data-cancel]").forEach((b) => { b.hidden = final; });
  const download = document.getElementById("download");
  if (download && row === jobPage) download.hidden = job.state !== "Completed";
  if (field("delay") && job.delay != null) field("delay").textContent = job.delay.toFixed(1);
}

function jobRow(job) {
  let row = jobsTable?.querySelector(`tr[data-job="${CSS.escape(job.id)}"]`);
  if (!row && jobsTable && jobsTable.dataset.page === "0") {
    const template = document.getElementById("job-row");
    row = template.content.firstElementChild.cloneNode(true);
    row.dataset.job = job.id;
    const link = row.querySelector('[data-field="link"]');
    link.href = "/ui/jobs/" + encodeURIComponent(job.id);
    link.textContent = job.id.slice(0, 8);
    for (const name of ["movie", "bitrate", "speed", "priority"]) {
      const key = name === "movie" ? "id_video" : name;
      row.querySelector(`[data-field="${name}"]`).textContent = job[key] ?? "";
    }
    row.querySelector("[data-cancel]").dataset.cancel = job.id;
    jobsTable.tBodies[0].prepend(row);
  }
  return row;
}

// ---- the event stream --------------------------------------------------------------------
let source = null;
function follow() {
  const last = jobsTable?.dataset.lastSeq;
  const only = jobPage ? `job=${encodeURIComponent(jobPage.dataset.job)}&` : "";
  source = new EventSource(`/events?${only}after=${last || 0}`);
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => {
    live.textContent = "reconnecting…"; live.className = "live off";
    // The browser retries by itself unless the stream was refused (the service restarting
    // answers 502/503 for a moment): then start again, from the last change seen.
    if (source.readyState === EventSource.CLOSED) setTimeout(follow, 2000);
  };
  source.addEventListener("job", (e) => {
    const change = JSON.parse(e.data);
    if (jobsTable) jobsTable.dataset.lastSeq = change.seq;
    const before = document.querySelector(`[data-count="${change.previous}"]`);
    const after = document.querySelector(`[data-count="${change.state}"]`);
    if (before) before.textContent = Math.max(0, Number(before.textContent) - 1);
    if (after) after.textContent = Number(after.textContent) + 1;
    if (change.state === "Deleted") {  // retention deleted it: it leaves the page
      document.querySelector(`tr[data-job="${CSS.escape(change.id)}"]`)?.remove();
      if (jobPage && jobPage.dataset.job === change.id) {
        setState(jobPage.querySelector('[data-field="state"]'), change.state);
      }
      return;
    }
    const job = change.job;
    if (!job) return;
    if (jobPage && jobPage.dataset.job === job.id) fillJob(jobPage, job);
    const row = jobRow(job);
    if (row) fillJob(row, job);
  });
  source.addEventListener("worker", (e) => {
    const change = JSON.parse(e.data);
    const row = document.querySelector(`tr[data-worker="${CSS.escape(change.id)}"]`);
    if (row && change.state === "Deleted") row.remove();  // retention deleted it
    else if (row) {
      setState(row.querySelector('[data-field="state"]'), change.state);
      row.querySelector('[data-field="job"]').textContent = change.worker?.job_id || "";
    }
  });
}

// Progress is not a change of state: the jobs under way are read again every second.
async function refreshProgress() {
  const rows = [...document.querySelectorAll("[data-job]")].filter((r) =>
    /started/.test(r.querySelector('[data-field="state"]')?.className || ""));
  for (const row of rows.slice(0, 20)) {
    try {
      const resp = await fetch(`/jobs/${encodeURIComponent(row.dataset.job)}`,
        { credentials: "same-origin", headers: { "Accept": "application/json" } });
      if (resp.ok) fillJob(row, await resp.json());
    } catch { return; }  // the service is out of reach: the stream says "reconnecting"
  }
}

// ---- actions -----------------------------------------------------------------------------
document.addEventListener("click", async (e) => {
  const button = e.target.closest("[data-cancel]");
  if (!button) return;
  button.disabled = true;
  const resp = await call("DELETE", `/jobs/${encodeURIComponent(button.dataset.cancel)}`);
  button.disabled = false;
  if (!resp.ok) alert((await errorOf(resp)).message);
});

const form = document.getElementById("submit");
form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  form.querySelectorAll("[data-error-for]").forEach((p) => { p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
  document.getElementById("submit-error").textContent = "";
  const number = (name) => {
    const text = form.elements[name].value.trim();
    return text === "" ? text : Number(text);
  };
  const body = {
    id_video: form.elements.id_video.value.trim(), bitrate: number("bitrate"),
    speed: form.elements.speed.value, codec: form.elements.codec.value,
    priority: number("priority"), reuse: form.elements.reuse.checked,
  };
  const resp = await call("POST", "/jobs", body);
  if (resp.ok) return;  // the new job comes in through the event stream
  const error = await errorOf(resp);
  let placed = false;
  for (const part of (error.message || "").split("; ")) {
    const name = part.split(":")[0].trim();
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = part; placed = true;
      form.elements[name]?.setAttribute("aria-invalid", "true");
    }
  }
  if (!placed) document.getElementById("submit-error").textContent = error.message;
});

document.querySelectorAll("[data-csrf-form]").forEach((f) => {
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    await call("POST", f.action);
    window.location = "/ui/login";
  });
});

if (jobsTable || jobPage) {
  follow();
  setInterval(refreshProgress, 1000);
} else if (live) {
  live.textContent = "";  // a page that does not follow the stream
}
