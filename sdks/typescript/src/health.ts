/**
 * The probe and metrics endpoints of a service process: `/healthz` (alive), `/readyz`
 * (ready: connected, registered, taking tasks) and `/metrics` (Prometheus text), with the
 * bodies of `orra_events.health.HealthServer`.
 */
import { createServer, type Server } from "node:http";
import { METRICS } from "./metrics.js";

/** Serves `/healthz`, `/readyz` (while `ready()` is true) and `/metrics` on one port. */
export class HealthServer {
  readonly port: number;
  readonly host: string;
  readonly ready: () => boolean;
  #server: Server | undefined;

  constructor(port: number, ready: () => boolean, host = "0.0.0.0") {
    this.port = port;
    this.ready = ready;
    this.host = host;
  }

  /** The port actually listened on (useful with port 0). */
  get boundPort(): number {
    const address = this.#server?.address();
    return typeof address === "object" && address !== null ? address.port : this.port;
  }

  /** Listen; rejects when the port is taken. */
  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      let status = 200;
      let body: string;
      let type = "application/json";
      if (path === "/healthz") {
        body = '{"status":"ok"}';
      } else if (path === "/readyz") {
        const ok = this.ready();
        status = ok ? 200 : 503;
        body = ok ? '{"status":"ready"}' : '{"status":"broker unreachable"}';
      } else if (path === "/metrics") {
        body = METRICS.render();
        type = "text/plain; version=0.0.4";
      } else {
        status = 404;
        body = '{"status":"not found"}';
      }
      res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body), Connection: "close" });
      res.end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#server = server;
  }

  /** Stop listening. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
