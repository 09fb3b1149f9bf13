/**
 * The connection of a service process to Orra: registration, heartbeats, task workers (the
 * Python SDK's `orra_sdk.client.OrraClient`).
 *
 * Stop signals: the client follows `orchestration.aborted.*`, `orchestration.failed.*` and
 * `orchestration.compensating.*` with plain (core NATS) subscriptions, and asks its workers
 * to stop the running handlers of that orchestration. Best effort: a process that misses
 * the signal lets the handler finish; the dispatcher ignores the result of an ended
 * orchestration, and compensates it if it completed.
 */
import type { Subscription } from "@nats-io/nats-core";
import { Bus, BrokerUnavailable } from "./bus.js";
import { JetStreamApiError } from "@nats-io/jetstream";
import { decode, encode } from "./codec.js";
import { serviceHeartbeat, serviceRegistered, type OrraEvent, type ServiceRegistered } from "./events.js";
import { ClientClosed, OrraSdkError, RegistrationConflict, ServiceDefinitionError, describeError } from "./errors.js";
import { conflictMessage, registrationProblem, sameDefinition } from "./registrations.js";
import { canonicalVersion, InvalidVersion, versionFromToken } from "./versions.js";
import { InvalidName, type Topology as TopologyType } from "./topology.js";
import { newEventId, registrationId } from "./ids.js";
import { log } from "./log.js";
import { ResultStore } from "./results.js";
import type { AnyService } from "./service.js";
import { DEFAULT_NATS_URL, envBool, envFloat, envInt, envString } from "./settings.js";
import { Topology } from "./topology.js";
import { ServiceWorker } from "./worker.js";

/** KV bucket (within the namespace) of task claims and recorded results, shared with `orra_sdk`. */
export const RESULTS_BUCKET = "sdk_results";

/** JetStream errors of a registration whose subject holds one already: wrong last subject
 * sequence (the expectation of 0), maximum messages per subject (the stream's own rule). */
const SUBJECT_TAKEN = new Set([10071, 10077]);

/** Why a decoded message of the registry stream is malformed (`orra_events.registry.registry_problem`). */
function registryProblem(topology: TopologyType, event: OrraEvent, subject: string): string | undefined {
  if (event.type !== "service.registered" && event.type !== "service.heartbeat") {
    return `expected a service event on ${subject}, got ${event.type}`;
  }
  let expected: string;
  try {
    expected = topology.subjectFor(event);
  } catch (error) {
    if (error instanceof InvalidVersion) return `${event.type} event of ${event.service}: ${error.message}`;
    if (error instanceof InvalidName) return `${event.type} event with an invalid service name: ${error.message}`;
    throw error;
  }
  const legacy = topology.serviceSubject(event.type, event.service, null);
  if (subject !== expected && subject !== legacy) return `${event.type} event for ${event.service} on subject ${subject}`;
  return event.type === "service.registered" ? registrationProblem(event) : undefined;
}

/** Events after which the running tasks of an orchestration are told to stop. */
export const STOP_SIGNALS = ["orchestration.aborted", "orchestration.failed", "orchestration.compensating"] as const;

/** Settings of an {@link OrraClient}; each defaults as in the Python SDK. */
export interface ClientOptions {
  /** Broker URL; `ORRA_NATS_URL` or `nats://127.0.0.1:4222`. Credentials and `tls://` in the URL. */
  natsUrl?: string;
  /** Orra namespace; `ORRA_NAMESPACE` or `""` (production). */
  namespace?: string;
  /** Project the services are registered in (`"default"`). */
  project?: string;
  /** Seconds between `service.heartbeat` events; `ORRA_HEARTBEAT_INTERVAL_S` or 5. */
  heartbeatIntervalS?: number;
  /** Seconds the broker waits for news of a task before redelivering it (30); in-progress acks every third of it keep long tasks alive. */
  ackWaitS?: number;
  /** Tasks run at once per service, unless the service sets its own (64). */
  concurrency?: number;
  /** On stop, how long running tasks may finish before they are abandoned to another replica (10 s). */
  drainTimeoutS?: number;
  /** Lifetime of one pull request to the broker (10 s). */
  pullExpiresS?: number;
  /** A task delivered more often than this (its process died each time) fails as not retryable (5). */
  maxDeliveries?: number;
  /** How long recorded results (the idempotency record) are kept (7 days). */
  resultsTtlS?: number;
  /** Create the streams when missing (`ORRA_MANAGE_STREAMS`, true); when false, wait for them. */
  manageStreams?: boolean;
  /** Connection name shown by the broker (`orra-sdk`). */
  name?: string;
}

/**
 * Connects services and agents to Orra and runs their tasks. One client (one process) can
 * host several services; several processes hosting the same service share its tasks, and
 * so do Python processes hosting it with `orra_sdk`.
 *
 * @example
 * const client = new OrraClient();
 * await client.connect();
 * await client.serve(payment);   // until client.stop()
 */
export class OrraClient {
  readonly natsUrl: string;
  readonly topology: Topology;
  readonly project: string;
  readonly heartbeatIntervalS: number;
  readonly ackWaitS: number;
  readonly concurrency: number;
  readonly drainTimeoutS: number;
  readonly pullExpiresS: number;
  readonly maxDeliveries: number;
  readonly resultsTtlS: number;
  readonly manageStreams: boolean;
  readonly name: string;
  /** This process's id, in heartbeats and idempotency claims. */
  readonly instanceId: string;
  #bus: Bus | undefined;
  #store: ResultStore | undefined;
  readonly #workers = new Map<string, ServiceWorker>();
  readonly #services = new Map<string, AnyService>();
  #heartbeat: Promise<void> | undefined;
  #wakeHeartbeat: (() => void) | undefined;
  #signals: Subscription[] = [];
  #closing = false;
  #starting = 0;
  #stopped: Promise<void>;
  #markStopped: () => void = () => undefined;

  /** @throws {ServiceDefinitionError} a setting is out of range; {@link InvalidSetting} an `ORRA_*` value is unusable. */
  constructor(options: ClientOptions = {}) {
    const concurrency = options.concurrency ?? 64;
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new ServiceDefinitionError("concurrency must be at least 1");
    const heartbeat = options.heartbeatIntervalS ?? envFloat("ORRA_HEARTBEAT_INTERVAL_S", 5);
    const ackWait = options.ackWaitS ?? 30;
    if (!(ackWait > 0) || !(heartbeat > 0)) throw new ServiceDefinitionError("ackWaitS and heartbeatIntervalS must be positive");
    this.natsUrl = options.natsUrl || envString("ORRA_NATS_URL", DEFAULT_NATS_URL);
    this.topology = new Topology({
      namespace: options.namespace ?? process.env.ORRA_NAMESPACE ?? "",
      // As every Orra process: a service that creates or updates the streams must not turn
      // the R3 streams of a cluster into R1 ones.
      replicas: envInt("ORRA_STREAM_REPLICAS", 1),
    });
    this.project = options.project ?? "default";
    this.heartbeatIntervalS = heartbeat;
    this.ackWaitS = ackWait;
    this.concurrency = concurrency;
    this.drainTimeoutS = options.drainTimeoutS ?? 10;
    this.pullExpiresS = options.pullExpiresS ?? 10;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.resultsTtlS = options.resultsTtlS ?? 7 * 24 * 3600;
    this.manageStreams = options.manageStreams ?? envBool("ORRA_MANAGE_STREAMS", true);
    this.name = options.name ?? "orra-sdk";
    this.instanceId = newEventId("i");
    this.#stopped = this.#newStopped();
  }

  #newStopped(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#markStopped = resolve;
    });
  }

  // --- lifecycle -------------------------------------------------------------------------

  /** The client's bus; throws {@link ClientClosed} when not connected. */
  get bus(): Bus {
    if (this.#bus === undefined) throw new ClientClosed("the OrraClient is not connected: call connect() first");
    return this.#bus;
  }

  /**
   * Whether the client serves: connected, its services registered and taking tasks. False
   * before {@link start} returns, while the broker connection is down, and from the moment
   * {@link stop} begins. This is what `/readyz` answers.
   */
  get ready(): boolean {
    const bus = this.#bus;
    return (
      bus !== undefined &&
      bus.connected &&
      !this.#closing &&
      this.#starting === 0 &&
      this.#workers.size > 0 &&
      [...this.#workers.values()].every((worker) => worker.bound)
    );
  }

  /** Connect to the broker and open the result store; throws {@link OrraSdkError} when it cannot. */
  async connect(): Promise<void> {
    if (this.#bus !== undefined) return;
    let bus: Bus;
    try {
      bus = await Bus.connect(this.natsUrl, this.topology, { name: this.name });
    } catch (error) {
      if (error instanceof BrokerUnavailable) throw new OrraSdkError(error.message);
      throw error;
    }
    try {
      if (this.manageStreams) await bus.ensureStreams();
      else await bus.bindStreams();
      const kv = await bus.kv(RESULTS_BUCKET, { ttlS: this.resultsTtlS });
      this.#store = new ResultStore(kv, this.instanceId);
    } catch (error) {
      await bus.close();
      throw new OrraSdkError(`cannot prepare JetStream: ${(error as Error).message}`);
    }
    this.#bus = bus;
  }

  /**
   * Register `services` and start running their tasks; resolves once they take tasks.
   *
   * @throws {ServiceDefinitionError} a service has no handler, or is already served.
   * @throws {ClientClosed} the client is not connected.
   */
  async start(...services: AnyService[]): Promise<void> {
    const bus = this.bus;
    const store = this.#store as ResultStore;
    for (const service of services) {
      void service.handle; // throws when the handler is missing
      if (this.#services.has(service.name)) {
        throw new ServiceDefinitionError(`${service.name} is already served by this client`);
      }
      if (service.revertible && service.reverter === undefined) {
        log.warning(
          "revertible service without a revert handler: its compensations will fail; set one with service.revert(...)",
          { service: service.name },
        );
      }
    }
    if (this.#signals.length === 0) {
      for (const eventType of STOP_SIGNALS) {
        this.#signals.push(
          bus.nc.subscribe(bus.topology.allOf(eventType), {
            callback: (error, msg) => {
              if (error === null) this.#onStopSignal(msg.subject, msg.data);
            },
          }),
        );
      }
      await bus.nc.flush();
    }
    this.#starting += 1; // not ready until every service of this call is taking tasks
    try {
      // Every registration first: a refused one stops the start before any service of
      // this call takes a task.
      for (const service of services) await this.register(service);
      for (const service of services) {
        const worker = new ServiceWorker(bus, service, store, {
          concurrency: service.concurrency ?? this.concurrency,
          ackWaitS: this.ackWaitS,
          pullExpiresS: this.pullExpiresS,
          maxDeliveries: this.maxDeliveries,
        });
        await worker.start();
        this.#services.set(service.name, service);
        this.#workers.set(service.name, worker);
        await this.#beat(service);
        log.info("service ready", { service: service.name, schema_hash: service.schemaHash });
      }
      if (this.#heartbeat === undefined) {
        this.#closing = false;
        this.#heartbeat = this.#heartbeats();
      }
    } finally {
      this.#starting -= 1;
    }
  }

  /** Start `services` (see {@link start}) and resolve when {@link stop} is called. */
  async serve(...services: AnyService[]): Promise<void> {
    await this.start(...services);
    await this.#stopped;
  }

  /** Stop pulling tasks, finish (or abandon after the drain timeout) running ones. */
  async stop(): Promise<void> {
    this.#closing = true;
    this.#wakeHeartbeat?.();
    if (this.#heartbeat !== undefined) {
      await this.#heartbeat;
      this.#heartbeat = undefined;
    }
    for (const sub of this.#signals) {
      try {
        sub.unsubscribe();
      } catch {
        // closed
      }
    }
    this.#signals = [];
    const workers = [...this.#workers.values()];
    this.#workers.clear();
    this.#services.clear();
    await Promise.all(workers.map((worker) => worker.stop(this.drainTimeoutS)));
    this.#markStopped();
    this.#stopped = this.#newStopped();
  }

  /** Stop, then close the connection. */
  async close(): Promise<void> {
    await this.stop();
    const bus = this.#bus;
    this.#bus = undefined;
    this.#store = undefined;
    if (bus !== undefined) await bus.close();
  }

  #onStopSignal(subject: string, data: Uint8Array): void {
    const orchestrationId = subject.slice(subject.lastIndexOf(".") + 1);
    let reason: string;
    try {
      const event = decode(data);
      if (event.type === "orchestration.aborted") reason = `orchestration aborted: ${event.reason}`;
      else if (event.type === "orchestration.failed") reason = `orchestration failed: ${event.error}`;
      else if (event.type === "orchestration.compensating") {
        reason = `orchestration ${event.cause}, compensating: ${event.reason}`;
      } else return;
    } catch {
      return;
    }
    for (const worker of this.#workers.values()) worker.stopOrchestration(orchestrationId, reason);
  }

  // --- registry --------------------------------------------------------------------------

  /**
   * Register the service's name and version with its definition; return the event.
   *
   * One name and version has one definition, and the first registration counts (see
   * `orra_events.registrations`). The event goes to `service.registered.<name>.<version>`
   * only if that subject is empty (expected last subject sequence 0; the stream also refuses
   * a second message there), with the id `reg:<name>:<schema hash>`. When the subject is
   * taken, the stored definition decides: the same one (another replica, Python or Node, a
   * restart) is fine; another one throws {@link RegistrationConflict}. Registrations stored
   * before versions had subjects (on `service.registered.<name>`) count too.
   *
   * @throws {RegistrationConflict} the name and version hold another definition (the
   *   message names both ways out).
   */
  async register(service: AnyService): Promise<ServiceRegistered> {
    const bus = this.bus;
    const event = this.#registration(service, registrationId(service.name, service.schemaHash));
    let stored = await this.#registered(event);
    if (stored === undefined) {
      try {
        await bus.js.publish(bus.topology.subjectFor(event), encode(event), {
          msgID: event.event_id,
          expect: { lastSubjectSequence: 0 },
        });
      } catch (error) {
        if (!(error instanceof JetStreamApiError) || !SUBJECT_TAKEN.has(error.code)) throw error;
        stored = await this.#registered(event); // another process won the race
      }
    }
    if (stored !== undefined) {
      const [registered, problem] = stored;
      if (problem !== undefined) {
        throw new RegistrationConflict(
          `service ${service.name} version ${service.version} cannot be registered: its subject holds a ` +
            `registration that every follower refuses (${problem}). Fix: give this service another name, or raise its version.`,
        );
      }
      if (!sameDefinition(registered, event)) {
        throw new RegistrationConflict(conflictMessage(registered, event, await this.#versions(service)));
      }
      log.debug("already registered", { service: service.name, version: service.version });
    }
    return event;
  }

  #registration(service: AnyService, eventId: string): ServiceRegistered {
    return serviceRegistered(eventId, {
      service: service.name,
      project: this.project,
      description: service.description,
      input_schema: service.inputSchema,
      output_schema: service.outputSchema,
      revertible: service.revertible,
      version: service.version,
      kind: service.kind,
      schema_hash: service.schemaHash,
      examples: [...service.examples],
    });
  }

  /**
   * The registration that counts for the event's name and version, with its problem
   * (`undefined` when followers accept it), or `undefined` when there is none. The older
   * subject `service.registered.<name>` is read first.
   */
  async #registered(event: ServiceRegistered): Promise<[ServiceRegistered, string | undefined] | undefined> {
    const bus = this.bus;
    const topology = bus.topology;
    const legacy = topology.serviceSubject(event.type, event.service, null);
    for (const subject of [legacy, topology.subjectFor(event)]) {
      const raw = await bus.jsm.streams.getMessage(topology.servicesStream, { last_by_subj: subject }).catch((error: unknown) => {
        if (error instanceof JetStreamApiError && error.code === 10037) return null; // no message
        throw error;
      });
      if (raw === null) continue;
      let stored: OrraEvent;
      try {
        stored = decode(raw.data);
      } catch (error) {
        if (subject === legacy) continue; // parked by the followers; the versioned subject decides
        return [event, describeError(error)];
      }
      const problem = registryProblem(topology, stored, subject);
      if (subject === legacy) {
        if (problem !== undefined || stored.type !== "service.registered" || canonicalVersion(stored.version ?? "1") !== event.version) {
          continue; // only a valid registration of this very version counts there
        }
      }
      if (stored.type !== "service.registered") return [event, problem ?? `${stored.type} on ${subject}`];
      return [stored, problem];
    }
    return undefined;
  }

  /** Every registered version of the service's name (best effort, for the message). */
  async #versions(service: AnyService): Promise<string[]> {
    const topology = this.bus.topology;
    const prefix = topology.serviceSubject("service.registered", service.name, null);
    try {
      const info = await this.bus.jsm.streams.info(topology.servicesStream, { subjects_filter: `${prefix}.*` });
      const subjects = Object.keys(info.state.subjects ?? {});
      return subjects.map((s) => versionFromToken(s.slice(s.lastIndexOf(".") + 1))).filter((v): v is string => v !== undefined);
    } catch {
      return [];
    }
  }

  async #beat(service: AnyService): Promise<void> {
    await this.bus.publish(
      serviceHeartbeat(newEventId("hb"), service.name, this.project, this.instanceId, this.heartbeatIntervalS, service.version),
    );
  }

  async #heartbeats(): Promise<void> {
    while (!this.#closing) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.heartbeatIntervalS * 1000);
        this.#wakeHeartbeat = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.#closing) break;
      for (const service of [...this.#services.values()]) {
        try {
          await this.#beat(service);
        } catch (error) {
          log.warning("heartbeat failed", { service: service.name, error: describeError(error) });
        }
      }
    }
  }
}
