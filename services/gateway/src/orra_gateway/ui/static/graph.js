// The plan as a graph: tasks in columns by group, an edge per $task.field reference.

import { h, s } from "./dom.js";
import { groupsOf } from "./timeline.js";

const REF = /^\$([A-Za-z_][A-Za-z0-9_-]*)\.([^\s]+)$/;

/** Edges {from, to, fields[]} found in each task's input ($task.field) and dependsOn. */
export function edgesOf(tasks) {
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
export function graph(view, planTasks) {
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
