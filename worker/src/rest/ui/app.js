// connect-rs status page. One call per refresh (GET /connectors?expand=status&expand=info&expand=metrics),
// rows kept by connector name and updated in place, so a click never lands on a row that was just replaced.
// Every text from the API goes in with textContent (never as HTML). No dependencies, works offline.
"use strict";

const API = ".."; // the page is served at <base>/ui/, the REST API at <base>/
const REFRESH_MS = 2000;

const el = (id) => document.getElementById(id);
const rows = new Map(); // name -> {row, detail, cells, key}
const expanded = new Set(); // connector names whose detail row is open
const openTraces = new Set(); // "name/task" whose trace is unfolded
const busy = new Set(); // connector names with an action under way: their buttons wait
let latest = {};
let timer = null;
let requested = 0; // refreshes sent, and the newest one applied: an older answer never overwrites a newer one
let applied = 0;

function make(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

// ---- data -------------------------------------------------------------------------------------------------

async function api(method, path) {
  const response = await fetch(API + path, { method, headers: { Accept: "application/json" } });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const message = body && body.message ? body.message : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function sum(values) { return values.reduce((a, b) => a + b, 0); }

// What one connector shows, from its expanded entry.
function summarise(name, entry) {
  const status = entry.status || { connector: { state: "UNASSIGNED" }, tasks: [], type: "" };
  const tasks = (entry.metrics && entry.metrics.tasks) || [];
  const states = status.tasks.map((t) => t.state);
  const failedTasks = states.filter((s) => s === "FAILED").length;
  // Records a second: what the connector delivers (sources: to Kafka; sinks: to the target), summed over tasks,
  // each task's history aligned on its newest point.
  const len = Math.max(0, ...tasks.map((t) => (t["rate-history"] || []).length));
  const history = [];
  for (let i = 0; i < len; i++) {
    history.push(sum(tasks.map((t) => {
      const h = t["rate-history"] || [];
      const p = h[h.length - len + i];
      return p ? p.written : 0;
    })));
  }
  return {
    name,
    type: status.type || (entry.info && entry.info.type) || "",
    state: status.connector.state,
    health: status.connector.health || "",
    trace: status.connector.trace,
    restartCount: status.connector.restart_count || 0,
    nextRestart: status.connector.next_restart_at_ms,
    tasks: status.tasks,
    taskMetrics: tasks,
    failedTasks,
    runningTasks: states.filter((s) => s === "RUNNING").length,
    rate: sum(tasks.map((t) => t["records-written-rate"] || 0)),
    history,
    dlq: sum(tasks.map((t) => t["deadletterqueue-produce-requests"] || 0)),
    // Unknown (–) until a sink's consumer has reported a partition.
    lag: lagOf(tasks),
    config: (entry.info && entry.info.config) || {},
  };
}

function lagOf(tasks) {
  const lags = tasks.flatMap((t) => (t["partition-lag"] || []).map((p) => p.lag));
  return lags.length ? sum(lags) : null;
}

function matches(c) {
  const text = el("filter-name").value.trim().toLowerCase();
  if (text && !c.name.toLowerCase().includes(text)) return false;
  const want = el("filter-state").value;
  if (!want) return true;
  if (want === "FAILED") return c.state === "FAILED" || c.failedTasks > 0;
  if (want === "DEGRADED") return c.health === "degraded" || c.health === "failed" || c.health === "no_tasks";
  return c.state === want;
}

// ---- rendering --------------------------------------------------------------------------------------------

function formatRate(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(0) + "k";
  if (n >= 100) return n.toFixed(0);
  return n.toFixed(1);
}

function sparkline(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 90 20");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  if (points.length > 1) {
    const max = Math.max(...points, 1e-9);
    const step = 90 / (points.length - 1);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((v, i) => `${(i * step).toFixed(1)},${(19 - (v / max) * 18).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  return svg;
}

function stateBadge(state, health) {
  const span = make("span", {}, make("span", { class: `state state-${state}`, text: state }));
  if (health && health !== "healthy" && health !== "not_running") {
    span.append(make("span", { class: `health health-${health}`, text: health.replace("_", " ") }));
  }
  return span;
}

function inSeconds(atMs) {
  if (!atMs) return "";
  const s = Math.max(0, Math.round((atMs - Date.now()) / 1000));
  return `in ${s} s`;
}

// Secrets: a value from a config provider shows as its placeholder (the API never resolves them); a literal
// value under a secret-looking key, or a password inside a URL, is hidden.
const SECRET_KEY = /(password|passwd|secret|token|credential|jaas|user\.info|api[._-]?key|private[._-]?key|\.key$)/i;
function shownValue(key, value) {
  const v = String(value);
  if (/^\$\{[^}]+\}$/.test(v)) return { text: v };
  if (SECRET_KEY.test(key) && v !== "") return { text: "hidden", secret: true };
  return {
    text: v
      // user:password@ in a URL (the userinfo ends at the last @ before the host)
      .replace(/\/\/([^/\s]*)@/g, (whole, info) => {
        const colon = info.indexOf(":");
        return colon < 0 ? whole : `//${info.slice(0, colon)}:••••@`;
      })
      // password=... in a query string or a JDBC URL
      .replace(/([?&;](?:password|passwd|pwd|secret|token|access_token|api_key)=)[^&;\s]*/gi, "$1••••"),
  };
}

function actionButtons(name) {
  const b = (label, title, action, extra = {}) =>
    make("button", { type: "button", title, "data-action": label.toLowerCase(), onclick: () => action(name), ...extra, text: label });
  return make("div", { class: "actions" },
    b("Pause", "Pause the connector and its tasks", pause),
    b("Resume", "Resume a paused or stopped connector", resume),
    b("Stop", "Stop the connector: its tasks shut down, offsets can then be changed", stop),
    b("Restart", "Restart (see the options in the toolbar)", restart),
    b("Delete", "Delete the connector", remove, { class: "danger" }));
}

function createRow(name) {
  const cells = {
    toggle: make("button", { type: "button", class: "toggle", "aria-expanded": "false", title: "Tasks, traces and config", text: "▸",
      onclick: () => toggle(name) }),
    name: make("td", { class: "name", text: name }),
    type: make("td"),
    state: make("td", { class: "state-cell" }),
    tasks: make("td"),
    rate: make("td", { class: "num rate" }),
    dlq: make("td", { class: "num dlq" }),
    lag: make("td", { class: "num lag" }),
  };
  const row = make("tr", { class: "connector", "data-name": name },
    make("td", {}, cells.toggle), cells.name, cells.type, cells.state, cells.tasks, cells.rate, cells.dlq, cells.lag,
    make("td", {}, actionButtons(name)));
  const detail = make("tr", { class: "detail", "data-name": name, hidden: "" }, make("td", { colspan: "9" }));
  return { row, detail, cells, key: "", detailKey: "" };
}

function updateRow(r, c) {
  r.row.dataset.state = c.state;
  const key = JSON.stringify([c.type, c.state, c.health, c.runningTasks, c.tasks.length, c.failedTasks, c.dlq, c.lag, c.rate, c.history]);
  if (key !== r.key) {
    r.key = key;
    r.cells.type.textContent = c.type;
    r.cells.state.replaceChildren(stateBadge(c.state, c.health));
    r.cells.tasks.textContent = `${c.runningTasks}/${c.tasks.length} running` + (c.failedTasks ? `, ${c.failedTasks} failed` : "");
    r.cells.rate.replaceChildren(sparkline(c.history), make("span", { text: formatRate(c.rate) }));
    r.cells.dlq.textContent = String(c.dlq);
    r.cells.lag.textContent = c.lag == null ? "–" : String(c.lag);
  }
  const buttons = r.row.querySelectorAll("button[data-action]");
  for (const button of buttons) {
    const a = button.dataset.action;
    button.disabled = busy.has(c.name) || (a === "pause" && c.state === "PAUSED")
      || (a === "resume" && c.state !== "PAUSED" && c.state !== "STOPPED") || (a === "stop" && c.state === "STOPPED");
  }
  const open = expanded.has(c.name);
  r.detail.hidden = !open;
  r.cells.toggle.textContent = open ? "▾" : "▸";
  r.cells.toggle.setAttribute("aria-expanded", String(open));
  if (open) renderDetail(r, c);
}

function traceBlock(id, trace) {
  const details = make("details", { class: "trace", "data-trace": id },
    make("summary", { text: "trace" }), make("pre", { class: "trace", text: trace }));
  details.open = openTraces.has(id);
  details.addEventListener("toggle", () => { if (details.open) openTraces.add(id); else openTraces.delete(id); });
  return details;
}

function renderDetail(r, c) {
  // Rebuilt only when its structure changed (states, traces, config), so an open trace keeps its scroll
  // position and selection; counters and countdowns are updated in place on every refresh.
  const key = JSON.stringify([c.state, c.trace, c.restartCount, c.tasks.map((t) => [t.id, t.state, t.trace, t.worker_id]), c.config]);
  if (key !== r.detailKey) {
    r.detailKey = key;
    buildDetail(r, c);
  }
  const metricsById = new Map(c.taskMetrics.map((m) => [m.id, m]));
  const restarts = r.detail.querySelector("p.connector-restarts");
  if (restarts) restarts.textContent = restartText(c.restartCount, c.nextRestart);
  for (const tr of r.detail.querySelectorAll("tr.task")) {
    const id = Number(tr.dataset.task);
    const t = c.tasks.find((task) => task.id === id) || {};
    const m = metricsById.get(id) || {};
    const set = (cls, text) => { const cell = tr.querySelector(`td.${cls}`); if (cell) cell.textContent = text; };
    set("restarts", String(t.restart_count || 0));
    set("next", t.next_restart_at_ms ? inSeconds(t.next_restart_at_ms) : "");
    set("read", String(m["records-read"] ?? ""));
    set("written", String(m["records-written"] ?? ""));
    set("dlq", String(m["deadletterqueue-produce-requests"] ?? ""));
    set("lag", (m["partition-lag"] || []).map((p) => `${p.topic}-${p.partition}: ${p.lag}`).join(", "));
  }
}

function restartText(count, next) {
  return `Automatic restarts: ${count}` + (next ? `, next ${inSeconds(next)}` : "");
}

function buildDetail(r, c) {
  const cell = r.detail.firstChild;
  const parts = [];
  if (c.trace) parts.push(make("h3", { text: "Connector" }), traceBlock(`${c.name}/connector`, c.trace));
  if (c.restartCount) parts.push(make("p", { class: "connector-restarts" }));
  // Counters, countdowns and lag are filled in by renderDetail.
  const taskRows = c.tasks.map((t) => make("tr", { class: "task", "data-task": String(t.id) },
    make("td", { text: String(t.id) }),
    make("td", {}, stateBadge(t.state)),
    make("td", { text: t.worker_id || "" }),
    make("td", { class: "num restarts" }),
    make("td", { class: "next" }),
    make("td", { class: "num read" }),
    make("td", { class: "num written" }),
    make("td", { class: "num dlq" }),
    make("td", { class: "lag" }),
    make("td", {}, t.trace ? traceBlock(`${c.name}/${t.id}`, t.trace) : null)));
  parts.push(make("h3", { text: "Tasks" }));
  parts.push(taskRows.length
    ? make("table", { class: "tasks" },
      make("thead", {}, make("tr", {}, ...["Task", "State", "Worker", "Restarts", "Next restart", "Read", "Written", "DLQ", "Lag", "Trace"]
        .map((h) => make("th", { text: h })))),
      make("tbody", {}, ...taskRows))
    : make("p", { class: "muted", text: "No tasks." }));
  const configRows = Object.keys(c.config).sort().map((k) => {
    const shown = shownValue(k, c.config[k]);
    return make("tr", {}, make("td", { class: "config-key", text: k }),
      make("td", { class: "config-value" + (shown.secret ? " secret" : ""), text: shown.text }));
  });
  parts.push(make("h3", { text: "Config" }), make("table", { class: "config" }, make("tbody", {}, ...configRows)));
  cell.replaceChildren(...parts);
}

function render() {
  const connectors = Object.keys(latest).sort().map((name) => summarise(name, latest[name]));
  const body = document.querySelector("#connectors tbody");
  const seen = new Set();
  let shown = 0;
  let previous = null;
  for (const c of connectors) {
    seen.add(c.name);
    let r = rows.get(c.name);
    if (!r) {
      r = createRow(c.name);
      rows.set(c.name, r);
    }
    updateRow(r, c);
    const visible = matches(c);
    r.row.hidden = !visible;
    if (!visible) r.detail.hidden = true;
    if (visible) shown++;
    // Keep name order without moving rows that are already in place.
    const after = previous ? previous.detail.nextSibling : body.firstChild;
    if (r.row !== after) body.insertBefore(r.row, after);
    if (r.detail !== r.row.nextSibling) body.insertBefore(r.detail, r.row.nextSibling);
    previous = r;
  }
  for (const [name, r] of rows) {
    if (!seen.has(name)) {
      r.row.remove();
      r.detail.remove();
      rows.delete(name);
      expanded.delete(name);
    }
  }
  el("empty").hidden = shown > 0;
  const failedConnectors = connectors.filter((c) => c.state === "FAILED").length;
  const failedTasks = sum(connectors.map((c) => c.failedTasks));
  el("count-connectors").textContent = String(connectors.length);
  el("count-failed-connectors").textContent = String(failedConnectors);
  el("count-failed-tasks").textContent = String(failedTasks);
  el("count-tasks").textContent = String(sum(connectors.map((c) => c.tasks.length)));
  el("tile-failed-connectors").classList.toggle("alert", failedConnectors > 0);
  el("tile-failed-tasks").classList.toggle("alert", failedTasks > 0);
}

// ---- actions ----------------------------------------------------------------------------------------------

let feedbackTimer = null;
function feedback(message, ok) {
  const box = el("feedback");
  box.textContent = message;
  box.className = ok ? "ok" : "error";
  box.hidden = false;
  clearTimeout(feedbackTimer);
  feedbackTimer = setTimeout(() => { box.hidden = true; }, ok ? 6000 : 15000);
}

async function act(name, label, method, path) {
  busy.add(name);
  render();
  try {
    await api(method, path);
    feedback(label, true);
  } catch (e) {
    feedback(`${label} failed: ${e.message}`, false);
  }
  busy.delete(name);
  refresh();
}

const enc = encodeURIComponent;
function pause(name) { return act(name, `Paused ${name}`, "PUT", `/connectors/${enc(name)}/pause`); }
function resume(name) { return act(name, `Resumed ${name}`, "PUT", `/connectors/${enc(name)}/resume`); }
function stop(name) { return act(name, `Stopped ${name}`, "PUT", `/connectors/${enc(name)}/stop`); }
function restart(name) {
  const includeTasks = el("restart-include-tasks").checked;
  const onlyFailed = el("restart-only-failed").checked;
  const what = [includeTasks ? "with its tasks" : "", onlyFailed ? "only failed" : ""].filter(Boolean).join(", ");
  return act(name, `Restarted ${name}${what ? ` (${what})` : ""}`, "POST",
    `/connectors/${enc(name)}/restart?includeTasks=${includeTasks}&onlyFailed=${onlyFailed}`);
}
function remove(name) {
  if (!window.confirm(`Delete connector ${name}? Its config goes; the worker stops its tasks.`)) return;
  return act(name, `Deleted ${name}`, "DELETE", `/connectors/${enc(name)}`);
}

function toggle(name) {
  if (expanded.has(name)) expanded.delete(name); else expanded.add(name);
  render();
}

// ---- refresh loop -----------------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  const seq = ++requested;
  try {
    const answer = await api("GET", "/connectors?expand=status&expand=info&expand=metrics");
    if (seq > applied) {
      applied = seq;
      latest = answer;
      render();
      el("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    }
  } catch (e) {
    el("updated").textContent = `Cannot reach the worker: ${e.message}`;
  }
  // One timer, whichever refresh ends last.
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
}

async function start() {
  el("filter-name").addEventListener("input", render);
  el("filter-state").addEventListener("change", render);
  try {
    const root = await api("GET", "/");
    el("worker").textContent = `${root.version || ""} · commit ${(root.commit || "unknown").slice(0, 12)}`
      + (root.kafka_cluster_id ? ` · Kafka cluster ${root.kafka_cluster_id}` : "");
  } catch (_) { /* the refresh says it */ }
  refresh();
}

start();
