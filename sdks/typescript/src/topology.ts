/**
 * Subjects, streams, consumers and KV buckets: where every event lives in JetStream.
 *
 * The TypeScript twin of `orra_events.topology` (libs/orra_events/src/orra_events/topology.py):
 * the same names and the same stream definitions, so that Python and Node processes share
 * one installation. Production uses the empty namespace; a non-empty namespace prefixes
 * every subject, stream and bucket.
 */
import type { StreamConfig } from "@nats-io/jetstream";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { ServiceDefinitionError } from "./errors.js";
import { reprString } from "./pyrepr.js";
import { versionToken } from "./versions.js";

const VERSIONED_TYPES = new Set(["service.registered", "service.heartbeat"]);

/** What a service name, task id or orchestration id may look like: one subject token. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** First tokens of orchestration event subjects, all stored in the events stream. */
export const EVENT_FAMILIES = ["action", "plan", "task", "orchestration", "webhook"] as const;

/** A name that is not one subject token. */
export class InvalidName extends ServiceDefinitionError {
  override name = "InvalidName";
}

/** `value` if it is usable as one subject token; throws {@link InvalidName} naming `kind` and the rule. */
export function checkName(kind: string, value: string): string {
  if (!NAME_PATTERN.test(value)) {
    throw new InvalidName(
      `${kind} ${reprString(value)} is not a valid name: use 1-128 letters, digits, '_' or '-'`,
    );
  }
  return value;
}

function token(kind: string, value: string): string {
  return value === "*" || value === ">" ? value : checkName(kind, value);
}

const NANOS = 1_000_000_000;

/** Names of every subject, stream, consumer and bucket of one Orra installation. */
export class Topology {
  readonly namespace: string;
  readonly replicas: number;
  readonly duplicateWindowS: number;
  readonly #prefix: string;
  readonly #streamPrefix: string;

  constructor(options: { namespace?: string; replicas?: number; duplicateWindowS?: number } = {}) {
    this.namespace = options.namespace ?? "";
    this.replicas = options.replicas ?? 1;
    this.duplicateWindowS = options.duplicateWindowS ?? 600;
    if (this.namespace) checkName("namespace", this.namespace);
    this.#prefix = this.namespace ? `${this.namespace}.` : "";
    this.#streamPrefix = this.namespace ? `${this.namespace.toUpperCase()}_` : "";
  }

  /** Subject of an event: `<event type>.<orchestration id or service name>` (`*`, `>` allowed). */
  subject(eventType: string, key: string): string {
    return `${this.#prefix}${eventType}.${token("subject key", key)}`;
  }

  /**
   * Subject on which an event is published: its orchestration id, or its service for
   * service events; a registration, and a heartbeat that names its version, add the
   * version's token (`service.registered.PaymentService.2`).
   */
  subjectFor(event: { type: string; orchestration_id?: string; service?: string; version?: string | null }): string {
    if (event.orchestration_id !== undefined) {
      return `${this.#prefix}${event.type}.${checkName("orchestration id", event.orchestration_id)}`;
    }
    if (VERSIONED_TYPES.has(event.type)) {
      const version = event.type === "service.registered" ? (event.version ?? "1") : (event.version ?? null);
      return this.serviceSubject(event.type, event.service ?? "", version);
    }
    return `${this.#prefix}${event.type}.${checkName("service name", event.service ?? "")}`;
  }

  /**
   * Subject of a service's registration or heartbeat at `version`:
   * `<type>.<service>.<version token>`; `<type>.<service>` when `version` is null (the
   * subject of every registration and heartbeat before versions had subjects, still read).
   */
  serviceSubject(eventType: string, service: string, version: string | null): string {
    const base = `${this.#prefix}${eventType}.${checkName("service name", service)}`;
    return version === null ? base : `${base}.${versionToken(version)}`;
  }

  /** Every service registration: `service.registered.>`. */
  get registrationsFilter(): string {
    return `${this.#prefix}service.registered.>`;
  }

  /** Every service heartbeat: `service.heartbeat.>`. */
  get heartbeatsFilter(): string {
    return `${this.#prefix}service.heartbeat.>`;
  }

  /** One event type across orchestrations: `task.completed.*`. */
  allOf(eventType: string): string {
    return `${this.#prefix}${eventType}.*`;
  }

  /** Subject on which a service receives its tasks: `work.<service>`. */
  work(service: string): string {
    return `${this.#prefix}work.${token("service name", service)}`;
  }

  /** Subject on which a message that could not be processed is parked. */
  deadLetter(originalSubject: string): string {
    return `${this.#prefix}dlq.${this.strip(originalSubject)}`;
  }

  /** Subject without the namespace prefix. */
  strip(subject: string): string {
    return this.#prefix && subject.startsWith(this.#prefix) ? subject.slice(this.#prefix.length) : subject;
  }

  /** Subject filters of the events stream. */
  get eventsFilter(): string[] {
    return EVENT_FAMILIES.map((family) => `${this.#prefix}${family}.>`);
  }

  get eventsStream(): string {
    return `${this.#streamPrefix}ORRA_EVENTS`;
  }

  get servicesStream(): string {
    return `${this.#streamPrefix}ORRA_SERVICES`;
  }

  get heartbeatsStream(): string {
    return `${this.#streamPrefix}ORRA_HEARTBEATS`;
  }

  get workStream(): string {
    return `${this.#streamPrefix}ORRA_WORK`;
  }

  get webhooksStream(): string {
    return `${this.#streamPrefix}ORRA_WEBHOOKS`;
  }

  get dlqStream(): string {
    return `${this.#streamPrefix}ORRA_DLQ`;
  }

  /** Name of a key-value bucket of this installation. */
  bucket(name: string): string {
    return `${this.#streamPrefix}orra_${name}`;
  }

  /** Name of a durable consumer. */
  consumer(name: string): string {
    return checkName("consumer", name);
  }

  /**
   * Definitions of every stream, field for field those of `Topology.stream_configs()` in
   * orra_events (durations in nanoseconds, as the JetStream API wants them).
   */
  streamConfigs(): Array<Partial<StreamConfig> & { name: string }> {
    const dup = this.duplicateWindowS * NANOS;
    return [
      {
        name: this.eventsStream,
        description: "Orra event log: every orchestration event",
        subjects: this.eventsFilter,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: this.replicas,
        duplicate_window: dup,
        allow_direct: true,
      },
      // One registration per name and version, kept for ever: the broker refuses a second
      // message on a registration subject (discard new, per subject).
      {
        name: this.servicesStream,
        description: "Orra service registry: one registration per name and version",
        subjects: [this.registrationsFilter],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: this.replicas,
        max_msgs_per_subject: 1,
        discard: DiscardPolicy.New,
        discard_new_per_subject: true,
        duplicate_window: dup,
        allow_direct: true,
      },
      {
        name: this.heartbeatsStream,
        description: "Orra service heartbeats: the last one per service and version",
        subjects: [this.heartbeatsFilter],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: this.replicas,
        max_msgs_per_subject: 1,
        duplicate_window: dup,
        allow_direct: true,
      },
      {
        name: this.workStream,
        description: "Orra work queue: tasks for services, one subject per service",
        subjects: [`${this.#prefix}work.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: this.replicas,
        duplicate_window: dup,
      },
      {
        name: this.webhooksStream,
        description: "Orra notifier: one webhook delivery job per orchestration and URL",
        subjects: [`${this.#prefix}notifier.>`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: this.replicas,
        duplicate_window: dup,
      },
      {
        name: this.dlqStream,
        description: "Orra dead letters: messages parked with their reason",
        subjects: [`${this.#prefix}dlq.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: this.replicas,
        max_age: 14 * 24 * 3600 * NANOS,
        discard: DiscardPolicy.Old,
        duplicate_window: dup,
      },
    ];
  }
}
