// The JSON API with the key from session storage; problem details become ApiError.

const KEY = "orra.apiKey";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function authHeaders() {
  return { Authorization: `Bearer ${apiKey() || ""}` };
}

/** Call the API; resolves with the JSON body, rejects with ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
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
export function whoAmI() {
  if (!me) {
    me = api("/me");
    me.catch(() => { me = null; });
  }
  return me;
}

export function forgetMe() {
  me = null;
}
