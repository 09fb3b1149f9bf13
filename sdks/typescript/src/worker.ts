/**
 * Runs one service's tasks: pulls `work.<service>`, validates, calls the handler, reports
 * (the Python SDK's `orra_sdk._worker`, behaviour for behaviour).
 *
 * The work stream is read through the durable pull consumer `svc_<service>` that every
 * replica shares, Python and Node alike, asking only for as many messages as the worker has
 * free slots (src/pull.ts); the pieces of one attempt are in src/attempt.ts.
 *
 * The work subject carries two kinds of message: `task.dispatched` runs the handler;
 * `task.compensating` runs the revert handler, with the same idempotency record (key
 * `<orch>:<task>:revert`), keep-alives and reporting (`task.compensated` /
 * `task.compensation_failed`). A message that is neither, or that cannot be decoded, or
 * that names another service, is parked on `dlq.work.<service>` with its reason.
 *
 * Reporting: the idempotency record (the result, or the release of the claim after a
 * failure) and the result event are written together and awaited together; the work
 * message is acked once both are stored. Running handlers are kept alive by the worker's
 * ticker (in-progress acks and claim renewals every third of the ack wait).
 *
 * Stopping: {@link ServiceWorker.stopOrchestration} (the client calls it on
 * `orchestration.aborted`, `orchestration.failed` or `orchestration.compensating`) aborts
 * the running handlers of that orchestration (`task.signal`): each reports `task.failed`
 * (not retryable, `stopped: <reason>`) without waiting for its handler; a task of that
 * orchestration received later is answered the same way without running. Revert handlers
 * are never stopped.
 */
import type { Msg } from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import {
  type Interruption,
  KeepAlive,
  KeyLocks,
  type Outcome,
  Progress,
  WorkMessage,
  callHandler,
  within,
} from "./attempt.js";
import type { Bus } from "./bus.js";
import { Puller } from "./pull.js";
import { Reporter } from "./report.js";
import { kvKey } from "./canonical.js";
import { decode } from "./codec.js";
import {
  now,
  taskAborted,
  taskCompensated,
  taskCompensationFailed,
  taskCompleted,
  taskFailed,
  type TaskCompensating,
  type TaskDispatched,
  type TaskResult,
} from "./events.js";
import { AbortOrchestration, DecodeError, NonRetryableError, describeError } from "./errors.js";
import { log, withLogContext } from "./log.js";
import { addInFlight, observeHandler, prepareMetrics } from "./metrics.js";
import { pyRepr } from "./pyrepr.js";
import { type Busy, type Claimed, type Done, type ResultStore, recordOf } from "./results.js";
import { toJson } from "./schema.js";
import type { AnyService, RevertTask, Task } from "./service.js";

const STOPPED_MEMORY = 10_000;
/** Hand-back delay of a task of another version, per delivery, and its cap (seconds). */
const HAND_BACK_S = 0.2;
const HAND_BACK_MAX_S = 2.0;


/** How a worker is tuned (the client's settings). */
export interface WorkerOptions {
  concurrency: number;
  ackWaitS: number;
  pullExpiresS: number;
  maxDeliveries: number;
}

/** Pulls and runs the tasks of one service in this process. */
export class ServiceWorker {
  readonly bus: Bus;
  readonly service: AnyService;
  readonly store: ResultStore;
  readonly options: WorkerOptions;
  readonly durable: string;
  readonly subject: string;
  readonly #progressEveryS: number;
  readonly #leaseS: number;
  readonly #reporter: Reporter;
  #inflight = 0;
  readonly #tasks = new Set<Promise<void>>();
  readonly #locks = new KeyLocks();
  readonly #beats: KeepAlive;
  #stopping = false;
  #shuttingDown = false;
  #puller: Puller | undefined;
  #ticker: NodeJS.Timeout | undefined;
  /** Running attempts by orchestration: their abort controllers. */
  readonly #running = new Map<string, Set<AbortController>>();
  readonly #controllers = new Set<AbortController>();
  /** Orchestrations told to stop, and why (the latest ones). */
  readonly #stopped = new Map<string, string>();

  constructor(bus: Bus, service: AnyService, store: ResultStore, options: WorkerOptions) {
    this.bus = bus;
    this.service = service;
    this.store = store;
    this.options = options;
    this.durable = bus.topology.consumer(`svc_${service.name}`);
    this.subject = bus.topology.work(service.name);
    this.#progressEveryS = options.ackWaitS / 3;
    this.#leaseS = Math.max(options.ackWaitS * 2, 2);
    this.#beats = new KeepAlive(store, this.#progressEveryS, this.#leaseS);
    this.#reporter = new Reporter(bus, store, {
      progressEveryS: this.#progressEveryS,
      leaseS: this.#leaseS,
      stopping: () => this.#stopping,
    });
  }

  /** Tasks received and not finished yet. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Whether the worker is bound to its consumer and takes tasks (started, not stopping). */
  get bound(): boolean {
    return this.#puller?.bound === true && !this.#stopping;
  }

  /** Create (or update) the shared consumer and start pulling. */
  async start(): Promise<void> {
    const stream = this.bus.topology.workStream;
    const config = {
      durable_name: this.durable,
      description: `Orra SDK: replicas of ${this.service.name}`,
      ack_policy: "explicit" as const,
      deliver_policy: "all" as const,
      ack_wait: Math.round(this.options.ackWaitS * 1e9),
      max_deliver: -1,
      max_ack_pending: 100_000,
      max_waiting: 4096,
      filter_subject: this.subject,
    };
    try {
      await this.bus.jsm.consumers.add(stream, config);
    } catch (error) {
      if (!(error instanceof JetStreamApiError)) throw error;
      // It exists with other settings (another version, a Python replica's ack wait): update.
      const { durable_name: _name, ...changes } = config;
      await this.bus.jsm.consumers.update(stream, this.durable, changes);
    }
    prepareMetrics(this.service.name, this.service.revertible);
    this.#puller = new Puller(
      this.bus,
      { stream, durable: this.durable, service: this.service.name },
      this.options,
      { inflight: () => this.#inflight, onTask: (msg) => this.#onTask(msg) },
    );
    this.#puller.start();
    const interval = Math.min(1, this.#progressEveryS / 2);
    this.#ticker = setInterval(() => this.#tick(), interval * 1000);
  }

  /** A message of the consumer: run it, or hand it back while stopping. */
  #onTask(msg: Msg): void {
    const work = new WorkMessage(msg, (subject, payload) => this.bus.nc.publish(subject, payload));
    if (this.#stopping) {
      work.nak();
      return;
    }
    this.#inflight += 1;
    addInFlight(this.service.name, 1);
    const task = this.#process(work);
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }

  #tick(): void {
    this.#beats.due();
    if (!this.#stopping) this.#puller?.tick();
  }

  // --- stop signals ----------------------------------------------------------------------

  /** Stop this worker's running handlers of an orchestration; return how many. */
  stopOrchestration(orchestrationId: string, reason: string): number {
    this.#stopped.delete(orchestrationId);
    this.#stopped.set(orchestrationId, reason);
    if (this.#stopped.size > STOPPED_MEMORY) {
      const oldest = this.#stopped.keys().next().value;
      if (oldest !== undefined) this.#stopped.delete(oldest);
    }
    const running = [...(this.#running.get(orchestrationId) ?? [])].filter((c) => !c.signal.aborted);
    for (const controller of running) controller.abort({ kind: "stop", reason } satisfies Interruption);
    if (running.length) {
      log.info("stopping running tasks", {
        service: this.service.name,
        orchestration_id: orchestrationId,
        count: running.length,
        reason,
      });
    }
    return running.length;
  }

  // --- running a task --------------------------------------------------------------------

  async #process(msg: WorkMessage): Promise<void> {
    try {
      const event = await this.#decode(msg);
      if (event === undefined) return;
      const context = {
        orchestration_id: event.orchestration_id,
        task_id: event.task_id,
        service: this.service.name,
        attempt: event.attempt,
      };
      await withLogContext(context, async () => {
        const work = await this.#accept(msg, event);
        if (work === undefined) return;
        // One run per idempotency key in this process; other processes are kept out by
        // the claim in the result store.
        const [key, run] = work;
        await this.#locks.acquire(key);
        try {
          if (this.#shuttingDown) msg.nak();
          else await run();
        } finally {
          this.#locks.release(key);
        }
      });
    } catch (error) {
      log.error("task processing failed; redelivering", { service: this.service.name, error: describeError(error) });
      try {
        msg.nak(1.0);
      } catch {
        // the connection is gone: the broker redelivers after the ack wait
      }
    } finally {
      this.#inflight -= 1;
      addInFlight(this.service.name, -1);
      if (!this.#stopping) this.#puller?.pull();
    }
  }

  /** The task of a work message; `undefined` (the message parked) when it is none. */
  async #decode(msg: WorkMessage): Promise<TaskDispatched | TaskCompensating | undefined> {
    let event;
    try {
      event = decode(msg.msg.data);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      await this.bus.park(msg.msg, `${error.name}: ${error.message}`);
      return undefined;
    }
    if (event.type !== "task.dispatched" && event.type !== "task.compensating") {
      await this.bus.park(msg.msg, `${event.type} is not a task for a service`);
      return undefined;
    }
    return event;
  }

  /** Check a task; return the run to do under its key's lock. */
  async #accept(
    msg: WorkMessage,
    event: TaskDispatched | TaskCompensating,
  ): Promise<[string, () => Promise<void>] | undefined> {
    if (event.service !== this.service.name) {
      await this.bus.park(msg.msg, `task for service ${pyRepr(event.service)} arrived on ${this.subject}`);
      return undefined;
    }
    const deliveries = msg.deliveries;
    if (event.version !== undefined && event.version !== null && event.version !== this.service.version) {
      // Planned against another version (a rolling upgrade): a replica of that version runs
      // it. Handed back after a short delay, growing with each hand-back.
      msg.nak(Math.min(HAND_BACK_S * deliveries, HAND_BACK_MAX_S));
      log.debug("task of another version handed back", {
        task_version: event.version,
        version: this.service.version,
        deliveries,
      });
      return undefined;
    }
    if (event.type === "task.compensating") {
      return [event.idempotency_key, () => this.#revert(msg, event, deliveries)];
    }
    const stopped = this.#stopped.get(event.orchestration_id);
    if (stopped !== undefined) {
      await this.#fail(msg, event, now(), performance.now(), `stopped: ${stopped}`, false);
      return undefined;
    }
    if (deliveries > this.options.maxDeliveries && (await this.#ranBefore(event))) {
      await this.#fail(
        msg,
        event,
        now(),
        performance.now(),
        `${this.service.name} was delivered this task ${deliveries} times without finishing it ` +
          "(the service crashed or hung each time)",
        false,
      );
      return undefined;
    }
    return [event.idempotency_key, () => this.#run(msg, event, deliveries)];
  }

  /**
   * Whether an earlier delivery of this attempt started the handler (and never ended).
   * Deliveries also count hand-backs (a replica of another version, a stopping replica),
   * which ran nothing; only a claim of this attempt left behind shows that the handler ran
   * and its process died or hung. Read only past `maxDeliveries`.
   */
  async #ranBefore(event: TaskDispatched): Promise<boolean> {
    const entry = await this.store.kv.get(kvKey(this.service.name, event.idempotency_key));
    if (entry === null || entry.operation !== "PUT") return false;
    const record = recordOf(entry.value);
    return record !== undefined && record.state === "running" && record.attempt === event.attempt;
  }

  async #run(msg: WorkMessage, event: TaskDispatched, deliveries: number): Promise<void> {
    const service = this.service;
    const startedAt = now();
    const t0 = performance.now();
    const input = await service.inputValidator.validate(event.input);
    if (!input.ok) {
      await this.#fail(msg, event, startedAt, t0, `invalid input for ${service.name}: ${input.error}`, false);
      return;
    }
    const key = kvKey(service.name, event.idempotency_key);
    const claim = await this.#claim(msg, key, event.attempt);
    if (claim.kind === "done") {
      log.info("replaying recorded result", {
        service: service.name,
        idempotency_key: event.idempotency_key,
        attempt: event.attempt,
      });
      const record = claim.record;
      await this.#report(
        msg,
        taskCompleted(event, service.name, record.output ?? {}, { startedAt: record.started_at, durationMs: record.duration_ms }, true),
      );
      return;
    }
    if (claim.kind === "busy") {
      // Another instance runs this key and this worker is stopping: hand it back.
      msg.nak(claim.retryAfterS);
      return;
    }
    const progress = new Progress(this.bus, event);
    const controller = new AbortController();
    const task: Task<unknown> = {
      input: input.value,
      orchestrationId: event.orchestration_id,
      taskId: event.task_id,
      service: service.name,
      attempt: event.attempt,
      idempotencyKey: event.idempotency_key,
      deliveries,
      timeoutS: event.timeout_s,
      signal: controller.signal,
      progress: (update, options) => progress.publish(update, options),
    };
    const beat = this.#beats.watch(msg, claim, event.attempt);
    const running = this.#running.get(event.orchestration_id) ?? new Set<AbortController>();
    this.#running.set(event.orchestration_id, running);
    running.add(controller);
    this.#controllers.add(controller);
    const h0 = performance.now();
    let outcome: Outcome<unknown>;
    try {
      outcome = await callHandler(controller, () => service.handle(task));
    } finally {
      running.delete(controller);
      if (running.size === 0) this.#running.delete(event.orchestration_id);
      this.#controllers.delete(controller);
    }
    let error: string | undefined;
    let retryable = true;
    let output: Record<string, unknown> = {};
    switch (outcome.kind) {
      case "shutdown":
        await this.#beats.unwatch(beat);
        await this.#abandon(msg, claim);
        return;
      case "stopped":
        // Told to stop: the orchestration ended or is being compensated.
        error = `stopped: ${outcome.reason}`;
        retryable = false;
        break;
      case "threw":
        if (outcome.error instanceof AbortOrchestration) {
          observeHandler(service.name, "aborted", (performance.now() - h0) / 1000);
          await this.#beats.unwatch(beat);
          await this.#abort(msg, event, startedAt, t0, outcome.error, claim, progress);
          return;
        }
        if (outcome.error instanceof NonRetryableError) {
          retryable = false;
        } else {
          log.warning("handler raised", { service: service.name, task_id: event.task_id, error: describeError(outcome.error) });
        }
        error = describeError(outcome.error);
        break;
      case "returned": {
        const validated = await service.outputValidator.validate(outcome.value);
        if (validated.ok) {
          output = toJson(validated.value) as Record<string, unknown>;
        } else {
          error = `invalid output from ${service.name}: ${validated.error}`;
          retryable = false;
        }
        break;
      }
    }
    observeHandler(service.name, error !== undefined ? "failed" : "completed", (performance.now() - h0) / 1000);
    await this.#beats.unwatch(beat);
    const durationMs = performance.now() - t0;
    if (error !== undefined) {
      await this.#fail(msg, event, startedAt, t0, error, retryable, claim, progress);
      return;
    }
    await this.#report(
      msg,
      taskCompleted(event, service.name, output, { startedAt, durationMs }, false),
      () => this.store.complete(claim, { output, attempt: event.attempt, startedAt, durationMs }),
      progress,
      claim,
    );
  }

  /** Run the revert handler of a completed task (one compensation attempt). */
  async #revert(msg: WorkMessage, event: TaskCompensating, deliveries: number): Promise<void> {
    const service = this.service;
    const startedAt = now();
    const t0 = performance.now();
    const reverter = service.reverter;
    if (reverter === undefined) {
      const hint = `${service.name} has no revert handler: set one with service.revert(async (task) => ...)`;
      await this.#compFailed(msg, event, startedAt, t0, hint, false);
      return;
    }
    if (deliveries > this.options.maxDeliveries) {
      await this.#compFailed(
        msg,
        event,
        startedAt,
        t0,
        `${service.name} was delivered this compensation ${deliveries} times without finishing it`,
        false,
      );
      return;
    }
    const input = await service.inputValidator.validate(event.input);
    const output = input.ok ? await service.outputValidator.validate(event.output) : undefined;
    if (!input.ok || output === undefined || !output.ok) {
      const problem = !input.ok ? input.error : output !== undefined && !output.ok ? output.error : "";
      await this.#compFailed(
        msg,
        event,
        startedAt,
        t0,
        `cannot revert: the task's input or output no longer matches ${service.name}'s schema: ${problem}`,
        false,
      );
      return;
    }
    const key = kvKey(service.name, event.idempotency_key);
    const claim = await this.#claim(msg, key, event.attempt);
    if (claim.kind === "done") {
      const record = claim.record;
      await this.#report(msg, taskCompensated(event, service.name, { startedAt: record.started_at, durationMs: record.duration_ms }));
      return;
    }
    if (claim.kind === "busy") {
      msg.nak(claim.retryAfterS);
      return;
    }
    const controller = new AbortController();
    const task: RevertTask<unknown, unknown> = {
      input: input.value,
      output: output.value,
      reason: event.reason,
      orchestrationId: event.orchestration_id,
      taskId: event.task_id,
      service: service.name,
      attempt: event.attempt,
      idempotencyKey: event.idempotency_key,
      timeoutS: event.timeout_s,
      signal: controller.signal,
    };
    const beat = this.#beats.watch(msg, claim, event.attempt);
    this.#controllers.add(controller);
    const h0 = performance.now();
    let outcome: Outcome<void>;
    try {
      outcome = await callHandler(controller, () => reverter(task));
    } finally {
      this.#controllers.delete(controller);
    }
    if (outcome.kind === "shutdown" || outcome.kind === "stopped") {
      await this.#beats.unwatch(beat);
      await this.#abandon(msg, claim);
      return;
    }
    let error: string | undefined;
    let retryable = true;
    if (outcome.kind === "threw") {
      if (outcome.error instanceof NonRetryableError) retryable = false;
      else log.warning("revert handler raised", { service: service.name, task_id: event.task_id, error: describeError(outcome.error) });
      error = describeError(outcome.error);
    }
    observeHandler(service.name, error !== undefined ? "compensation_failed" : "compensated", (performance.now() - h0) / 1000);
    await this.#beats.unwatch(beat);
    const durationMs = performance.now() - t0;
    if (error !== undefined) {
      await this.#compFailed(msg, event, startedAt, t0, error, retryable, claim);
      return;
    }
    await this.#report(
      msg,
      taskCompensated(event, service.name, { startedAt, durationMs }),
      () => this.store.complete(claim, { output: {}, attempt: event.attempt, startedAt, durationMs }),
      undefined,
      claim,
    );
  }

  async #compFailed(
    msg: WorkMessage,
    event: TaskCompensating,
    startedAt: number,
    t0: number,
    error: string,
    retryable: boolean,
    release?: Claimed,
  ): Promise<void> {
    const result = taskCompensationFailed(event, this.service.name, error, { startedAt, durationMs: performance.now() - t0 }, retryable);
    await this.#report(msg, result, release ? () => this.store.release(release) : undefined, undefined, release);
  }

  async #abort(
    msg: WorkMessage,
    event: TaskDispatched,
    startedAt: number,
    t0: number,
    error: AbortOrchestration,
    release: Claimed,
    progress: Progress,
  ): Promise<void> {
    log.info("handler aborted the orchestration", {
      service: this.service.name,
      orchestration_id: event.orchestration_id,
      task_id: event.task_id,
      reason: error.reason,
    });
    const payload = error.payload === null ? null : (toJson(error.payload) as Record<string, unknown>);
    const result = taskAborted(event, this.service.name, error.reason, payload, { startedAt, durationMs: performance.now() - t0 });
    await this.#report(msg, result, () => this.store.release(release), progress, release);
  }

  /**
   * Claim `key`; while another instance holds it, wait here instead of a nak.
   *
   * A nak counts as one more delivery, so a task whose holder was killed (its claim lives
   * until the lease ends) would reach `maxDeliveries` in a few polls. Waiting keeps the
   * message in progress and polls the claim until the holder records its result (then it
   * is replayed) or its lease ends (then this instance takes over). `busy` is returned
   * only when the worker is stopping.
   */
  async #claim(msg: WorkMessage, key: string, attempt: number): Promise<Claimed | Done | Busy> {
    let beat = Date.now();
    for (;;) {
      const claim = await this.store.claim(key, attempt, this.#leaseS);
      if (claim.kind !== "busy" || this.#stopping) return claim;
      await new Promise((resolve) => setTimeout(resolve, claim.retryAfterS * 1000));
      if (Date.now() - beat >= this.#progressEveryS * 1000) {
        beat = Date.now();
        msg.inProgress();
      }
    }
  }

  /** The worker stops mid-task: free the key and hand the message to another replica. */
  async #abandon(msg: WorkMessage, claim: Claimed): Promise<void> {
    // Best effort and bounded: without a broker the claim simply runs out.
    if (this.bus.connected) await within(this.store.release(claim).catch(() => undefined), 2000);
    msg.nak();
  }

  // --- reporting -------------------------------------------------------------------------

  async #fail(
    msg: WorkMessage,
    event: TaskDispatched,
    startedAt: number,
    t0: number,
    error: string,
    retryable: boolean,
    release?: Claimed,
    progress?: Progress,
  ): Promise<void> {
    const result = taskFailed(event, this.service.name, error, { startedAt, durationMs: performance.now() - t0 }, retryable);
    await this.#report(msg, result, release ? () => this.store.release(release) : undefined, progress, release);
  }

  #report(msg: WorkMessage, result: TaskResult, record?: () => Promise<void>, progress?: Progress, claim?: Claimed): Promise<void> {
    return this.#reporter.report(msg, result, record, progress, claim);
  }

  // --- stopping --------------------------------------------------------------------------

  /** Stop pulling, let running tasks finish for `drainTimeoutS`, abandon the rest. */
  async stop(drainTimeoutS: number): Promise<void> {
    this.#stopping = true;
    // Drop the inbox first: a task abandoned below goes to another replica, not to us.
    await this.#puller?.stop();
    if (this.#tasks.size) {
      // Results need the broker: while it is unreachable, running tasks are not waited for
      // beyond a moment (they are redelivered once it is back).
      const drained = await this.bus.waitWhileReachable(Promise.allSettled([...this.#tasks]), drainTimeoutS, "running tasks");
      if (!drained) {
        this.#shuttingDown = true;
        log.warning("abandoned running tasks", { service: this.service.name, count: this.#tasks.size });
        for (const controller of this.#controllers) controller.abort({ kind: "shutdown" } satisfies Interruption);
        // Bounded: a write may hang while the broker is away.
        await this.bus.waitWhileReachable(Promise.allSettled([...this.#tasks]), Math.max(drainTimeoutS, 1), "abandoned tasks");
      }
    }
    if (this.#ticker !== undefined) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
  }
}
