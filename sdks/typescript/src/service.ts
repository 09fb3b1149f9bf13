/**
 * Declaring a service or agent: its name, description, schemas and handlers (the Python
 * SDK's `orra_sdk.service`).
 */
import { ServiceDefinitionError } from "./errors.js";
import { definitionHash, exampleProblems, normaliseExamples } from "./registrations.js";
import { compileSchema, type Accepted, type Parsed, type SchemaSpec, type Validator } from "./schema.js";
import { checkName } from "./topology.js";
import { canonicalVersion } from "./versions.js";

/** Options of {@link Task.progress}. */
export interface ProgressOptions {
  /**
   * `true` (the default): return once the `task.progress` event is stored. `false`: return
   * at once; the update is published ahead of the task's result and its acknowledgement is
   * awaited with the result's (a failure to store it is logged, not thrown).
   */
  wait?: boolean;
}

/** One task given to a handler. */
export interface Task<In> {
  /** The task's input, validated against the service's input schema. */
  readonly input: In;
  /** The orchestration the task belongs to. */
  readonly orchestrationId: string;
  /** The task's id within its plan (`"payment"`). */
  readonly taskId: string;
  /** The service that runs it. */
  readonly service: string;
  /** Dispatch attempt, 1 for the first; a retry by the dispatcher increments it. */
  readonly attempt: number;
  /**
   * `<orchestration id>:<task id>`, stable across attempts: pass it to the systems you call
   * so that their side effects are idempotent too.
   */
  readonly idempotencyKey: string;
  /** How many times the broker delivered this attempt (1 unless a replica died running it). */
  readonly deliveries: number;
  /** The dispatcher's timeout for this attempt, in seconds. */
  readonly timeoutS: number;
  /**
   * Aborted when the task must stop: its orchestration was aborted, failed or is being
   * compensated, or the process is shutting down past its drain timeout. The SDK then
   * reports the task without waiting for the handler, and ignores what it returns later;
   * pass the signal to `fetch` and other calls that take one.
   */
  readonly signal: AbortSignal;
  /**
   * Report an interim update (a `task.progress` event), e.g. `{ step: 2 }`; shown by
   * `orra inspect` and streamed to SSE clients. It does not change the task's output.
   */
  progress(update: Record<string, unknown>, options?: ProgressOptions): Promise<void>;
}

/** A completed task to undo, given to a revert handler (compensation). */
export interface RevertTask<In, Out> {
  /** The task's original input. */
  readonly input: In;
  /** What the task returned. */
  readonly output: Out;
  /** Why the orchestration is compensated (its failure or abort reason). */
  readonly reason: string;
  readonly orchestrationId: string;
  readonly taskId: string;
  readonly service: string;
  /** Compensation attempt, 1 for the first. */
  readonly attempt: number;
  /** `<orchestration id>:<task id>:revert`, stable across attempts. */
  readonly idempotencyKey: string;
  /** The dispatcher's timeout for this attempt, in seconds. */
  readonly timeoutS: number;
  /** Aborted when the process shuts down past its drain timeout. */
  readonly signal: AbortSignal;
}

/** An async function that runs one task and returns its output. */
export type Handler<In, Out> = (task: Task<In>) => Promise<Out>;

/** An async function that undoes one completed task (compensation). */
export type RevertHandler<In, Out> = (task: RevertTask<In, Out>) => Promise<void>;

/** How a service is declared. */
export interface ServiceOptions<I extends SchemaSpec, O extends SchemaSpec> {
  /** Unique service name; one subject token (letters, digits, `_`, `-`). */
  name: string;
  /** What the service does, in words the planner matches actions against. */
  description: string;
  /** Schema of a task's input: a zod 4 (Standard Schema) schema, or a JSON Schema. */
  input: I;
  /** Schema of a task's output: a zod 4 (Standard Schema) schema, or a JSON Schema. */
  output: O;
  /** Whether the service's effects can be undone; give the revert handler with {@link Service.revert}. */
  revertible?: boolean;
  /**
   * Version of the service's definition: dotted numbers (`"1"`, `"2"`, `"1.4.2"`). One name
   * and version has one definition (description, examples, schemas, revertible, kind): to
   * change any of them, raise the version; a higher version replaces a lower one for new
   * plans, and tasks already planned keep the version they were planned against.
   */
  version?: string;
  /**
   * Up to 20 short phrases of what the service does, in its users' words
   * (`["charge the card", "take the money for an order"]`): they teach the planner the
   * words your users use for it.
   */
  examples?: readonly string[];
  /** `"service"` or `"agent"`. */
  kind?: "service" | "agent";
  /** Tasks this process runs at once for this service; the client's default when unset. */
  concurrency?: number;
}

/**
 * A service or agent that Orra can plan tasks for.
 *
 * @example
 * const payment = new Service({
 *   name: "PaymentService",
 *   description: "Charge the payment of an order",
 *   input: z.object({ orderId: z.string(), amount: z.number() }),
 *   output: z.object({ transactionId: z.string() }),
 *   revertible: true,
 * });
 * payment.handler(async (task) => ({ transactionId: `TX-${task.input.orderId}` }));
 * payment.revert(async (task) => { await bank.refund(task.output.transactionId); });
 */
export class Service<I extends SchemaSpec = SchemaSpec, O extends SchemaSpec = SchemaSpec> {
  readonly name: string;
  readonly description: string;
  readonly revertible: boolean;
  readonly version: string;
  readonly kind: "service" | "agent";
  readonly concurrency: number | undefined;
  /** The example phrases, spacing normalised. */
  readonly examples: readonly string[];
  /** The registered JSON Schema of inputs. */
  readonly inputSchema: Record<string, unknown>;
  /** The registered JSON Schema of outputs. */
  readonly outputSchema: Record<string, unknown>;
  /** Hash of the definition; a changed definition registers again (`reg:<name>:<hash>`). */
  readonly schemaHash: string;
  /** Validates task inputs (and the recorded input of a task to revert). */
  readonly inputValidator: Validator<Parsed<I>>;
  /** Validates handler outputs (and the recorded output of a task to revert). */
  readonly outputValidator: Validator<Parsed<O>>;
  #handler: Handler<Parsed<I>, Accepted<O>> | undefined;
  #revert: RevertHandler<Parsed<I>, Parsed<O>> | undefined;

  /**
   * @throws {ServiceDefinitionError} the name is not one token, the version not dotted
   *   numbers, an example phrase malformed (each problem named), a schema unusable, or
   *   concurrency < 1.
   */
  constructor(options: ServiceOptions<I, O>) {
    const { name, description } = options;
    let version: string;
    try {
      checkName("service name", name);
      version = canonicalVersion(options.version ?? "1");
    } catch (error) {
      throw new ServiceDefinitionError(`${name}: ${(error as Error).message}`);
    }
    const problems = exampleProblems(options.examples ?? []);
    if (problems.length) throw new ServiceDefinitionError(`${name}: ${problems.join("; ")}`);
    const kind = options.kind ?? "service";
    if (kind !== "service" && kind !== "agent") {
      throw new ServiceDefinitionError(`${name}: kind must be "service" or "agent", got ${String(kind)}`);
    }
    if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency >= 1)) {
      throw new ServiceDefinitionError(`${name}: concurrency must be at least 1`);
    }
    this.name = name;
    this.description = description;
    this.revertible = options.revertible ?? false;
    this.version = version;
    this.examples = normaliseExamples(options.examples ?? []);
    this.kind = kind;
    this.concurrency = options.concurrency;
    this.inputValidator = compileSchema<Parsed<I>>(options.input, "input", `${name}: input`);
    this.outputValidator = compileSchema<Parsed<O>>(options.output, "output", `${name}: output`);
    this.inputSchema = this.inputValidator.jsonSchema;
    this.outputSchema = this.outputValidator.jsonSchema;
    this.schemaHash = definitionHash({
      name,
      description,
      input_schema: this.inputSchema,
      output_schema: this.outputSchema,
      revertible: this.revertible,
      version,
      kind,
      examples: this.examples,
    });
  }

  /** Set the service's handler; returns it unchanged. */
  handler(fn: Handler<Parsed<I>, Accepted<O>>): Handler<Parsed<I>, Accepted<O>> {
    this.#handler = fn;
    return fn;
  }

  /**
   * Set the revert (compensation) handler; returns it unchanged.
   *
   * When an orchestration fails or is aborted, Orra calls it for every task of this service
   * that completed, in reverse order of completion, with the task's input, output and the
   * reason. Throw to fail the attempt (retried with backoff; {@link NonRetryableError}
   * gives up at once).
   *
   * @throws {ServiceDefinitionError} the service was not declared `revertible: true`.
   */
  revert(fn: RevertHandler<Parsed<I>, Parsed<O>>): RevertHandler<Parsed<I>, Parsed<O>> {
    if (!this.revertible) {
      throw new ServiceDefinitionError(
        `${this.name} is not revertible: declare it with new Service({..., revertible: true})`,
      );
    }
    this.#revert = fn;
    return fn;
  }

  /** The revert handler, if one was set. */
  get reverter(): RevertHandler<Parsed<I>, Parsed<O>> | undefined {
    return this.#revert;
  }

  /** The handler; throws {@link ServiceDefinitionError} when none was set. */
  get handle(): Handler<Parsed<I>, Accepted<O>> {
    if (this.#handler === undefined) {
      throw new ServiceDefinitionError(`${this.name} has no handler: set one with service.handler(async (task) => ...)`);
    }
    return this.#handler;
  }

  toString(): string {
    return `Service(name='${this.name}', version='${this.version}', hash=${this.schemaHash})`;
  }
}

/** Any service, whatever its schemas. */
export type AnyService = Service<any, any>;
