// The Orra console: the modules of orra_gateway/ui/static joined by
// orra_gateway/ui/bundle.py. Do not edit: edit the modules and run
// `python -m orra_gateway.ui.bundle`.

// --- api.js
const __api = (() => {

// The JSON API with the key from session storage; problem details become ApiError.

const KEY = "orra.apiKey";

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY);
}

function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function authHeaders() {
  return { Authorization: `Bearer ${apiKey() || ""}` };
}

/** Call the API; resolves with the JSON body, rejects with ApiError. */
async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { ...authHeaders(), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = { detail: text }; }
  }
  if (!resp.ok) {
    const error = new ApiError(resp.status, json);
    if (resp.status === 401) {
      window.dispatchEvent(new CustomEvent("orra:unauthorized", { detail: error.message }));
    }
    throw error;
  }
  return json;
}

let me = null;

/** The calling key (GET /me), asked once per key: a promise. */
function whoAmI() {
  if (!me) {
    me = api("/me");
    me.catch(() => { me = null; });
  }
  return me;
}

function forgetMe() {
  me = null;
}

return { ApiError, apiKey, setApiKey, authHeaders, api, whoAmI, forgetMe };
})();

// --- dom.js
const __dom = (() => {

// Building DOM without ever parsing data as HTML: every text goes through textContent.

/**
 * Make an element. attrs: class, text, on<Event> handlers, dataset, aria-* and any
 * attribute; children: nodes, strings (text nodes), arrays, null/false (skipped).
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** Make an SVG element (same rules as h). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") {
      // CSSOM, not the style attribute: the Content-Security-Policy allows no inline style
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    }
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside el with children. */
function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A JSON value as indented text in a <pre>. */
function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON" },
    JSON.stringify(value, null, 2));
}

const pad = (n) => String(n).padStart(2, "0");

/**
 * Seconds since the epoch as local date and time, "2026-12-03 19:41:58". By hand, not
 * toLocaleString(): its first call loads the browser's locale data, 20-30 ms of a cold page.
 */
function when(epochSeconds) {
  if (!epochSeconds) return "—";
  const d = new Date(epochSeconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in ms as "850 ms", "2.4 s", "3 min 5 s". */
function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

const SYMBOLS = {
  completed: "✓", delivered: "✓", healthy: "✓", compensated: "✓", resolved: "✓",
  failed: "✕", not_actionable: "✕", down: "✕", timed_out: "✕",
  aborted: "■", ignored: "–", skipped: "–",
  running: "▶", compensating: "↺", retrying: "↻", planning: "…", pending: "○",
  paused: "❚❚", unhealthy: "!", unknown: "?",
  awaiting_approval: "⏸", approved: "✓", rejected: "✕", expired: "⌛",
};

/** A status as a badge: a symbol and the word, never colour alone. */
function badge(status) {
  const word = String(status || "unknown");
  return h("span", { class: `badge st-${word.replace(/[^a-z_]/g, "")}` },
    h("span", { "aria-hidden": "true", class: "sym" }, SYMBOLS[word] || "•"),
    " ", word.replace(/_/g, " "));
}

const TERMINAL = new Set(["completed", "failed", "aborted", "not_actionable"]);

/**
 * Say that a page has rendered its data: main[data-loaded] for tests, and the first time
 * a performance mark "orra:<page>" (the benchmark reads its time since navigation).
 */
function rendered(main, page) {
  main.dataset.loaded = page;
  if (!performance.getEntriesByName(`orra:${page}`).length) performance.mark(`orra:${page}`);
}

/** The 404 page, in el. */
function notFound(el, text) {
  document.title = "Not found · Orra";
  replace(el, h("section", { class: "card notfound" },
    h("h1", { text: "404 · Not found" }),
    h("p", { text }),
    h("p", {}, h("a", { href: "/ui/orchestrations", text: "Back to the orchestrations" }))));
}

return { h, s, replace, jsonBlock, when, duration, badge, TERMINAL, rendered, notFound };
})();

// --- list.js
const __list = (() => {

// The orchestrations list: newest first, status filter, search, paging, live refresh.

const { api } = __api;
const { badge, duration, h, rendered, replace, when } = __dom;

const STATUSES = ["", "planning", "awaiting_approval", "running", "paused", "compensating", "completed", "failed",
  "aborted", "not_actionable"];
const PAGE = 50;
const ID = /^o_[A-Za-z0-9_-]+$/;

function listPage({ main }) {
  document.title = "Orchestrations · Orra";
  const params = new URLSearchParams(location.search);
  const state = { status: params.get("status") || "", q: params.get("q") || "", cursors: [null] };
  const statusSel = h("select", { id: "status-filter" },
    STATUSES.map((st) => h("option", { value: st, text: st ? st.replace(/_/g, " ") : "any status" })));
  statusSel.value = state.status;
  const search = h("input", { id: "search", type: "search", value: state.q,
    placeholder: "o_… or words of the action", "aria-describedby": "search-help" });
  const table = h("tbody");
  const info = h("p", { class: "hint", "aria-live": "polite", id: "list-info" });
  const prev = h("button", { type: "button", text: "← Newer" });
  const next = h("button", { type: "button", text: "Older →" });
  const live = h("span", { class: "hint", id: "live" });
  const form = h("form", { class: "filters", role: "search" },
    h("label", { for: "status-filter", text: "Status" }), statusSel,
    h("label", { for: "search", text: "Search" }), search,
    h("button", { type: "submit", text: "Search" }),
    h("span", { id: "search-help", class: "hint",
      text: "An id opens it; words match ids and action text, in the whole history." }));
  replace(main,
    h("h1", { text: "Orchestrations" }), form,
    h("table", { class: "list", "aria-describedby": "list-info" },
      h("thead", {}, h("tr", {}, ["Orchestration", "Action", "Status", "Tasks", "Created", "Took"]
        .map((c) => h("th", { scope: "col", text: c })))),
      table),
    h("div", { class: "pager" }, prev, next, live), info);

  let timer = null;
  let gen = 0;

  function syncUrl() {
    const p = new URLSearchParams();
    if (state.status) p.set("status", state.status);
    if (state.q) p.set("q", state.q);
    const qs = p.toString();
    history.replaceState(null, "", `/ui/orchestrations${qs ? `?${qs}` : ""}`);
  }

  function rows(items) {
    main.dataset.filter = `${state.status}|${state.q}`;
    replace(table, items.length ? items.map((o) => h("tr", {},
      h("td", {}, h("a", { href: `/ui/orchestrations/${encodeURIComponent(o.id)}`, class: "mono", text: o.id })),
      h("td", { class: "action", text: o.action }),
      h("td", {}, badge(o.status)),
      h("td", { class: "num", text: o.taskCount }),
      h("td", { text: when(o.createdAt) }),
      h("td", { class: "num", text: o.finishedAt ? duration((o.finishedAt - o.createdAt) * 1000) : "—" }),
    )) : h("tr", {}, h("td", { colspan: "6", class: "empty", text: "No orchestrations." })));
  }

  function listPath(cursor, limit) {
    const p = new URLSearchParams({ limit: String(limit) });
    if (state.status) p.set("status", state.status);
    if (state.q) p.set("q", state.q);
    if (cursor) p.set("cursor", cursor);
    return `/orchestrations?${p}`;
  }

  // A search runs in the gateway, over the whole history, newest first. It may answer a
  // short page with a cursor (it reads a bounded part of the index per request): ask on
  // until the page is full or the history has been searched.
  async function fetchPage(cursor, mine) {
    const items = [];
    let next = cursor;
    do {
      const body = await api(listPath(next, PAGE - items.length));
      if (mine !== gen) return null;
      items.push(...body.items);
      next = body.nextCursor;
    } while (state.q && items.length < PAGE && next);
    return { items, nextCursor: next };
  }

  async function load() {
    const mine = ++gen;
    const page = state.cursors.length - 1;
    try {
      if (state.q && ID.test(state.q)) return await idLoad(mine);
      if (state.q) info.textContent = "Searching…";
      const body = await fetchPage(state.cursors[page], mine);
      if (!body) return;
      rows(body.items);
      state.next = body.nextCursor;
      prev.disabled = page === 0;
      next.disabled = !body.nextCursor;
      info.textContent = state.q
        ? `${body.items.length} match${body.items.length === 1 ? "" : "es"} on page ${page + 1}, ` +
          `newest first${body.nextCursor ? "; Older → for more" : ""}.`
        : `Page ${page + 1}, newest first.`;
      live.textContent = page === 0 && !state.q ? "Live: refreshed every 2 s" : "";
      rendered(main, "list");
    } catch (err) {
      if (mine !== gen) return;
      info.textContent = `Could not load the list: ${err.message}`;
    }
  }

  // An id opens that one orchestration: one lookup, however old it is.
  async function idLoad(mine) {
    const q = state.q;
    live.textContent = "";
    try {
      const o = await api(`/orchestrations/${encodeURIComponent(q)}`);
      if (mine !== gen) return;
      rows([{ ...o, taskCount: o.taskCount ?? o.tasks.length }]);
      info.textContent = "The orchestration with that id.";
    } catch (err) {
      if (mine !== gen) return;
      rows([]);
      info.textContent = err.status === 404 ? `No orchestration ${q}.` : err.message;
    }
    prev.disabled = true; next.disabled = true;
    main.dataset.loaded = "list";
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.q = search.value.trim().replace(/\s+/g, " ");
    state.cursors = [null];
    syncUrl(); load();
  });
  statusSel.addEventListener("change", () => {
    state.status = statusSel.value; state.cursors = [null];
    syncUrl(); load();
  });
  next.addEventListener("click", () => { state.cursors.push(state.next); load(); });
  prev.addEventListener("click", () => { state.cursors.pop(); load(); });
  load();
  timer = setInterval(() => {
    if (!state.q && state.cursors.length === 1 && !document.hidden) load();
  }, 2000);
  return () => { clearInterval(timer); gen++; };
}

return { listPage };
})();

// --- timeline.js
const __timeline = (() => {

// The Gantt timeline: one row per task, grouped by parallel group (or dependency depth),
// every attempt, retry wait and compensation drawn on the task's row from the events.

const { duration, h } = __dom;

/** Attempt segments per task, from the orchestration's events in log order. */
function segmentsFrom(events) {
  const byTask = new Map();
  const rowOf = (id) => { if (!byTask.has(id)) byTask.set(id, []); return byTask.get(id); };
  const open = (row, kind) => [...row].reverse().find((x) => x.kind === kind && x.end === null);
  for (const { type, event: e } of events) {
    if (!e || !e.task_id) continue;
    const row = rowOf(e.task_id);
    if (type === "task.dispatched") {
      row.push({ kind: "run", attempt: e.attempt, start: e.at, end: null, outcome: "running" });
    } else if (["task.completed", "task.failed", "task.aborted"].includes(type)) {
      const seg = row.find((x) => x.kind === "run" && x.attempt === e.attempt) ||
        row[row.push({ kind: "run", attempt: e.attempt, start: e.started_at || e.at }) - 1];
      if (e.started_at) seg.start = e.started_at;
      seg.end = e.started_at && e.duration_ms !== undefined ? e.started_at + e.duration_ms / 1000 : e.at;
      seg.outcome = type.slice(5);
      if (e.error) seg.error = e.error;
    } else if (type === "task.timed_out") {
      const seg = row.find((x) => x.kind === "run" && x.attempt === e.attempt && x.end === null);
      if (seg) { seg.end = e.at; seg.outcome = "timed_out"; }
    } else if (type === "task.retrying") {
      row.push({ kind: "wait", attempt: e.next_attempt, start: e.at, end: e.at + e.delay_s,
        outcome: "retrying", error: e.reason });
    } else if (type === "task.compensating") {
      row.push({ kind: "comp", start: e.at, end: null, outcome: "compensating" });
    } else if (["task.compensated", "task.compensation_failed", "task.compensation_abandoned"].includes(type)) {
      const seg = open(row, "comp") || row[row.push({ kind: "comp", start: e.at }) - 1];
      seg.end = e.at;
      seg.outcome = type === "task.compensated" ? "compensated" : "failed";
      if (e.error) seg.error = e.error;
    }
  }
  return byTask;
}

/** True when rows are grouped by dependency depth (eager mode, or a plan without groups). */
function byDepth(view) {
  return view.mode === "eager" || !(view.parallel_groups && view.parallel_groups.length);
}

/**
 * Rows of tasks: the plan's parallel groups; in eager mode (a task starts as soon as its
 * own inputs are ready) the dependency depth, which is what decides when a task can start.
 */
function groupsOf(view) {
  if (!byDepth(view)) return view.parallel_groups;
  const deps = new Map(view.tasks.map((t) => [t.id, t.dependsOn || []]));
  const depth = new Map();
  const d = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const v = Math.max(-1, ...(deps.get(id) || []).map((x) => d(x, seen))) + 1;
    depth.set(id, v);
    return v;
  };
  const groups = [];
  for (const t of view.tasks) (groups[d(t.id)] ||= []).push(t.id);
  return groups.filter(Boolean);
}

/** The timeline element; now is the current time in epoch seconds. */
function timeline(view, segments, now) {
  const t0 = view.createdAt;
  const fallbackEnd = view.finishedAt || now;
  let t1 = fallbackEnd;
  for (const row of segments.values()) for (const seg of row) t1 = Math.max(t1, seg.end ?? now);
  const span = Math.max(t1 - t0, 0.001);
  const pct = (t) => `${(Math.max(0, Math.min(1, (t - t0) / span)) * 100).toFixed(3)}%`;
  const tasks = new Map(view.tasks.map((t) => [t.id, t]));
  const groups = groupsOf(view);
  const mode = byDepth(view) ? "Dependency depth" : "Group";
  const body = [];
  groups.forEach((ids, gi) => {
    body.push(h("div", { class: "tl-group", role: "rowgroup", "aria-label": `${mode} ${gi + 1}` },
      h("div", { class: "tl-group-label", text: `${mode} ${gi + 1} · ${ids.length} task${ids.length === 1 ? "" : "s"}${ids.length > 1 ? " in parallel" : ""}` }),
      ids.map((id) => {
        const task = tasks.get(id) || { id, service: "", status: "pending" };
        let segs = segments.get(id) || [];
        if (!segs.length && task.startedAt) {
          segs = [{ kind: "run", attempt: task.attempts || 1, start: task.startedAt,
            end: task.finishedAt, outcome: task.status }];
        }
        return h("div", { class: "tl-row", role: "row", "data-task": id },
          h("div", { class: "tl-label", role: "rowheader" },
            h("span", { class: "mono", text: id }), h("span", { class: "hint", text: ` ${task.service}` })),
          h("div", { class: "tl-track", role: "cell" },
            segs.map((seg) => {
              const end = seg.end ?? now;
              const what = seg.kind === "run" ? `attempt ${seg.attempt}` :
                seg.kind === "wait" ? `waiting for attempt ${seg.attempt}` : "compensation";
              const label = `${what}: ${seg.outcome.replace("_", " ")}, ${duration((end - seg.start) * 1000)}` +
                (seg.error ? ` (${seg.error})` : "");
              return h("div", {
                class: `bar k-${seg.kind} o-${seg.outcome}${seg.end === null ? " live" : ""}`,
                style: { left: pct(seg.start), width: `max(3px, calc(${pct(end)} - ${pct(seg.start)}))` },
                title: label, "aria-label": label, role: "img", tabindex: "0",
              }, h("span", { class: "bar-text", "aria-hidden": "true",
                text: seg.kind === "run" ? `#${seg.attempt} ${seg.outcome === "completed" ? "✓" : seg.outcome === "running" ? "▶" : "✕"}` :
                  seg.kind === "wait" ? "↻" : "↺" }));
            })));
      })));
  });
  return h("section", { class: "card", "aria-labelledby": "tl-title" },
    h("h2", { id: "tl-title", text: "Timeline" }),
    h("p", { class: "hint", text: `0 → ${duration(span * 1000)}. Solid: an attempt (✓ completed, ✕ failed, ▶ running); hatched: waiting to retry (↻); outlined: compensation (↺).` }),
    h("div", { class: "timeline", role: "table", "aria-label": "Tasks over time" }, body));
}

return { segmentsFrom, byDepth, groupsOf, timeline };
})();

// --- graph.js
const __graph = (() => {

// The plan as a graph: tasks in columns by group, an edge per $task.field reference.

const { h, s } = __dom;
const { groupsOf } = __timeline;

const REF = /^\$([A-Za-z_][A-Za-z0-9_-]*)\.([^\s]+)$/;

/** Edges {from, to, fields[]} found in each task's input ($task.field) and dependsOn. */
function edgesOf(tasks) {
  const ids = new Set(tasks.map((t) => t.id));
  const edges = new Map();
  const add = (from, to, field) => {
    const key = `${from}>${to}`;
    if (!edges.has(key)) edges.set(key, { from, to, fields: [] });
    if (field && !edges.get(key).fields.includes(field)) edges.get(key).fields.push(field);
  };
  const walk = (value, to) => {
    if (typeof value === "string") {
      if (value.startsWith("$$")) return;
      const m = REF.exec(value);
      if (m && ids.has(m[1])) add(m[1], to, m[2]);
    } else if (Array.isArray(value)) value.forEach((v) => walk(v, to));
    else if (value && typeof value === "object") Object.values(value).forEach((v) => walk(v, to));
  };
  for (const t of tasks) {
    walk(t.input, t.id);
    for (const dep of t.dependsOn || []) if (ids.has(dep)) add(dep, t.id, null);
  }
  return [...edges.values()];
}

/**
 * The plan graph. planTasks: the plan.created event's tasks, whose inputs still hold the
 * $task.field references (the view's inputs are resolved once a task is dispatched).
 */
function graph(view, planTasks) {
  const groups = groupsOf(view).map((g) => [...g]);
  const W = 190, H = 46, GX = 110, GY = 26;
  const raw = new Map((planTasks || []).map((t) => [t.id, t.input]));
  const edges = edgesOf(view.tasks.map((t) => ({ ...t, input: raw.has(t.id) ? raw.get(t.id) : t.input })));
  const pos = new Map();
  groups.forEach((ids, gi) => {
    if (gi > 0) {
      // order a column by where its tasks' sources are, so that edges cross less
      const y = (id) => {
        const ys = edges.filter((e) => e.to === id && pos.has(e.from)).map((e) => pos.get(e.from).y);
        return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
      };
      ids.sort((a, b) => y(a) - y(b));
    }
    ids.forEach((id, i) => pos.set(id, { x: 10 + gi * (W + GX), y: 10 + i * (H + GY) }));
  });
  const width = 20 + groups.length * (W + GX) - GX;
  const height = 20 + Math.max(1, ...groups.map((g) => g.length)) * (H + GY) - GY;
  const tasks = new Map(view.tasks.map((t) => [t.id, t]));
  const svg = s("svg", { viewBox: `0 0 ${Math.max(width, 200)} ${height}`, class: "graph",
    role: "img", "aria-labelledby": "graph-title graph-desc", width: Math.max(width, 200), height },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))),
    edges.map((e) => {
      const a = pos.get(e.from), b = pos.get(e.to);
      if (!a || !b) return null;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      const mx = (x1 + x2) / 2;
      return s("g", { class: "edge" },
        s("path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }),
        e.fields.length ? s("text", { x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", class: "edge-label",
          text: e.fields.join(", ") }) : null);
    }),
    [...pos.entries()].map(([id, p]) => {
      const t = tasks.get(id) || { status: "pending", service: "" };
      return s("g", { class: `node st-${t.status}` },
        s("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }),
        s("text", { x: p.x + 8, y: p.y + 18, class: "node-id", text: `${id} · ${t.status}` }),
        s("text", { x: p.x + 8, y: p.y + 36, class: "node-svc", text: t.service }));
    }));
  const desc = edges.length
    ? edges.map((e) => `${e.from} → ${e.to}${e.fields.length ? ` (${e.fields.join(", ")})` : ""}`).join("; ")
    : "No task depends on another.";
  return h("section", { class: "card", "aria-labelledby": "graph-title" },
    h("h2", { id: "graph-title", text: "Plan" }),
    h("p", { id: "graph-desc", class: "hint", text: desc }),
    h("div", { class: "graph-wrap" }, svg));
}

return { edgesOf, graph };
})();

// --- sse.js
const __sse = (() => {

// Server-Sent Events over fetch(): EventSource cannot send the Authorization header.
// Reconnects after a dropped connection (a gateway restart) with Last-Event-ID.

const { authHeaders } = __api;

/**
 * Follow path's event stream until stop() is called.
 * onEvent({id, event, data}) for each message; onState("open"|"reconnecting"|"error", info).
 * Returns {stop, lastId()}.
 */
function follow(path, { onEvent, onState, retryMs = 1000 } = {}) {
  let lastId = null;
  let stopped = false;
  let controller = null;

  async function connectOnce() {
    controller = new AbortController();
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const resp = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (!resp.ok) {
      const err = new Error(`HTTP ${resp.status}`);
      err.status = resp.status;
      throw err;
    }
    onState && onState("open", { lastId });
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let msg = { data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (msg.data.length) {
            if (msg.id !== undefined) lastId = msg.id;
            onEvent({ id: msg.id, event: msg.event || "message", data: msg.data.join("\n") });
          }
          msg = { data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") msg.data.push(val);
        else if (field === "event") msg.event = val;
        else if (field === "id") msg.id = val;
        else if (field === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await connectOnce();
      } catch (err) {
        if (stopped) return;
        if (err.status === 401 || err.status === 403 || err.status === 404) {
          onState && onState("error", { status: err.status });
          return;
        }
      }
      if (stopped) return;
      onState && onState("reconnecting", { lastId });
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return {
    stop() { stopped = true; if (controller) controller.abort(); },
    lastId() { return lastId; },
  };
}

return { follow };
})();

// --- detail.js
const __detail = (() => {

// One orchestration: header and actions, timeline, plan graph, tasks, webhooks, compensation.
// It follows the orchestration's SSE stream (resuming with Last-Event-ID after a drop) and
// refetches the view when events arrive.

const { api } = __api;
const { badge, duration, h, jsonBlock, notFound, rendered, replace, TERMINAL, when } = __dom;
const { graph } = __graph;
const { segmentsFrom, timeline } = __timeline;
const { follow } = __sse;

function detailPage({ main, me: caller }, id) {
  document.title = `${id} · Orra`;
  const events = [];
  const seen = new Set();
  let view = null;
  let stream = null;
  let refetch = null;
  let ticker = null;
  let alive = true;
  let me = null;  // the calling key, once /me answers: admin actions wait for it
  caller.then((who) => { me = who; draw(); }, () => {});
  const status = h("p", { class: "hint", id: "stream-state", "aria-live": "polite" });
  const notice = h("p", { id: "notice", role: "status", "aria-live": "polite" });
  const content = h("div", { id: "detail" });
  replace(main, content);

  function draw() {
    if (!alive || !view) return;
    // A redraw moves the controls (made once) into the new tree, and moving an element
    // takes its focus away: give it back, caret included, or typing goes nowhere.
    const focused = document.activeElement;
    const focusedId = focused && focused.id;
    const caret = focused && typeof focused.selectionStart === "number"
      ? [focused.selectionStart, focused.selectionEnd] : null;
    // a redraw keeps what the user opened
    const opened = new Set([...content.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    const now = Date.now() / 1000;
    const segments = segmentsFrom(events);
    replace(content,
      header(view, now),
      notice, status,
      approvalSection(view, me, decisions),
      timeline(view, segments, now),
      graph(view, planTasks()),
      tasksSection(view, segments, events),
      webhooksSection(view),
      compensationSection(view, me, settles),
      data(view));
    for (const d of content.querySelectorAll("details[data-key]")) if (opened.has(d.dataset.key)) d.open = true;
    rendered(main, "detail");
    main.dataset.status = view.status;
    const again = focused && focused !== document.body && focused.isConnected ? focused
      : focusedId ? document.getElementById(focusedId) : null;
    if (again && again !== document.activeElement) {
      again.focus();
      if (caret && again === focused) again.setSelectionRange(caret[0], caret[1]);
    }
    const live = !TERMINAL.has(view.status) || [...segments.values()].some((r) => r.some((x) => x.end === null));
    if (live && !ticker) ticker = setInterval(draw, 500);
    if (!live && ticker) { clearInterval(ticker); ticker = null; }
  }

  function planTasks() {
    const created = events.find((e) => e.type === "plan.created");
    return created && created.event.plan ? created.event.plan.tasks : null;
  }

  // Controls are made once and moved into each redraw, so what the user types survives it.
  let abortEl = null;
  const settles = new Map();
  const decisions = new Map();
  function abortForm(v) {
    if (abortEl) return abortEl;
    const reason = h("input", { id: "abort-reason", type: "text", placeholder: "reason (optional)",
      "aria-label": "Reason to abort" });
    abortEl = h("form", { class: "inline", id: "abort-form" }, reason,
      h("button", { type: "submit", class: "danger", id: "abort", text: "Abort" }));
    abortEl.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!confirm(`Abort ${v.id}?`)) return;
      try {
        const body = reason.value.trim() ? { reason: reason.value.trim() } : undefined;
        await api(`/orchestrations/${encodeURIComponent(v.id)}/abort`, { method: "POST", body });
        notice.textContent = "Abort requested.";
      } catch (err) { notice.textContent = `Abort refused: ${err.message}`; }
      load();
    });
    return abortEl;
  }

  function header(v, now) {
    const end = v.finishedAt || now;
    const abortable = !TERMINAL.has(v.status) && v.status !== "compensating";
    const abort = abortable ? abortForm(v) : null;
    return h("section", { class: "card head" },
      h("p", { class: "crumbs" }, h("a", { href: "/ui/orchestrations", text: "Orchestrations" }), " / ",
        h("span", { class: "mono", text: v.id })),
      h("h1", { class: "action-text", text: v.action || "(no action)" }),
      h("dl", { class: "facts" },
        fact("Status", badge(v.status)),
        fact("Id", h("span", { class: "mono", id: "orch-id", text: v.id })),
        fact("Project", v.project),
        fact("Mode", v.mode || "—"),
        fact("Created", when(v.createdAt)),
        fact(v.finishedAt ? "Took" : "Running for", duration((end - v.createdAt) * 1000)),
        v.plan ? fact("Planner", `${v.plan.planner}${v.plan.model ? ` (${v.plan.model})` : ""}${v.plan.cacheHit ? ", cache hit" : ""}, ${duration(v.plan.latencyMs)}`) : null,
        v.error ? fact("Error", h("span", { class: "error", text: v.error })) : null),
      v.reasons && v.reasons.length ? h("div", {}, h("h2", { text: "Planner's reasons" }),
        h("ul", {}, v.reasons.map((r) => h("li", { text: r })))) : null,
      coverage(v),
      v.results ? h("details", { "data-key": "results" }, h("summary", { text: "Results" }), jsonBlock(v.results, "Results")) : null,
      abort);
  }

  async function load() {
    try {
      view = await api(`/orchestrations/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!alive) return;
      if (err.status === 404) { stop(); notFound(main, `There is no orchestration ${id} in your project.`); return; }
      status.textContent = `Could not read the orchestration: ${err.message}`;
      return;
    }
    draw();
  }

  function onEvent(msg) {
    if (msg.id && seen.has(msg.id)) return;
    if (msg.id) { seen.add(msg.id); main.dataset.lastEvent = msg.id; }
    let event = null;
    try { event = JSON.parse(msg.data); } catch { return; }
    events.push({ seq: Number(msg.id), type: msg.event, event });
    clearTimeout(refetch);
    refetch = setTimeout(load, 150);
  }

  function stop() {
    alive = false;
    if (stream) stream.stop();
    clearTimeout(refetch);
    if (ticker) clearInterval(ticker);
  }

  load().then(() => {
    if (!alive || !view) return;
    stream = follow(`/orchestrations/${encodeURIComponent(id)}/events`, {
      onEvent,
      onState(state, info) {
        main.dataset.stream = state;
        status.textContent = state === "open" ? "Following the orchestration's events live." :
          state === "reconnecting" ? `Connection lost; reconnecting after event ${info.lastId ?? "none"}…` :
            `The event stream stopped (HTTP ${info.status}).`;
      },
    });
  });
  return stop;
}

function fact(name, value) {
  return [h("dt", { text: name }), h("dd", {}, value)];
}

function coverage(v) {
  if (!(v.parts && v.parts.length) && !(v.uncovered && v.uncovered.length)) return null;
  return h("div", { class: "coverage" },
    v.parts && v.parts.length ? [h("h2", { text: "Parts of the action" }),
      h("ul", {}, v.parts.map((p) => h("li", { text: p })))] : null,
    v.uncovered && v.uncovered.length ? [h("h2", { text: "Not covered by any service" }),
      h("ul", {}, v.uncovered.map((u) => h("li", { text: typeof u === "string" ? u : `${u.part ?? ""}${u.reason ? ` — ${u.reason}` : ""}` })))] : null);
}

function attemptsOf(segs) {
  const runs = (segs || []).filter((x) => x.kind !== "wait");
  if (!runs.length) return null;
  return h("table", { class: "attempts" },
    h("thead", {}, h("tr", {}, ["Attempt", "Outcome", "Started", "Took", "Error"].map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, runs.map((x) => h("tr", {},
      h("td", { text: x.kind === "comp" ? "compensation" : `#${x.attempt}` }),
      h("td", {}, badge(x.outcome)),
      h("td", { text: when(x.start) }),
      h("td", { class: "num", text: x.end === null ? "running" : duration((x.end - x.start) * 1000) }),
      h("td", { class: "error", text: x.error || "" })))));
}

function progressOf(events, taskId) {
  const updates = events.filter((e) => e.type === "task.progress" && e.event.task_id === taskId);
  if (!updates.length) return null;
  const shown = updates.slice(-20);
  return [h("h3", { text: `Progress updates (${updates.length}${updates.length > shown.length ? `, the last ${shown.length}` : ""})` }),
    h("ol", { class: "progress" }, shown.map((e) => h("li", {},
      h("span", { class: "hint", text: `attempt ${e.event.attempt} · ${when(e.event.at)} ` }),
      h("code", { text: JSON.stringify(e.event.update) }))))];
}

function tasksSection(v, segments, events) {
  return h("section", { class: "card", "aria-labelledby": "tasks-title" },
    h("h2", { id: "tasks-title", text: `Tasks (${v.tasks.length})` }),
    v.tasks.length ? v.tasks.map((t) => h("details", { class: "task", "data-task": t.id, "data-key": `task:${t.id}` },
      h("summary", {}, h("span", { class: "mono", text: t.id }), " ", h("span", { class: "hint", text: t.service }), " ",
        badge(t.status), " ", h("span", { class: "hint", text: `${t.attempts} attempt${t.attempts === 1 ? "" : "s"}, ${duration(t.durationMs)}` })),
      h("dl", { class: "facts" },
        fact("Depends on", (t.dependsOn || []).join(", ") || "—"),
        fact("Started", when(t.startedAt)), fact("Finished", when(t.finishedAt)),
        t.error ? fact("Error", h("span", { class: "error", text: t.error })) : null,
        t.progressUpdates ? fact("Progress", `${t.progressUpdates} update(s), last ${when(t.progressAt)}`) : null,
        t.compensation ? fact("Compensation", [badge(t.compensation.status),
          ` ${t.compensation.attempts} attempt(s)`, t.compensation.error ? h("span", { class: "error", text: ` ${t.compensation.error}` }) : null,
          t.compensation.resolvedAt ? h("span", { class: "hint", text: ` · ${t.compensation.status} by ${t.compensation.resolvedBy || "?"} at ` +
            `${when(t.compensation.resolvedAt)}${t.compensation.resolutionNote ? `: ${t.compensation.resolutionNote}` : ""}` }) : null]) : null),
      attemptsOf(segments.get(t.id)),
      h("h3", { text: "Input" }), jsonBlock(t.input, `Input of ${t.id}`),
      t.output ? [h("h3", { text: "Output" }), jsonBlock(t.output, `Output of ${t.id}`)] : null,
      progressOf(events, t.id) ||
        (t.progress ? [h("h3", { text: "Last progress update" }), jsonBlock(t.progress, `Progress of ${t.id}`)] : null)))
      : h("p", { class: "hint", text: "No plan yet." }));
}

function webhooksSection(v) {
  if (!v.webhook && !(v.webhooks && v.webhooks.length)) return null;
  return h("section", { class: "card", "aria-labelledby": "hooks-title", id: "webhooks" },
    h("h2", { id: "hooks-title", text: "Webhook deliveries" }),
    v.webhooks && v.webhooks.length ? v.webhooks.map((d) => h("div", { class: "hook" },
      h("p", {}, badge(d.status), " ", h("span", { class: "mono", text: d.url }),
        h("span", { class: "hint", text: ` ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}` +
          (d.nextAttemptAt ? `, next at ${when(d.nextAttemptAt)}` : "") })),
      h("table", { class: "attempts" },
        h("thead", {}, h("tr", {}, ["#", "At", "HTTP status", "Error", "Took"].map((c) => h("th", { scope: "col", text: c })))),
        h("tbody", {}, (d.attemptLog || []).map((a) => h("tr", {},
          h("td", { class: "num", text: a.n }), h("td", { text: when(a.at) }),
          h("td", { class: "num", text: a.statusCode ?? "—" }), h("td", { class: "error", text: a.error || "" }),
          h("td", { class: "num", text: duration(a.durationMs) })))))))
      : h("p", { class: "hint", text: `To ${v.webhook}: not delivered yet.` }));
}

function compensationSection(v, me, settles) {
  const failed = v.tasks.filter((t) => t.compensation && t.compensation.status === "failed");
  if (!v.compensation && !failed.length) return null;
  const c = v.compensation;
  return h("section", { class: "card", "aria-labelledby": "comp-title" },
    h("h2", { id: "comp-title", text: "Compensation" }),
    c ? h("p", {}, badge(c.status), ` after the orchestration ${c.cause}${c.reason ? `: ${c.reason}` : ""}. ` +
      `Compensated: ${c.compensated.join(", ") || "none"}; failed: ${c.failed.join(", ") || "none"}.`) : null,
    failed.map((t) => h("div", { class: "comp-failed" },
      h("p", {}, h("span", { class: "mono", text: t.id }), h("span", { class: "error", text: ` ${t.compensation.error || "failed"}` })),
      me && me.role === "admin" ? (settles.get(t.id) || settles.set(t.id, settle(v, t)).get(t.id))
        : h("p", { class: "hint", text: "An admin key can resolve or ignore it." }))));
}

function settle(v, t) {
  const note = h("input", { type: "text", "aria-label": `Note on ${t.id}`, placeholder: "note (optional)" });
  const out = h("span", { role: "status" });
  const act = (what) => async () => {
    try {
      await api(`/compensation-failures/${encodeURIComponent(v.id)}/${encodeURIComponent(t.id)}/${what}`,
        { method: "POST", body: note.value.trim() ? { note: note.value.trim() } : undefined });
      out.textContent = `Marked ${what === "resolve" ? "resolved" : "ignored"}.`;
    } catch (err) { out.textContent = err.message; }
  };
  return h("div", { class: "inline" }, note,
    h("button", { type: "button", text: "Resolve", onClick: act("resolve") }),
    h("button", { type: "button", text: "Ignore", onClick: act("ignore") }), out);
}

const DECIDERS = new Set(["admin", "approver"]);

function approvalLine(a) {
  if (!a) return null;
  const bits = [badge(a.status === "awaiting" ? "awaiting_approval" : a.status)];
  if (a.condition) bits.push(" held by its service's gate ", h("code", { text: a.condition }));
  if (a.status === "awaiting" && a.expiresAt) bits.push(h("span", { class: "hint", text: ` · expires ${when(a.expiresAt)}` }));
  if (a.decidedBy) bits.push(h("span", { class: "hint", text: ` · decided by ${a.decidedBy} at ${when(a.decidedAt)}` }));
  if (a.reason) bits.push(h("span", { class: "hint", text: ` · ${a.reason}` }));
  return h("p", { class: "approval" }, bits);
}

// The plan held for preview (execute: false) and every task held by its service's gate:
// what waits, who decided, and, for admin and approver keys, approve / reject.
function approvalSection(v, me, decisions) {
  const held = v.tasks.filter((t) => t.approval);
  if (!v.approval && !held.length) return null;
  const items = [];
  if (v.approval) items.push({ key: "plan", label: "The plan", approval: v.approval, task: null });
  for (const t of held) items.push({ key: `task:${t.id}`, label: `${t.id} (${t.service})`, approval: t.approval, task: t.id });
  return h("section", { class: "card", "aria-labelledby": "approval-title", id: "approvals" },
    h("h2", { id: "approval-title", text: "Approvals" }),
    items.map((it) => h("div", { class: "approval-item", "data-approval": it.key },
      h("p", {}, h("strong", { text: it.label })), approvalLine(it.approval),
      it.approval.status !== "awaiting" ? null
        : me && DECIDERS.has(me.role)
          ? (decisions.get(it.key) || decisions.set(it.key, decide(v, it.task, it.key)).get(it.key))
          : h("p", { class: "hint", text: "An admin or approver key can approve or reject it." }))));
}

function decide(v, task, key) {
  const reason = h("input", { type: "text", "aria-label": `Reason for ${key}`, placeholder: "reason (optional)" });
  const out = h("span", { role: "status" });
  const act = (what) => async () => {
    const body = {};
    if (task) body.task = task;
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      await api(`/orchestrations/${encodeURIComponent(v.id)}/${what}`, { method: "POST", body });
      out.textContent = what === "approve" ? "Approved." : "Rejected.";
    } catch (err) { out.textContent = err.message; }
  };
  return h("div", { class: "inline" }, reason,
    h("button", { type: "button", text: "Approve", "data-decide": "approve", onClick: act("approve") }),
    h("button", { type: "button", class: "danger", text: "Reject", "data-decide": "reject", onClick: act("reject") }), out);
}

function data(v) {
  return h("section", { class: "card", "aria-labelledby": "data-title" },
    h("h2", { id: "data-title", text: "Data" }),
    v.data.length ? h("table", { class: "attempts" }, h("tbody", {}, v.data.map((d) => h("tr", {},
      h("th", { scope: "row", class: "mono", text: d.field }),
      h("td", {}, typeof d.value === "string" ? h("span", { class: "data-value", text: d.value }) : jsonBlock(d.value, d.field))))))
      : h("p", { class: "hint", text: "No data fields." }),
    v.webhook ? h("p", {}, "Webhook: ", h("span", { class: "mono", text: v.webhook })) : null);
}

return { detailPage };
})();

// --- submit.js
const __submit = (() => {

// Submit an action: data fields (text or JSON), an optional webhook; shows the plan or why not.

const { api } = __api;
const { badge, h, replace } = __dom;

/** Parse a data value: JSON when it starts like an object, array or quoted string. */
function parseValue(raw) {
  const text = raw.trim();
  if (/^[[{"]/.test(text)) return { json: true, value: JSON.parse(text) };
  return { json: false, value: raw };
}

function submitPage({ main }) {
  document.title = "Submit · Orra";
  const action = h("textarea", { id: "action", rows: "2", required: true,
    placeholder: "Process order payment and update inventory" });
  const rows = h("div", { id: "data-rows" });
  const webhook = h("input", { id: "webhook", type: "url", placeholder: "https://your-app.com/webhooks/orra" });
  const result = h("div", { id: "result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "submit", text: "Submit" });
  let n = 0;

  function addRow(field = "", value = "") {
    const i = n++;
    const f = h("input", { id: `field-${i}`, class: "field-name", value: field, "aria-label": `Field ${i + 1} name`, placeholder: "orderId" });
    const v = h("input", { id: `value-${i}`, class: "field-value", value, "aria-label": `Field ${i + 1} value`,
      placeholder: "ORD123, or JSON: {…} […] \"…\"", "aria-describedby": `value-${i}-error` });
    const err = h("span", { id: `value-${i}-error`, class: "error field-error", role: "alert" });
    const row = h("div", { class: "data-row" }, f, v,
      h("button", { type: "button", class: "link", text: "Remove", "aria-label": `Remove field ${i + 1}`,
        onClick: () => row.remove() }), err);
    v.addEventListener("input", () => check(v, err));
    rows.append(row);
    return f;
  }

  function check(input, err) {
    try {
      parseValue(input.value);
      input.removeAttribute("aria-invalid");
      err.textContent = "";
      return true;
    } catch (e) {
      input.setAttribute("aria-invalid", "true");
      err.textContent = `Not valid JSON: ${e.message}. Fix it, or do not start a plain text value with { [ or ".`;
      return false;
    }
  }

  const form = h("form", { class: "card submit", novalidate: true, "aria-labelledby": "submit-title" },
    h("h1", { id: "submit-title", text: "Submit an action" }),
    h("label", { for: "action", text: "Action" }), action,
    h("fieldset", {}, h("legend", { text: "Data" }), rows,
      h("button", { type: "button", id: "add-field", text: "Add a field", onClick: () => addRow().focus() })),
    h("label", { for: "webhook", text: "Webhook (optional)" }), webhook,
    submit);
  addRow();
  replace(main, form, result);
  action.focus();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    replace(result);
    const data = [];
    let firstBad = null;
    for (const row of rows.querySelectorAll(".data-row")) {
      const f = row.querySelector(".field-name");
      const v = row.querySelector(".field-value");
      const err = row.querySelector(".field-error");
      if (!f.value.trim() && !v.value.trim()) continue;
      if (!check(v, err)) { firstBad ||= v; continue; }
      if (!f.value.trim()) {
        f.setAttribute("aria-invalid", "true");
        err.textContent = "Name this field.";
        firstBad ||= f;
        continue;
      }
      f.removeAttribute("aria-invalid");
      data.push({ field: f.value.trim(), value: parseValue(v.value).value });
    }
    if (!action.value.trim()) {
      action.setAttribute("aria-invalid", "true");
      firstBad ||= action;
    } else action.removeAttribute("aria-invalid");
    if (firstBad) { firstBad.focus(); return; }
    const body = { action: { content: action.value.trim() }, data };
    if (webhook.value.trim()) body.webhook = webhook.value.trim();
    submit.disabled = true;
    submit.textContent = "Planning…";
    try {
      const out = await api("/orchestrations", { method: "POST", body });
      replace(result, planCard(out));
    } catch (err) {
      replace(result, refusal(err));
    } finally {
      submit.disabled = false;
      submit.textContent = "Submit";
    }
  });
  return () => {};
}

function planCard(out) {
  const tasks = new Map(out.tasks.map((t) => [t.id, t]));
  return h("section", { class: "card", id: "plan" },
    h("h2", { text: "Plan" }),
    h("p", {}, badge(out.status), " ",
      h("a", { href: `/ui/orchestrations/${encodeURIComponent(out.id)}`, class: "mono", id: "plan-link", text: out.id })),
    out.parallel_groups.length ? h("ol", { class: "groups" }, out.parallel_groups.map((g) =>
      h("li", {}, g.map((id, i) => [i ? ", " : "", h("span", { class: "mono", text: id }),
        h("span", { class: "hint", text: ` (${(tasks.get(id) || {}).service || ""})` })]))))
      : h("p", { class: "hint", text: "The plan is not ready yet; open the orchestration to follow it." }),
    out.uncovered && out.uncovered.length ? [h("h3", { text: "Left out (nothing serves it)" }),
      h("ul", {}, out.uncovered.map((u) => h("li", { text: `${u.part} — ${u.reason}` })))] : null);
}

function refusal(err) {
  const p = err.problem || {};
  return h("section", { class: "card", id: "refusal", role: "alert" },
    h("h2", { text: err.status === 422 && p.reasons ? "The planner refused this action" : "Not submitted" }),
    h("p", { class: "error", text: p.detail || err.message }),
    p.reasons && p.reasons.length ? h("ul", {}, p.reasons.map((r) => h("li", { text: r }))) : null,
    p.errors && p.errors.length ? h("ul", {}, p.errors.map((e) => h("li", { text: `${e.field ?? e.name ?? ""}: ${e.message ?? e.reason ?? ""}` }))) : null,
    p.uncovered && p.uncovered.length ? [h("h3", { text: "Not covered by any service" }),
      h("ul", {}, p.uncovered.map((u) => h("li", { text: `${u.part} — ${u.reason}` })))] : null,
    p.orchestrationId ? h("p", {}, h("a", { href: `/ui/orchestrations/${encodeURIComponent(p.orchestrationId)}`, text: "Open the orchestration" })) : null);
}

return { parseValue, submitPage };
})();

// --- services.js
const __services = (() => {

// The service registry: health, instance, versions, schema and example phrases.

const { api } = __api;
const { badge, h, jsonBlock, replace, when } = __dom;

function servicesPage({ main }) {
  document.title = "Services · Orra";
  const list = h("div", { id: "services" }, h("p", { text: "Loading…" }));
  replace(main, h("h1", { text: "Services" }), list);
  let alive = true;
  async function load() {
    try {
      const body = await api("/services");
      if (!alive) return;
      replace(list, body.items.length ? body.items.map(card) : h("p", { text: "No service is registered in this project." }));
      main.dataset.loaded = "services";
    } catch (err) {
      if (alive) replace(list, h("p", { class: "error", role: "alert", text: err.message }));
    }
  }
  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 10000);
  return () => { alive = false; clearInterval(timer); };
}

function card(svc) {
  return h("section", { class: "card service", "aria-labelledby": `svc-${svc.name}` },
    h("h2", { id: `svc-${svc.name}` }, svc.name, " ", badge(svc.health)),
    h("p", { text: svc.description }),
    h("dl", { class: "facts" },
      h("dt", { text: "Kind" }), h("dd", { text: svc.kind + (svc.revertible ? ", revertible" : "") }),
      h("dt", { text: "Version" }), h("dd", { text: svc.version }),
      h("dt", { text: "Instance" }), h("dd", { class: "mono", text: svc.instanceId || "—" }),
      h("dt", { text: "Last heartbeat" }), h("dd", { text: `${when(svc.lastHeartbeatAt)}${svc.heartbeatIntervalS ? ` (every ${svc.heartbeatIntervalS} s)` : ""}` }),
      h("dt", { text: "Versions" }), h("dd", {}, (svc.versions || []).map((v, i) => [i ? "; " : "", `${v.version} `, badge(v.health)]))),
    svc.examples && svc.examples.length ? [h("h3", { text: "Example phrases" }),
      h("ul", {}, svc.examples.map((e) => h("li", { text: e })))] : null,
    h("details", {}, h("summary", { text: "Input and output schema" }),
      h("h3", { text: "Input" }), jsonBlock(svc.inputSchema, `Input schema of ${svc.name}`),
      h("h3", { text: "Output" }), jsonBlock(svc.outputSchema, `Output schema of ${svc.name}`)));
}

return { servicesPage };
})();

// --- app.js
const __app = (() => {

// The console's router: /ui/orchestrations[/<id>], /ui/submit, /ui/services; the key prompt.

const { api, apiKey, ApiError, forgetMe, setApiKey, whoAmI } = __api;
const { h, notFound, replace } = __dom;
const { listPage } = __list;
const { detailPage } = __detail;
const { submitPage } = __submit;
const { servicesPage } = __services;

const main = document.getElementById("main");
const who = document.getElementById("who");
let cleanup = null;
let renders = 0;

function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function route(pathname) {
  const parts = pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || (parts[0] === "orchestrations" && parts.length === 1)) return ["list"];
  if (parts[0] === "orchestrations" && parts.length === 2) return ["detail", parts[1]];
  if (parts[0] === "submit" && parts.length === 1) return ["submit"];
  if (parts[0] === "services" && parts.length === 1) return ["services"];
  return ["missing"];
}

function keyPrompt(message) {
  replace(who);
  const input = h("input", {
    id: "api-key", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "key-help",
  });
  const form = h("form", { class: "card key-form", "aria-labelledby": "key-title" },
    h("h1", { id: "key-title", text: "Sign in with an API key" }),
    message ? h("p", { class: "error", role: "alert", id: "key-error", text: message }) : null,
    h("label", { for: "api-key", text: "API key" }), input,
    h("p", { id: "key-help", class: "hint",
      text: "The same key as the API (orra up prints one). It stays in this tab's session storage." }),
    h("button", { type: "submit", text: "Open the console" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    setApiKey(input.value.trim());
    forgetMe();
    render();
  });
  replace(main, form);
  input.focus();
}

async function render() {
  if (cleanup) { cleanup(); cleanup = null; }
  const [page, arg] = route(location.pathname);
  for (const link of document.querySelectorAll("header nav a")) {
    const current = location.pathname.startsWith(link.getAttribute("href")) ||
      (page === "detail" && link.getAttribute("href") === "/ui/orchestrations");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (!apiKey()) { keyPrompt(null); return; }
  // The page asks for its data while /me is checked: one round trip, not two. With a bad
  // key both are refused (401), which brings the key prompt back; no data is ever shown.
  const me = whoAmI();
  const mine = ++renders;
  me.then((who_) => {
    if (mine !== renders) return;
    replace(who,
      h("span", { text: `Project ${who_.project} · ${who_.role}` }), " ",
      h("button", { type: "button", class: "link", text: "Sign out",
        onClick: () => { setApiKey(null); forgetMe(); render(); } }));
  }, (err) => {
    if (mine !== renders) return;
    if (err instanceof ApiError && err.status === 401) return;  // the prompt is up already
    if (cleanup) { cleanup(); cleanup = null; }
    replace(main, h("p", { class: "error", role: "alert",
      text: `The gateway did not answer: ${err.message}` }));
  });
  me.catch(() => {});
  const ctx = { main, me, navigate, api };
  replace(main);
  if (page === "list") cleanup = listPage(ctx);
  else if (page === "detail") cleanup = detailPage(ctx, arg);
  else if (page === "submit") cleanup = submitPage(ctx);
  else if (page === "services") cleanup = servicesPage(ctx);
  else notFound(main, "There is no such page in the console.");
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest("a[href^='/ui']");
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);
window.addEventListener("orra:unauthorized", (ev) => {
  if (!apiKey()) return;  // refused once already: the prompt is up
  setApiKey(null); forgetMe();
  renders++;
  if (cleanup) { cleanup(); cleanup = null; }
  keyPrompt(`That API key was refused (${ev.detail || "unauthorized"}). Enter a valid key.`);
});
render();

return { navigate };
})();
