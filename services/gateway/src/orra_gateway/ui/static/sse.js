// Server-Sent Events over fetch(): EventSource cannot send the Authorization header.
// Reconnects after a dropped connection (a gateway restart) with Last-Event-ID.

import { authHeaders } from "./api.js";

/**
 * Follow path's event stream until stop() is called.
 * onEvent({id, event, data}) for each message; onState("open"|"reconnecting"|"error", info).
 * Returns {stop, lastId()}.
 */
export function follow(path, { onEvent, onState, retryMs = 1000 } = {}) {
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
