// The orchestrations list: newest first, status filter, search, paging, live refresh.

import { api } from "./api.js";
import { badge, duration, h, rendered, replace, when } from "./dom.js";

const STATUSES = ["", "planning", "awaiting_approval", "running", "paused", "compensating", "completed", "failed",
  "aborted", "not_actionable"];
const PAGE = 50;
const ID = /^o_[A-Za-z0-9_-]+$/;

export function listPage({ main }) {
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
