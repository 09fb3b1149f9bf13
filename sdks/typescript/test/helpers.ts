/**
 * Fixtures of the SDK tests: one nats-server per test file, a namespace per test (its
 * streams deleted afterwards), clients on that namespace, tasks dispatched as the
 * dispatcher does, and a log of the events published.
 */
import { randomBytes } from "node:crypto";
import type { Subscription } from "@nats-io/nats-core";
import { Bus } from "../src/bus.js";
import { OrraClient, type ClientOptions } from "../src/client.js";
import { decode } from "../src/codec.js";
import type { OrraEvent, TaskCompensating, TaskDispatched } from "../src/events.js";
import { setLogSink } from "../src/log.js";
import { Topology } from "../src/topology.js";
import { NatsServer } from "./nats.js";

export { NatsServer } from "./nats.js";

/** Every event published on the namespace's task and service subjects (core NATS). */
export class EventLog {
  readonly events: OrraEvent[] = [];
  readonly #waiters = new Set<() => void>();

  push(event: OrraEvent): void {
    this.events.push(event);
    for (const wake of [...this.#waiters]) wake();
  }

  of<T extends OrraEvent["type"]>(type: T, fields: Record<string, unknown> = {}): Array<Extract<OrraEvent, { type: T }>> {
    return this.events.filter(
      (e) => e.type === type && Object.entries(fields).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v),
    ) as Array<Extract<OrraEvent, { type: T }>>;
  }

  /** Wait until `count` events of `type` with `fields` arrived; return them. */
  async wait<T extends OrraEvent["type"]>(
    type: T,
    fields: Record<string, unknown> = {},
    options: { count?: number; timeoutMs?: number } = {},
  ): Promise<Array<Extract<OrraEvent, { type: T }>>> {
    const count = options.count ?? 1;
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    while (this.of(type, fields).length < count) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${count} × ${type} ${JSON.stringify(fields)}; got ${JSON.stringify(this.events.map((e) => e.type))}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        const waiters = this.#waiters;
        waiters.add(done);
      });
    }
    return this.of(type, fields);
  }
}

/** One test's namespace on the shared server, with its own streams and clients. */
export class Harness {
  readonly server: NatsServer;
  readonly namespace = `t${randomBytes(5).toString("hex")}`;
  readonly topology: Topology;
  readonly events = new EventLog();
  readonly logs: Array<Record<string, unknown>> = [];
  bus!: Bus;
  readonly #clients: OrraClient[] = [];
  #subs: Subscription[] = [];
  #restoreLog: ((line: string) => void) | undefined;

  constructor(server: NatsServer) {
    this.server = server;
    this.topology = new Topology({ namespace: this.namespace });
  }

  static async open(server: NatsServer): Promise<Harness> {
    const harness = new Harness(server);
    harness.#restoreLog = setLogSink((line) => {
      harness.logs.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env.ORRA_TEST_LOGS) process.stderr.write(`${line}\n`);
    });
    harness.bus = await Bus.connect(server.url, harness.topology, { name: "test" });
    await harness.bus.ensureStreams();
    for (const subject of [`${harness.namespace}.task.>`, `${harness.namespace}.service.>`]) {
      harness.#subs.push(
        harness.bus.nc.subscribe(subject, {
          callback: (error, msg) => {
            if (error === null) harness.events.push(decode(msg.data));
          },
        }),
      );
    }
    await harness.bus.nc.flush();
    return harness;
  }

  /** A client on this namespace (short ack wait and drain); closed by {@link close}. */
  client(options: ClientOptions = {}): OrraClient {
    const client = new OrraClient({
      natsUrl: this.server.url,
      namespace: this.namespace,
      heartbeatIntervalS: 5,
      ackWaitS: 5,
      drainTimeoutS: 1,
      ...options,
    });
    this.#clients.push(client);
    return client;
  }

  /** Publish a task on `work.<service>` as the dispatcher does. */
  async dispatch(
    service: string,
    taskId: string,
    input: Record<string, unknown>,
    options: { attempt?: number; orchestrationId?: string; eventId?: string } = {},
  ): Promise<TaskDispatched> {
    const attempt = options.attempt ?? 1;
    const orch = options.orchestrationId ?? "o_test";
    const event: TaskDispatched = {
      type: "task.dispatched",
      event_id: options.eventId ?? `d:${orch}:${taskId}:${attempt}`,
      at: Date.now() / 1000,
      v: 1,
      orchestration_id: orch,
      task_id: taskId,
      service,
      input,
      attempt,
      idempotency_key: `${orch}:${taskId}`,
      timeout_s: 30,
    };
    await this.bus.publish(event, this.topology.work(service));
    return event;
  }

  /** Publish a compensation on `work.<service>` as the dispatcher does. */
  async compensate(
    service: string,
    taskId: string,
    input: Record<string, unknown>,
    output: Record<string, unknown>,
    options: { attempt?: number; orchestrationId?: string; reason?: string } = {},
  ): Promise<TaskCompensating> {
    const attempt = options.attempt ?? 1;
    const orch = options.orchestrationId ?? "o_test";
    const event: TaskCompensating = {
      type: "task.compensating",
      event_id: `c:${orch}:${taskId}:${attempt}`,
      at: Date.now() / 1000,
      v: 1,
      orchestration_id: orch,
      task_id: taskId,
      service,
      input,
      output,
      reason: options.reason ?? "notify failed",
      attempt,
      idempotency_key: `${orch}:${taskId}:revert`,
      timeout_s: 30,
      previous_error: null,
    };
    await this.bus.publish(event, this.topology.work(service));
    return event;
  }

  /** Messages left in the work stream once it drained, or after `timeoutMs`. */
  async workLeft(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.bus.jsm.streams.info(this.topology.workStream);
      if (info.state.messages === 0 || Date.now() > deadline) return info.state.messages;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    for (const client of this.#clients.reverse()) await client.close();
    for (const sub of this.#subs) sub.unsubscribe();
    for (const config of this.topology.streamConfigs()) {
      try {
        await this.bus.jsm.streams.delete(config.name);
      } catch {
        // never created
      }
    }
    try {
      await this.bus.jsm.streams.delete(`KV_${this.topology.bucket("sdk_results")}`);
    } catch {
      // never created
    }
    await this.bus.close();
    if (this.#restoreLog) setLogSink(this.#restoreLog);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
