// The console's router: /ui/orchestrations[/<id>], /ui/submit, /ui/services; the key prompt.

import { api, apiKey, ApiError, forgetMe, setApiKey, whoAmI } from "./api.js";
import { h, notFound, replace } from "./dom.js";
import { listPage } from "./list.js";
import { detailPage } from "./detail.js";
import { submitPage } from "./submit.js";
import { servicesPage } from "./services.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
let cleanup = null;
let renders = 0;

export function navigate(path, { replaceState = false } = {}) {
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
