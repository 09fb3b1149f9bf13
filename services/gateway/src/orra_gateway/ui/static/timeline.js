// The Gantt timeline: one row per task, grouped by parallel group (or dependency depth),
// every attempt, retry wait and compensation drawn on the task's row from the events.

import { duration, h } from "./dom.js";

/** Attempt segments per task, from the orchestration's events in log order. */
export function segmentsFrom(events) {
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
export function byDepth(view) {
  return view.mode === "eager" || !(view.parallel_groups && view.parallel_groups.length);
}

/**
 * Rows of tasks: the plan's parallel groups; in eager mode (a task starts as soon as its
 * own inputs are ready) the dependency depth, which is what decides when a task can start.
 */
export function groupsOf(view) {
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
export function timeline(view, segments, now) {
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
