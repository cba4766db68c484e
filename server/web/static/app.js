// The gearmand dashboard: polls the JSON API and redraws. Every value from
// the server goes into the page as text (never as HTML): function names,
// uniques and client ids are arbitrary bytes chosen by clients.
"use strict";

const refreshMillis = 1500;
const jobsPerPage = 100;
const listLimit = 1000; // the API's maximum page
let jobsOffset = 0;

const $ = (id) => document.getElementById(id);

async function getJSON(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json();
  if (!res.ok) {
    throw new Error(body.error || res.statusText);
  }
  return body;
}

function setText(id, value) {
  $(id).textContent = value;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) {
    td.className = cls;
  }
  return td;
}

function fillTable(id, items, columns, draw) {
  const tbody = $(id).tBodies[0];
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    draw(tr, item);
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none", "empty");
    td.colSpan = columns;
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function showing(id, page, items, noun) {
  let note = `${page.total} ${noun}`;
  if (items.length < page.total) {
    note += `, showing ${items.length ? page.offset + 1 : 0}–${page.offset + items.length}`;
  }
  setText(id, note);
}

// bytes writes n in binary units: "64.0 MiB".
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function millis(ms) {
  if (ms < 1) {
    return `${(ms * 1000).toFixed(0)} µs`;
  }
  if (ms < 1000) {
    return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
  }
  return `${(ms / 1000).toFixed(1)} s`;
}

function age(seconds) {
  if (seconds < 60) {
    return `${seconds.toFixed(0)} s`;
  }
  if (seconds < 3600) {
    return `${(seconds / 60).toFixed(0)} min`;
  }
  if (seconds < 86400) {
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  return `${(seconds / 86400).toFixed(1)} d`;
}

function drawStatus(s) {
  setText("version", s.version);
  setText("jobs-held", s.jobs);
  setText("submitted", s.counters.submitted);
  setText("completed", s.counters.completed);
  setText("failed", s.counters.failed);
  setText("requeued", s.counters.requeued);
  setText("connections", s.connections);

  const st = s.store;
  setText("store-kind", st.kind);
  setText("store-mode", st.durable ? st.mode : "memory only");
  const health = $("store-health");
  health.textContent = st.healthy ? "healthy" : "failing";
  health.className = st.healthy ? "ok" : "bad";
  setText("store-last", st.commits ? `${millis(st.last_commit_ms)}, ${st.last_batch} ops` : "–");
  setText("store-mean", st.commits ? millis(st.mean_commit_ms) : "–");
  setText("store-commits", st.failures ? `${st.commits} (${st.failures} failed)` : st.commits);
  setText("store-pending", st.pending_writes);
  const space = $("store-space");
  if (st.space) {
    space.textContent = st.space.low
      ? `${bytes(st.space.free_bytes)}: below ${bytes(st.space.min_free_bytes)}, new background jobs refused`
      : `${bytes(st.space.free_bytes)} (minimum ${bytes(st.space.min_free_bytes)})`;
    space.className = st.space.low ? "bad" : "";
  } else {
    space.textContent = "not watched";
    space.className = "";
  }
  const storeErr = $("store-error");
  storeErr.hidden = !st.last_error;
  storeErr.textContent = st.last_error ? `last error: ${st.last_error}` : "";

  const r = s.replay;
  const state = $("replay-state");
  state.textContent = r.state;
  state.className = r.state === "failed" ? "bad" : r.state === "done" ? "ok" : "";
  setText("replay-loaded", r.loaded);
  setText("replay-duration", r.started ? millis(r.duration_ms) : "–");
  const replayErr = $("replay-error");
  replayErr.hidden = !r.error;
  replayErr.textContent = r.error || "";
}

function drawFunctions(page) {
  fillTable("functions", page.functions, 6, (tr, f) => {
    tr.dataset.function = f.name;
    cell(tr, f.name).dataset.col = "name";
    cell(tr, f.queued.high, "num").dataset.col = "high";
    cell(tr, f.queued.normal, "num").dataset.col = "normal";
    cell(tr, f.queued.low, "num").dataset.col = "low";
    cell(tr, f.running, "num").dataset.col = "running";
    cell(tr, f.workers, "num").dataset.col = "workers";
  });
  showing("functions-note", page, page.functions, "functions");
}

function drawWorkers(page) {
  fillTable("workers", page.workers, 4, (tr, w) => {
    tr.dataset.fd = w.fd;
    cell(tr, w.fd, "num").dataset.col = "fd";
    cell(tr, w.addr).dataset.col = "addr";
    cell(tr, w.client_id).dataset.col = "client_id";
    cell(tr, w.functions.join(", ")).dataset.col = "functions";
  });
  showing("workers-note", page, page.workers, "workers");
}

function drawJobs(page) {
  fillTable("jobs", page.jobs, 7, (tr, j) => {
    tr.dataset.handle = j.handle;
    cell(tr, j.handle).dataset.col = "handle";
    cell(tr, j.function).dataset.col = "function";
    cell(tr, j.unique).dataset.col = "unique";
    cell(tr, j.priority).dataset.col = "priority";
    cell(tr, j.state).dataset.col = "state";
    cell(tr, age(j.age_seconds), "num").dataset.col = "age";
    cell(tr, j.attempts, "num").dataset.col = "attempts";
  });
  showing("jobs-note", page, page.jobs, "jobs");
  $("jobs-prev").disabled = jobsOffset === 0;
  $("jobs-next").disabled = jobsOffset + jobsPerPage >= page.total;
}

async function refresh() {
  const live = $("live");
  try {
    const [status, functions, workers, jobs] = await Promise.all([
      getJSON("api/status"),
      getJSON(`api/functions?limit=${listLimit}`),
      getJSON(`api/workers?limit=${listLimit}`),
      getJSON(`api/jobs?offset=${jobsOffset}&limit=${jobsPerPage}`),
    ]);
    if (jobsOffset > 0 && jobsOffset >= jobs.total) {
      // The jobs of this page have gone: step back to the last page.
      jobsOffset = Math.max(0, Math.floor((jobs.total - 1) / jobsPerPage) * jobsPerPage);
    }
    drawStatus(status);
    drawFunctions(functions);
    drawWorkers(workers);
    drawJobs(jobs);
    live.dataset.state = "live";
    live.textContent = `live, updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    live.dataset.state = "down";
    live.textContent = `cannot reach the server: ${err.message}`;
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, refreshMillis);
}

$("jobs-prev").addEventListener("click", () => {
  jobsOffset = Math.max(0, jobsOffset - jobsPerPage);
  refresh();
});
$("jobs-next").addEventListener("click", () => {
  jobsOffset += jobsPerPage;
  refresh();
});

loop();
