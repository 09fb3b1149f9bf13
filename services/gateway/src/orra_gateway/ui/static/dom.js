// Building DOM without ever parsing data as HTML: every text goes through textContent.

/**
 * Make an element. attrs: class, text, on<Event> handlers, dataset, aria-* and any
 * attribute; children: nodes, strings (text nodes), arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** Make an SVG element (same rules as h). */
export function s(tag, attrs = {}, ...children) {
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
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A JSON value as indented text in a <pre>. */
export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON" },
    JSON.stringify(value, null, 2));
}

const pad = (n) => String(n).padStart(2, "0");

/**
 * Seconds since the epoch as local date and time, "2026-12-03 19:41:58". By hand, not
 * toLocaleString(): its first call loads the browser's locale data, 20-30 ms of a cold page.
 */
export function when(epochSeconds) {
  if (!epochSeconds) return "—";
  const d = new Date(epochSeconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in ms as "850 ms", "2.4 s", "3 min 5 s". */
export function duration(ms) {
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
export function badge(status) {
  const word = String(status || "unknown");
  return h("span", { class: `badge st-${word.replace(/[^a-z_]/g, "")}` },
    h("span", { "aria-hidden": "true", class: "sym" }, SYMBOLS[word] || "•"),
    " ", word.replace(/_/g, " "));
}

export const TERMINAL = new Set(["completed", "failed", "aborted", "not_actionable"]);

/**
 * Say that a page has rendered its data: main[data-loaded] for tests, and the first time
 * a performance mark "orra:<page>" (the benchmark reads its time since navigation).
 */
export function rendered(main, page) {
  main.dataset.loaded = page;
  if (!performance.getEntriesByName(`orra:${page}`).length) performance.mark(`orra:${page}`);
}

/** The 404 page, in el. */
export function notFound(el, text) {
  document.title = "Not found · Orra";
  replace(el, h("section", { class: "card notfound" },
    h("h1", { text: "404 · Not found" }),
    h("p", { text }),
    h("p", {}, h("a", { href: "/ui/orchestrations", text: "Back to the orchestrations" }))));
}
