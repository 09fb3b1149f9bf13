// One orchestration: header and actions, timeline, plan graph, tasks, webhooks, compensation.
// It follows the orchestration's SSE stream (resuming with Last-Event-ID after a drop) and
// refetches the view when events arrive.

import { api } from "./api.js";
import { badge, duration, h, jsonBlock, notFound, rendered, replace, TERMINAL, when } from "./dom.js";
import { graph } from "./graph.js";
import { segmentsFrom, timeline } from "./timeline.js";
import { follow } from "./sse.js";

export function detailPage({ main, me: caller }, id) {
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
