// Submit an action: data fields (text or JSON), an optional webhook; shows the plan or why not.

import { api } from "./api.js";
import { badge, h, replace } from "./dom.js";

/** Parse a data value: JSON when it starts like an object, array or quoted string. */
export function parseValue(raw) {
  const text = raw.trim();
  if (/^[[{"]/.test(text)) return { json: true, value: JSON.parse(text) };
  return { json: false, value: raw };
}

export function submitPage({ main }) {
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
