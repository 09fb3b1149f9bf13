// The service registry: health, instance, versions, schema and example phrases.

import { api } from "./api.js";
import { badge, h, jsonBlock, replace, when } from "./dom.js";

export function servicesPage({ main }) {
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
