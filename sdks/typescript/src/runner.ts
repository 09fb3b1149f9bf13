/**
 * Run services as a process: connect, serve until SIGTERM / SIGINT, stop cleanly (the
 * Python SDK's `orra_sdk.runner`).
 *
 * With `ORRA_HEALTH_PORT` set (unset or 0 serves nothing) the process also serves
 * `/healthz` (alive), `/readyz` (connected, every service registered and taking tasks;
 * 503 from SIGTERM on, while the process drains) and `/metrics` (Prometheus text).
 */
import { OrraClient, type ClientOptions } from "./client.js";
import { OrraSdkError, ServiceDefinitionError, describeError } from "./errors.js";
import { HealthServer } from "./health.js";
import { configureLogging, log } from "./log.js";
import type { AnyService } from "./service.js";
import { HEALTH_PORT_ENV, healthPortFromEnv } from "./settings.js";

/**
 * Exit status of a process whose service cannot be served as declared: its registration was
 * refused (another definition holds its name and version) or its definition is wrong.
 */
export const EXIT_DEFINITION = 2;

/** The probe and metrics server of a process that serves services with `client`. */
export function healthServer(client: OrraClient, port: number, host = "0.0.0.0"): HealthServer {
  return new HealthServer(port, () => client.ready, host);
}

/** Options of {@link serveUntilSignal}. */
export interface ServeOptions {
  /** The client to serve the services with (connected here). */
  client: OrraClient;
  /** Port of the probes and metrics; `ORRA_HEALTH_PORT` when undefined; 0 serves none. */
  healthPort?: number;
  /** Resolves when the process should stop; SIGTERM and SIGINT by default. */
  until?: Promise<void>;
}

/**
 * Serve `services` on a client until SIGTERM or SIGINT; resolve to an exit code: 0 after a
 * signal, 1 when the broker (or the health port) cannot be used, {@link EXIT_DEFINITION}
 * (2) when a registration is refused or a service is declared wrongly (no task was taken).
 */
export async function serveUntilSignal(services: AnyService[], options: ServeOptions): Promise<number> {
  const { client } = options;
  const port = options.healthPort ?? healthPortFromEnv();
  let onSignal: (() => void) | undefined;
  const stopping =
    options.until ??
    new Promise<void>((resolve) => {
      onSignal = resolve;
      process.once("SIGTERM", resolve);
      process.once("SIGINT", resolve);
    });
  let health: HealthServer | undefined;
  try {
    if (port) {
      // First: liveness answers while the broker is slow to come; readiness says 503.
      health = healthServer(client, port);
      try {
        await health.start();
      } catch (error) {
        health = undefined;
        log.error("cannot start", { error: describeError(error), hint: `is port ${port} free? see ${HEALTH_PORT_ENV}` });
        return 1;
      }
    }
    try {
      await client.connect();
    } catch (error) {
      if (!(error instanceof OrraSdkError)) throw error;
      log.error("cannot start", { error: error.message, hint: "is nats-server running? see ORRA_NATS_URL" });
      return 1;
    }
    try {
      try {
        await client.start(...services);
      } catch (error) {
        if (!(error instanceof ServiceDefinitionError)) throw error;
        // A refused registration (RegistrationConflict) or a service declared wrongly:
        // nothing was taken from the work queue; say why and stop.
        log.error("cannot start", { error: error.message });
        process.stderr.write(`orra: cannot start: ${error.message}\n`);
        return EXIT_DEFINITION;
      }
      log.info("ready", {
        services: services.map((s) => s.name),
        nats_url: client.natsUrl,
        namespace: client.topology.namespace,
        instance_id: client.instanceId,
        health_port: port,
      });
      await stopping;
      log.info("stopping");
    } finally {
      // Readiness turns 503 as the client starts stopping; liveness lasts the drain.
      await client.close();
    }
    log.info("stopped");
    return 0;
  } finally {
    if (health !== undefined) await health.stop();
    if (onSignal !== undefined) {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  }
}

/**
 * Serve `services` in this process until SIGTERM / SIGINT, then exit. Connection settings
 * come from `ORRA_NATS_URL` and `ORRA_NAMESPACE` unless given in `options`; with
 * `ORRA_HEALTH_PORT` set, `/healthz`, `/readyz` and `/metrics` are served on it.
 *
 * @example
 * run(payment, inventory);
 */
export function run(...args: Array<AnyService | ClientOptions>): void {
  const services = args.filter((a): a is AnyService => typeof (a as AnyService).schemaHash === "string");
  const options = (args.find((a) => typeof (a as AnyService).schemaHash !== "string") ?? {}) as ClientOptions;
  if (services.length === 0) throw new OrraSdkError("run() needs at least one service");
  configureLogging(services.length === 1 ? services[0]?.name : "orra-sdk");
  const client = new OrraClient({
    name: `orra-sdk-${services.map((s) => s.name).join("-")}`.slice(0, 100),
    ...options,
  });
  serveUntilSignal(services, { client }).then(
    (code) => process.exit(code),
    (error: unknown) => {
      log.error("crashed", { error: describeError(error) });
      process.exit(1);
    },
  );
}
