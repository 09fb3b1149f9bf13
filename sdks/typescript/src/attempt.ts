/**
 * The pieces of one task attempt that the worker (src/worker.ts) puts together: the work
 * message and its acknowledgements, the per-key lock, keep-alive bookkeeping, progress
 * updates, and calling a handler that may be interrupted through its abort signal.
 */
import type { Msg } from "@nats-io/nats-core";
import type { Bus } from "./bus.js";
import { deliveryOf } from "./bus.js";
import { taskProgress, type TaskDispatched } from "./events.js";
import { describeError } from "./errors.js";
import { log } from "./log.js";
import type { Claimed, ResultStore } from "./results.js";
import { toJson } from "./schema.js";
import type { ProgressOptions } from "./service.js";

/** A work message and the acknowledgements written to its `$JS.ACK` reply subject. */
export class WorkMessage {
  readonly msg: Msg;
  #final = false;
  readonly #publish: (subject: string, payload: string) => void;

  constructor(msg: Msg, publish: (subject: string, payload: string) => void) {
    this.msg = msg;
    this.#publish = publish;
  }

  get deliveries(): number {
    return deliveryOf(this.msg.reply)?.deliveries ?? 1;
  }

  #reply(payload: string, final: boolean): void {
    if (this.#final || !this.msg.reply) return;
    if (final) this.#final = true;
    this.#publish(this.msg.reply, payload);
  }

  ack(): void {
    this.#reply("+ACK", true);
  }

  nak(delayS?: number): void {
    this.#reply(delayS ? `-NAK ${JSON.stringify({ delay: Math.round(delayS * 1e9) })}` : "-NAK", true);
  }

  inProgress(): void {
    this.#reply("+WPI", false);
  }
}

/** One holder per key at a time; waiters are served in arrival order. */
export class KeyLocks {
  readonly #held = new Map<string, Array<() => void>>();

  async acquire(key: string): Promise<void> {
    const waiters = this.#held.get(key);
    if (waiters === undefined) {
      this.#held.set(key, []);
      return;
    }
    await new Promise<void>((resolve) => waiters.push(resolve));
  }

  release(key: string): void {
    const next = this.#held.get(key)?.shift();
    if (next !== undefined) next();
    else this.#held.delete(key);
  }
}

/** Keep-alive of one running handler: in-progress acks and claim renewals. */
export interface Beat {
  msg: WorkMessage;
  claim: Claimed;
  attempt: number;
  due: number;
  running: Promise<void> | undefined;
}

/** Why a running handler's signal was aborted. */
export type Interruption = { kind: "stop"; reason: string } | { kind: "shutdown" };

/** What became of a handler call. */
export type Outcome<T> =
  | { kind: "returned"; value: T }
  | { kind: "threw"; error: unknown }
  | { kind: "stopped"; reason: string }
  | { kind: "shutdown" };

/** Publishes a task attempt's `task.progress` events, numbered from 1. */
export class Progress {
  readonly #bus: Bus;
  readonly #event: TaskDispatched;
  #seq = 0;
  #pending: Array<Promise<unknown>> = [];

  constructor(bus: Bus, event: TaskDispatched) {
    this.#bus = bus;
    this.#event = event;
  }

  async publish(update: Record<string, unknown>, options: ProgressOptions = {}): Promise<void> {
    if (update === null || typeof update !== "object" || Array.isArray(update)) {
      throw new TypeError("a progress update is a JSON object, e.g. { step: 2 }");
    }
    this.#seq += 1;
    const published = this.#bus.publish(taskProgress(this.#event, this.#seq, toJson(update) as Record<string, unknown>));
    if (options.wait === false) {
      this.#pending.push(published.then(() => undefined, (error: unknown) => error));
      return;
    }
    await published;
  }

  /** Wait for the updates published without waiting; log those that failed. */
  async settle(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    for (const outcome of await Promise.all(pending)) {
      if (outcome !== undefined) {
        log.warning("progress update refused", { task_id: this.#event.task_id, error: describeError(outcome) });
      }
    }
  }
}

/** Call a handler; resolve when it settles or when its signal is aborted, whichever is first. */
export async function callHandler<T>(controller: AbortController, fn: () => Promise<T>): Promise<Outcome<T>> {
  const interrupted = new Promise<Outcome<T>>((resolve) => {
    const settle = (): void => {
      const why = controller.signal.reason as Interruption;
      resolve(why.kind === "stop" ? { kind: "stopped", reason: why.reason } : { kind: "shutdown" });
    };
    if (controller.signal.aborted) settle();
    else controller.signal.addEventListener("abort", settle, { once: true });
  });
  const called = Promise.resolve()
    .then(fn)
    .then(
      (value): Outcome<T> => ({ kind: "returned", value }),
      (error: unknown): Outcome<T> => ({ kind: "threw", error }),
    );
  return await Promise.race([called, interrupted]);
}


/** Whether `promise` settled within `ms` (the timer does not outlive it). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Keep-alives of running handlers: an in-progress ack and a claim renewal every
 * `everyS` (a third of the ack wait), fired by the worker's ticker, not a timer per task.
 */
export class KeepAlive {
  readonly #store: ResultStore;
  readonly #everyS: number;
  readonly #leaseS: number;
  readonly #beats = new Map<number, Beat>();
  #ids = 0;

  constructor(store: ResultStore, everyS: number, leaseS: number) {
    this.#store = store;
    this.#everyS = everyS;
    this.#leaseS = leaseS;
  }

  /** Keep a running handler's message in progress and its claim alive; returns its id. */
  watch(msg: WorkMessage, claim: Claimed, attempt: number): number {
    this.#ids += 1;
    this.#beats.set(this.#ids, { msg, claim, attempt, due: Date.now() + this.#everyS * 1000, running: undefined });
    return this.#ids;
  }

  /** Stop the keep-alives of a handler that returned (after a beat in flight). */
  async unwatch(id: number): Promise<void> {
    const beat = this.#beats.get(id);
    this.#beats.delete(id);
    if (beat?.running !== undefined) await beat.running;
  }

  /** Fire the beats that are due (called by the worker's ticker). */
  due(): void {
    const nowMs = Date.now();
    for (const beat of this.#beats.values()) {
      if (beat.due <= nowMs && beat.running === undefined) {
        beat.due = nowMs + this.#everyS * 1000;
        beat.running = this.#beat(beat).finally(() => {
          beat.running = undefined;
        });
      }
    }
  }

  async #beat(beat: Beat): Promise<void> {
    try {
      beat.msg.inProgress();
      if (!(await this.#store.renew(beat.claim, beat.attempt, this.#leaseS))) {
        log.warning("claim taken over by another instance", { key: beat.claim.key });
      }
    } catch (error) {
      log.warning("keep-alive failed", { key: beat.claim.key, error: describeError(error) });
    }
  }
}
