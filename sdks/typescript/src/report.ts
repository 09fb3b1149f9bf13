/**
 * Reporting a task's result (the worker's last step): the idempotency record's write and
 * the result event, stored together, then the work message acked; kept and sent again
 * while the broker is away (as `orra_sdk._worker` does since the broker-outage work).
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import type { Progress, WorkMessage } from "./attempt.js";
import type { Bus } from "./bus.js";
import { describeError } from "./errors.js";
import type { TaskResult } from "./events.js";
import { log } from "./log.js";
import { countResult, observeResult } from "./metrics.js";
import { type Claimed, type ResultStore, isConflict } from "./results.js";

/** Backoff between two tries of recording a result the broker did not store (seconds). */
const RETRY_FIRST_S = 0.2;
const RETRY_MAX_S = 5.0;

/** Stores a worker's results. */
export class Reporter {
  readonly #bus: Bus;
  readonly #store: ResultStore;
  readonly #progressEveryS: number;
  readonly #leaseS: number;
  readonly #stopping: () => boolean;

  constructor(bus: Bus, store: ResultStore, options: { progressEveryS: number; leaseS: number; stopping: () => boolean }) {
    this.#bus = bus;
    this.#store = store;
    this.#progressEveryS = options.progressEveryS;
    this.#leaseS = options.leaseS;
    this.#stopping = options.stopping;
  }

  /**
   * Store the result event, with the idempotency record's write, then ack the task.
   *
   * Both writes go out together and are awaited together (one round trip): the record
   * (the result, or the release of the claim after a failure) and the event. The work
   * message is acked only once both are stored, so a crash in between redelivers the task;
   * the record then replays the result, or, if the crash came before the record was
   * stored, the handler runs again (the documented window, docs/guarantees.md). Progress
   * updates published without waiting are awaited here too.
   *
   * A broker that does not answer (an outage, a restart) never makes the worker drop a
   * result: it keeps it and sends both writes again, with backoff, until the broker stores
   * them, keeping the message in progress and `claim` alive meanwhile, so no other delivery
   * runs the handler again. Only a worker that stops while the broker is unreachable gives
   * up (the process is going away). A write the broker refuses for good is thrown.
   */
  async report(
    msg: WorkMessage,
    result: TaskResult,
    record?: () => Promise<void>,
    progress?: Progress,
    claim?: Claimed,
  ): Promise<void> {
    observeResult(result);
    let delayS = RETRY_FIRST_S;
    let attempts = 0;
    let keptAlive = Date.now();
    for (;;) {
      attempts += 1;
      const epoch = this.#bus.reconnects;
      const failure = await this.#sendResult(result, record);
      if (failure === undefined) break;
      if (this.#stopping() && !this.#bus.connected) {
        log.error(
          "result not recorded: the service is stopping while the broker is unreachable; " +
            "the task will run again when it is redelivered",
          { event_id: result.event_id, error: failure },
        );
        return;
      }
      if (attempts === 1 || attempts % 10 === 0) {
        log.warning("result not recorded yet; keeping it and trying again", { event_id: result.event_id, attempts, error: failure });
      }
      // Back at once when the connection came back (the broker restarted), so that the
      // result is recorded (and the claim renewed) before another delivery could take over.
      if (this.#bus.reconnects === epoch) {
        await this.#pause(delayS, epoch);
        delayS = Math.min(delayS * 2, RETRY_MAX_S);
      }
      if (this.#bus.reconnects !== epoch || Date.now() - keptAlive >= this.#progressEveryS * 1000) {
        keptAlive = Date.now();
        await this.#keepClaim(msg, claim, result.attempt);
      }
    }
    if (progress !== undefined) await progress.settle();
    if (attempts > 1) log.info("result recorded", { event_id: result.event_id, attempts });
    msg.ack();
    countResult(result);
  }

  /** Send the record's write and the result event once; `undefined` once both are stored, else why not. */
  async #sendResult(result: TaskResult, record?: () => Promise<void>): Promise<string | undefined> {
    const writes: Array<Promise<unknown>> = [record ? record() : Promise.resolve(), this.#bus.publish(result)];
    for (const outcome of await Promise.allSettled(writes)) {
      if (outcome.status === "fulfilled") continue;
      const error: unknown = outcome.reason;
      // The broker refused it for good (not unavailable): throw, the message is redelivered.
      if (error instanceof JetStreamApiError && error.status < 500 && !isConflict(error)) throw error;
      return describeError(error);
    }
    return undefined;
  }

  /** Sleep `delayS`, or less if the client reconnects meanwhile. */
  async #pause(delayS: number, epoch: number): Promise<void> {
    for (let i = 0; i < Math.max(1, Math.round(delayS / 0.1)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (this.#bus.reconnects !== epoch) return;
    }
  }

  /** Keep a task whose result waits for the broker in progress, and its claim alive. */
  async #keepClaim(msg: WorkMessage, claim: Claimed | undefined, attempt: number): Promise<void> {
    try {
      msg.inProgress();
      if (claim !== undefined && !(await this.#store.renew(claim, attempt, this.#leaseS))) {
        log.warning("claim taken over by another instance", { key: claim.key });
      }
    } catch (error) {
      log.debug("keep-alive failed", { error: describeError(error) });
    }
  }
}
