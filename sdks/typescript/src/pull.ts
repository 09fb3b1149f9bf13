/**
 * Pulling a service's work: the worker's side of the durable pull consumer `svc_<service>`.
 *
 * A private inbox is subscribed and `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`
 * requests are sent to it, asking for as many messages as the worker has free slots, so
 * replicas (Python or Node) split the work and nobody takes more than it can run; the
 * request is renewed when a quarter of the slots are free again, when the broker ends it
 * (408: expired, 409: dropped), or when its expiry passed unannounced.
 */
import { createInbox, type Msg, type Subscription } from "@nats-io/nats-core";
import type { Bus } from "./bus.js";
import { describeError } from "./errors.js";
import { log } from "./log.js";

/** What the puller needs from its worker. */
export interface PullerHooks {
  /** Tasks received and not finished yet. */
  inflight(): number;
  /** A message of the consumer arrived (the worker acks it). */
  onTask(msg: Msg): void;
}

/** Pull requests of one worker, counted so that it never asks for more than it can run. */
export class Puller {
  readonly #bus: Bus;
  readonly #service: string;
  readonly #concurrency: number;
  readonly #expiresS: number;
  readonly #refillAt: number;
  readonly #hooks: PullerHooks;
  readonly #nextSubject: string;
  #inbox = "";
  #sub: Subscription | undefined;
  #outstanding = 0;
  #lastDeadline = 0;

  constructor(
    bus: Bus,
    target: { stream: string; durable: string; service: string },
    options: { concurrency: number; pullExpiresS: number },
    hooks: PullerHooks,
  ) {
    this.#bus = bus;
    this.#service = target.service;
    this.#concurrency = options.concurrency;
    this.#expiresS = options.pullExpiresS;
    this.#refillAt = Math.max(1, Math.floor(options.concurrency / 4));
    this.#hooks = hooks;
    this.#nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${target.stream}.${target.durable}`;
  }

  /** Whether the inbox is subscribed (the worker takes tasks). */
  get bound(): boolean {
    return this.#sub !== undefined;
  }

  /** Subscribe the inbox and send the first request. */
  start(): void {
    this.#inbox = createInbox();
    this.#sub = this.#bus.nc.subscribe(this.#inbox, {
      callback: (error, msg) => {
        if (error === null) this.#onMessage(msg);
      },
    });
    this.pull();
  }

  /** Ask for as many messages as there are free slots (when enough are free). */
  pull(): void {
    if (this.#sub === undefined) return;
    const free = this.#concurrency - this.#hooks.inflight() - this.#outstanding;
    if (free <= 0 || (this.#outstanding > 0 && free < this.#refillAt)) return;
    const request = { batch: free, expires: Math.round(this.#expiresS * 1e9) };
    this.#outstanding += free;
    this.#lastDeadline = Date.now() + this.#expiresS * 1000;
    try {
      this.#bus.nc.publish(this.#nextSubject, JSON.stringify(request), { reply: this.#inbox });
    } catch (error) {
      this.#outstanding -= free; // the next tick pulls again
      log.warning("pull request failed", { service: this.#service, error: describeError(error) });
    }
  }

  /** Called by the worker's ticker: forget a request whose expiry passed, and pull. */
  tick(): void {
    // A request whose expiry passed without its 408 (a broker restart, a lost status
    // message) no longer counts; otherwise the worker would starve.
    if (this.#outstanding && Date.now() > this.#lastDeadline + 1000) this.#outstanding = 0;
    this.pull();
  }

  /**
   * Drop the inbox: the broker then discards the open requests, so a task the worker
   * abandons afterwards goes to another replica, not back to it.
   */
  async stop(): Promise<void> {
    if (this.#sub === undefined) return;
    this.#sub.unsubscribe();
    this.#sub = undefined;
    try {
      await this.#bus.nc.flush();
    } catch {
      // closed
    }
  }

  #onMessage(msg: Msg): void {
    if (msg.reply) {
      this.#outstanding = Math.max(0, this.#outstanding - 1);
      this.#hooks.onTask(msg);
      return;
    }
    const code = msg.headers?.code ?? 0;
    if (code === 408) {
      const pending = Number(msg.headers?.get("Nats-Pending-Messages") || "0");
      this.#outstanding = Math.max(0, this.#outstanding - pending);
      this.pull();
    } else if (code === 409) {
      // The server dropped our requests (consumer deleted, leadership change, too many
      // waiting requests): forget them; the ticker asks again.
      log.warning("pull request ended by the server", { service: this.#service, description: msg.headers?.description });
      this.#outstanding = 0;
    }
  }
}
