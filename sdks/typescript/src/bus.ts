/**
 * The JetStream side of the SDK (the TypeScript twin of `orra_events.bus.Bus`): connect,
 * declare or bind the streams, publish events with their id as `Nats-Msg-Id`, park
 * messages on the dead-letter subject, open KV buckets.
 */
import {
  type JetStreamClient,
  type JetStreamManager,
  JetStreamApiError,
  type PubAck,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { headers as newHeaders, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { encode } from "./codec.js";
import type { OrraEvent } from "./events.js";
import { OrraSdkError } from "./errors.js";
import { log } from "./log.js";
import type { Topology } from "./topology.js";

/** Headers of a parked message (docs/architecture.md, streams: `ORRA_DLQ`). */
export const HDR_REASON = "Orra-Dead-Letter-Reason";
export const HDR_ORIGINAL_SUBJECT = "Orra-Original-Subject";
export const HDR_ORIGINAL_STREAM = "Orra-Original-Stream";
export const HDR_ORIGINAL_SEQUENCE = "Orra-Original-Sequence";

/**
 * While a process stops, how long it still waits for work that needs the broker once the
 * broker is unreachable (`orra_events.bus.BROKER_PATIENCE_S`).
 */
export const BROKER_PATIENCE_S = 1.0;

/** The broker cannot be reached, or the streams are missing. */
export class BrokerUnavailable extends OrraSdkError {
  override name = "BrokerUnavailable";
}

/** Where a JetStream message came from, read from its `$JS.ACK...` reply subject. */
export interface Delivery {
  stream: string;
  streamSequence: number;
  /** How many times it was delivered (1 for the first). */
  deliveries: number;
}

/** The delivery metadata of a JetStream message, or `undefined` for a plain NATS message. */
export function deliveryOf(reply: string | undefined): Delivery | undefined {
  const tokens = (reply ?? "").split(".");
  if (tokens[0] !== "$JS" || tokens[1] !== "ACK") return undefined;
  if (tokens.length === 9) {
    return { stream: tokens[2] ?? "", deliveries: Number(tokens[4]), streamSequence: Number(tokens[5]) };
  }
  if (tokens.length >= 11) {
    return { stream: tokens[4] ?? "", deliveries: Number(tokens[6]), streamSequence: Number(tokens[7]) };
  }
  return undefined;
}

function connectionOptions(url: string, name: string, timeoutMs: number): NodeConnectionOptions {
  const options: NodeConnectionOptions = { name, timeout: timeoutMs, reconnectTimeWait: 500 };
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !parsed.host) {
    options.servers = url;
    return options;
  }
  if (parsed.username && parsed.password) {
    options.user = decodeURIComponent(parsed.username);
    options.pass = decodeURIComponent(parsed.password);
  } else if (parsed.username) {
    options.token = decodeURIComponent(parsed.username);
  }
  if (parsed.protocol === "tls:") options.tls = {};
  options.servers = `${parsed.hostname.includes(":") ? `[${parsed.hostname}]` : parsed.hostname}:${parsed.port || "4222"}`;
  return options;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A connection to JetStream bound to one {@link Topology}. */
export class Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly topology: Topology;
  #connected = true;
  #reconnects = 0;
  closing = false;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, topology: Topology, name: string) {
    this.nc = nc;
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: 5000 });
    this.topology = topology;
    void this.#follow(name);
  }

  /**
   * Connect to the broker; once connected, reconnect by itself forever. The first
   * connection is tried `attempts` times (0.5 s apart) and then fails with
   * {@link BrokerUnavailable}, so a process started without a broker says so.
   */
  static async connect(
    url: string,
    topology: Topology,
    options: { name: string; connectTimeoutS?: number; attempts?: number },
  ): Promise<Bus> {
    const attempts = Math.max(1, options.attempts ?? 3);
    const timeoutMs = (options.connectTimeoutS ?? 5) * 1000;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        const nc = await connect({
          ...connectionOptions(url, options.name, timeoutMs),
          maxReconnectAttempts: -1,
          waitOnFirstConnect: false,
        });
        const jsm = await jetstreamManager(nc, { timeout: 5000 });
        return new Bus(nc, jsm, topology, options.name);
      } catch (error) {
        lastError = error;
        if (i + 1 < attempts) await sleep(500);
      }
    }
    throw new BrokerUnavailable(`cannot reach NATS at ${url}: ${(lastError as Error)?.message ?? lastError}`);
  }

  async #follow(name: string): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect") {
        this.#connected = false;
        if (!this.closing) log.warning("nats disconnected", { client: name });
      } else if (status.type === "reconnect") {
        this.#connected = true;
        this.#reconnects += 1;
        log.info("nats reconnected", { client: name });
      } else if (status.type === "error") {
        log.warning("nats error", { client: name, error: status.error.message });
      }
    }
  }

  /** Whether the connection to the broker is up now. */
  get connected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  /** How many times the connection came back (a new value: the broker restarted or returned). */
  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Wait for `work` (work that needs the broker) while stopping; bounded: up to
   * `timeoutS`, but no longer than {@link BROKER_PATIENCE_S} once the broker is
   * unreachable (that work cannot finish without it, and a process must stop within its
   * grace period even while the broker is down). Resolves to whether `work` finished.
   */
  async waitWhileReachable(work: Promise<unknown>, timeoutS: number, what = "running work"): Promise<boolean> {
    let finished = false;
    void work.then(
      () => (finished = true),
      () => (finished = true),
    );
    const deadline = Date.now() + Math.max(timeoutS, 0) * 1000;
    let downSince: number | undefined;
    while (!finished) {
      const now = Date.now();
      if (now >= deadline) return false;
      if (this.connected) downSince = undefined;
      else if (downSince === undefined) downSince = now;
      else if (now - downSince >= BROKER_PATIENCE_S * 1000) {
        log.warning("the broker is unreachable: not waiting", { waiting_for: what });
        return false;
      }
      await sleep(Math.min(100, deadline - now));
    }
    return true;
  }

  /**
   * Create every stream of the topology, or bring the settings Orra owns to its definition.
   * A services stream of the layout before `ORRA_HEARTBEATS` existed (`service.>`) is
   * narrowed to the registrations, and its heartbeats are purged (as `orra_events.Bus`).
   */
  async ensureStreams(): Promise<void> {
    const topology = this.topology;
    let legacy = false;
    try {
      const info = await this.jsm.streams.info(topology.servicesStream);
      legacy = JSON.stringify(info.config.subjects) === JSON.stringify([topology.subject("service", ">")]);
    } catch (error) {
      if (!(error instanceof JetStreamApiError)) throw error;
    }
    for (const config of topology.streamConfigs()) {
      try {
        await this.jsm.streams.add(config);
      } catch (error) {
        if (!(error instanceof JetStreamApiError)) throw error;
        const current = (await this.jsm.streams.info(config.name)).config as unknown as Record<string, unknown>;
        const wanted = config as unknown as Record<string, unknown>;
        const differs = Object.keys(wanted).some(
          (key) => JSON.stringify(current[key] ?? null) !== JSON.stringify(wanted[key]),
        );
        if (differs) await this.jsm.streams.update(config.name, { ...current, ...wanted });
      }
    }
    if (legacy) {
      await this.jsm.streams.purge(topology.servicesStream, { filter: topology.heartbeatsFilter });
      log.info("services stream narrowed to registrations", { stream: topology.servicesStream });
    }
  }

  /** Wait until every stream exists (created by another component); `ORRA_MANAGE_STREAMS=false`. */
  async bindStreams(timeoutS = 30): Promise<void> {
    const deadline = Date.now() + timeoutS * 1000;
    for (const config of this.topology.streamConfigs()) {
      for (;;) {
        try {
          await this.jsm.streams.info(config.name);
          break;
        } catch (error) {
          if (!(error instanceof JetStreamApiError) || error.code !== 10059) throw error;
          if (Date.now() > deadline) throw new BrokerUnavailable(`stream ${config.name} does not exist`);
          await sleep(200);
        }
      }
    }
  }

  /** Append an event (its `event_id` as `Nats-Msg-Id`) and wait for the broker's ack. */
  async publish(event: OrraEvent, subject?: string): Promise<PubAck> {
    return await this.js.publish(subject ?? this.topology.subjectFor(event), encode(event), {
      msgID: event.event_id,
    });
  }

  /**
   * Move a message to the dead-letter subject with its reason, then stop its redeliveries.
   *
   * The parked copy keeps the payload and the application headers, and gains
   * `Orra-Dead-Letter-Reason`, `Orra-Original-Subject` and, for a JetStream message,
   * `Orra-Original-Stream` / `Orra-Original-Sequence` (deduplicated by them). The
   * broker's own `Nats-*` headers are dropped.
   */
  async park(msg: Msg, reason: string): Promise<void> {
    const original = msg.subject;
    const hdrs = newHeaders();
    if (msg.headers) {
      for (const [key, values] of msg.headers) {
        if (key.toLowerCase().startsWith("nats-")) continue;
        for (const value of values) hdrs.append(key, value);
      }
    }
    hdrs.set(HDR_REASON, reason.slice(0, 2000).replace(/[\r\n]+/g, " "));
    hdrs.set(HDR_ORIGINAL_SUBJECT, original);
    const meta = deliveryOf(msg.reply);
    let msgID: string | undefined;
    if (meta !== undefined) {
      hdrs.set(HDR_ORIGINAL_STREAM, meta.stream);
      hdrs.set(HDR_ORIGINAL_SEQUENCE, String(meta.streamSequence));
      msgID = `dlq:${meta.stream}:${meta.streamSequence}`;
    }
    await this.js.publish(this.topology.deadLetter(original), msg.data, msgID ? { headers: hdrs, msgID } : { headers: hdrs });
    log.error("message parked on dead-letter subject", { subject: original, reason });
    if (msg.reply) this.nc.publish(msg.reply, "+TERM");
  }

  /**
   * Open the key-value bucket `name` of this topology, creating it when missing (an existing
   * bucket, made by a Python process for instance, is used with its own settings).
   */
  async kv(name: string, options: { ttlS?: number; history?: number } = {}): Promise<KV> {
    return await new Kvm(this.js).create(this.topology.bucket(name), {
      history: options.history ?? 1,
      replicas: this.topology.replicas,
      ...(options.ttlS ? { ttl: options.ttlS * 1000 } : {}),
    });
  }

  /** Flush, then close the connection. */
  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.nc.drain();
    } catch {
      // already closed
    }
    if (!this.nc.isClosed()) await this.nc.close();
  }
}
